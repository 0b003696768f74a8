package directory

import (
	"context"
	"testing"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/store"
)

// A store with a small memtable takes fewer changes in one transaction
// than a batch holds: the sync splits the batch and goes on.
func TestASyncSplitsBatchesTheStoreCannotTakeWhole(t *testing.T) {
	rd := newMemReader(1500)
	s, _ := memSyncer(t, rd, store.Options{MemTableSize: 1 << 20})
	rep, err := s.Sync(context.Background(), api.DirectorySync{})
	if err != nil || rep.Created != 1500 {
		t.Fatalf("sync into a 1 MiB memtable: %d created, %v", rep.Created, err)
	}
	if again, err := s.Sync(context.Background(), api.DirectorySync{}); err != nil || again.Unchanged != 1500 {
		t.Fatalf("the second sync: %d unchanged, %v", again.Unchanged, err)
	}
}
