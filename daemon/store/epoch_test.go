package store_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/events"
	"github.com/keyfleet/keyfleet/daemon/store"
)

// TestARestoreStartsANewEpoch: a store restored from a backup keeps the
// events of the backup under their old epoch, writes new ones in a new
// epoch, and a sink cursor saved before the restore is seen to belong to
// the old one (the sink stops instead of re-using sequence numbers).
func TestARestoreStartsANewEpoch(t *testing.T) {
	ctx := context.Background()
	key := bytes.Repeat([]byte{0x42}, 32)
	dir := t.TempDir()
	st, err := store.Open(store.Options{Dir: filepath.Join(dir, "a"), EncryptionKey: key})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		st.Update(ctx, func(tx core.Tx) error { return tx.Audit(&audit.Event{Action: "x"}) })
	}
	st.SetCursor(ctx, "archive", 3)
	var backup bytes.Buffer
	if _, err := st.Backup(&backup); err != nil {
		t.Fatal(err)
	}
	old := st.Epoch()
	st.Close()

	o := store.Options{Dir: filepath.Join(dir, "b"), EncryptionKey: key}
	epoch, head, err := store.Restore(o, &backup)
	if err != nil || head != 3 || epoch == old || epoch == "" {
		t.Fatalf("Restore = %q, %d, %v (old epoch %q)", epoch, head, err, old)
	}
	if _, _, err := store.Restore(o, bytes.NewReader(nil)); err == nil {
		t.Fatal("a restore over a store was accepted")
	}
	rs, err := store.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	rep, err := core.VerifyStore(ctx, rs)
	if err != nil || rep.Break != nil || rep.Checked != 3 {
		t.Fatalf("restored chain: %+v %v", rep, err)
	}
	if rs.Epoch() != epoch || rs.EpochOf(3) != old || rs.EpochOf(4) != epoch {
		t.Fatalf("epochs: current %q, of 3 %q, of 4 %q", rs.Epoch(), rs.EpochOf(3), rs.EpochOf(4))
	}
	m, err := events.New(events.Config{Sinks: []events.SinkConfig{{Name: "archive", Type: events.TypeFile,
		File: &events.FileConfig{Path: filepath.Join(dir, "out.jsonl")}}}}, events.Options{Source: rs, Cursors: rs})
	if err != nil {
		t.Fatal(err)
	}
	if st0 := m.Status()[0]; !bytes.Contains([]byte(st0.LastError), []byte("restored from a backup")) {
		t.Fatalf("the sink did not stop after the restore: %+v", m.Status()[0])
	}
}
