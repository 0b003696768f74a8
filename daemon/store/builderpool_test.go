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
	held := builderPoolHeld(p)
	if held == nil {
		t.Fatal("ristretto's AllocatorPool no longer keeps its allocators in allocCh: find how to tell an empty pool, or drain it at every tick")
	}
	// A pooled allocator is taken and released; an empty pool ends it.
	a := p.Get(4<<20, "test")
	a.Allocate(1 << 20)
	p.Return(a)
	if n := held(); n != 1 {
		t.Fatalf("the pool holds %d allocators after one was returned, want 1", n)
	}
	drainBuilderPool(p)
	if n := held(); n != 0 {
		t.Fatalf("the pool holds %d allocators after draining, want 0", n)
	}
	b := p.Get(1, "test")
	defer b.Release()
	if b.Allocated() > 512 {
		t.Fatalf("the pool still held an allocator of %d bytes after draining", b.Allocated())
	}
}

// TestStoreDrainsBuilderPool: an allocator handed back to the pool of an
// open store is released by the store's drain; ticks that find the pool
// empty skip it.
func TestStoreDrainsBuilderPool(t *testing.T) {
	st, err := Open(Options{Dir: t.TempDir(), EncryptionKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.dbMu.RLock()
	p := builderPool(st.db)
	st.dbMu.RUnlock()
	held := builderPoolHeld(p)
	waitFor(t, "an idle store's pool to be empty", func() bool { return held() == 0 })
	a := p.Get(4<<20, "test")
	a.Allocate(1 << 20)
	p.Return(a)
	waitFor(t, "the store to drain the allocator handed back", func() bool { return held() == 0 })
}
