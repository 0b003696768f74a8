package store

import (
	"reflect"
	"time"
	"unsafe"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/ristretto/v2/z"
)

// Badger builds every table (a memtable's flush, a compaction's output)
// in buffers it takes from a pool of up to eight allocators, which it
// empties only after two seconds without a table being built: while
// writes keep coming, the allocators stay, each as large as the largest
// table it ever built. With encryption a table's blocks are held twice
// (as written and encrypted) and the buffers grow by doubling, so a
// flush of a 16 MiB memtable grows an allocator to 60 MiB, and as the
// pool hands its allocators out in turn, each grows to that size: a
// sustained write (a directory sync of 100,000 users) kept 450 MiB of
// builder buffers on the Go heap, above keyfleetd's memory limit (320 MiB
// at the default store.memory), and the collector then ran without
// pause. The store empties the pool every builderPoolDrainEvery: a table
// is then built in buffers of its own, returned to the Go heap once it is
// written (docs/benchmarks.md, "Directory sync").
//
// Badger has no option for the pool; it is found in its DB by reflection.
// If a Badger release renames it, builderPool returns nil, the pool is
// left as it is, and TestBuilderPoolFound fails.
//
// A tick that finds the pool empty (no table was built and handed back
// since the last drain: an idle store) only reads the length of the
// pool's channel: no allocator is taken, made or released.

// builderPoolDrainEvery is how often the store empties Badger's pool.
const builderPoolDrainEvery = 100 * time.Millisecond

// builderPool is db's pool of table builders' allocators, or nil.
func builderPool(db *badger.DB) *z.AllocatorPool {
	f := reflect.ValueOf(db).Elem().FieldByName("allocPool")
	if !f.IsValid() || f.Type() != reflect.TypeFor[*z.AllocatorPool]() {
		return nil
	}
	// Written once in badger.Open, before db is returned: reading it is
	// safe while Badger's goroutines read it too.
	return *(**z.AllocatorPool)(unsafe.Pointer(f.UnsafeAddr()))
}

// builderPoolHeld returns a func that says how many allocators p holds
// (the length of its channel), or nil when a ristretto release keeps
// them elsewhere (TestBuilderPoolFound fails then).
func builderPoolHeld(p *z.AllocatorPool) func() int {
	if p == nil {
		return nil
	}
	ch := reflect.ValueOf(p).Elem().FieldByName("allocCh")
	if !ch.IsValid() || ch.Kind() != reflect.Chan || ch.Type().Elem() != reflect.TypeFor[*z.Allocator]() {
		return nil
	}
	return ch.Len // a channel's length is safe to read while others send and receive
}

// drainBuilderPool takes every allocator the pool holds and lets the Go
// heap have its buffers back. An allocator the pool did not hold (it was
// empty) is a fresh one of 512 bytes: released too, and the end.
func drainBuilderPool(p *z.AllocatorPool) {
	for range 64 {
		a := p.Get(1, "drain")
		pooled := a.Allocated() > 512
		a.Release()
		if !pooled {
			return
		}
	}
}

// drainBuilders empties the current Badger's builder pool every
// builderPoolDrainEvery until the store closes (Close waits for it
// before closing Badger, whose Close closes the pool).
func (s *Store) drainBuilders() {
	var db *badger.DB // the DB pool and held were found in (a reopen replaces it)
	var pool *z.AllocatorPool
	var held func() int
	s.every(builderPoolDrainEvery, func() {
		s.dbMu.RLock()
		defer s.dbMu.RUnlock()
		if s.db != db {
			db, pool = s.db, builderPool(s.db)
			held = builderPoolHeld(pool)
		}
		if pool == nil || (held != nil && held() == 0) {
			return // nothing pooled since the last drain
		}
		drainBuilderPool(pool)
	})
}
