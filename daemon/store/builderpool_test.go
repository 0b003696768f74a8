package store

import (
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// TestBuilderPoolFound fails when a Badger release no longer keeps its
// table builders' pool where builderPool looks: the store would then
// leave the pool full during long writes (builderpool.go).
func TestBuilderPoolFound(t *testing.T) {
	db, err := badger.Open(badger.DefaultOptions("").WithInMemory(true).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := builderPool(db)
	if p == nil {
		t.Fatal("Badger's DB has no allocPool of type *z.AllocatorPool any more: find where it keeps its table builders' allocators, or drop drainBuilders")
	}
	// A pooled allocator is taken and released; an empty pool ends it.
	a := p.Get(4<<20, "test")
	a.Allocate(1 << 20)
	p.Return(a)
	drainBuilderPool(p)
	b := p.Get(1, "test")
	defer b.Release()
	if b.Allocated() > 512 {
		t.Fatalf("the pool still held an allocator of %d bytes after draining", b.Allocated())
	}
}
