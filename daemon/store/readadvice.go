package store

import (
	"path/filepath"
	"sync"
	"time"
)

// Badger maps its table files and reads them through the mapping; it
// gives the kernel no advice about them. On a page that is not in memory
// the kernel then reads around it, as much as the disk's read-ahead
// setting (read_ahead_kb: 128 KiB by default, 8 MiB on the VM of
// docs/benchmarks.md): right for Badger's scans, which read a table in
// order, but a list that reads 50 users, or 50 audit events, scattered
// over the store pays that much for each of them when the store does
// not fit in memory (under the service's memory limit, 200-270 MB read
// from the disk for one page of a group's members on that VM, in
// 170-550 ms). A read transaction that lists records through an index
// (readTx.readRandomly) marks the store's mapped tables as read at random
// (madvise MADV_RANDOM: a fault reads the page asked for) until it ends,
// and the last one in flight sets them back to normal; Badger's scans
// and compactions that run meanwhile read without read-ahead for those
// milliseconds.
type readAdvice struct {
	dir    string // the store's folder, as /proc/self/maps names it
	mu     sync.Mutex
	n      int        // lists in flight
	ranges []memRange // the tables' mappings, as last read
	read   time.Time  // when
	lists  int        // lists that asked for it, ever (for tests)
}

// rereadMaps is how old the tables' mappings may be when a list marks
// them. Reading them (/proc/self/maps) costs about half a millisecond
// at a few hundred tables, the advice itself a tenth of that. A table
// a compaction made since is read as usual; one it removed fails the
// advice, harmlessly, and so does another mapping at its place, which
// the advice only tells how much to read ahead on a fault.
const rereadMaps = time.Second

// newReadAdvice advises on the tables in dir (the store's folder; ""
// for a store in memory: nothing to advise on).
func newReadAdvice(dir string) *readAdvice {
	if dir == "" {
		return nil
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	return &readAdvice{dir: dir}
}

// memRange is a mapped range of memory.
type memRange struct{ start, end uintptr }

// randomReads marks the tables as read at random until done is called.
// A store in memory, or where the kernel takes no advice, ignores it.
func (a *readAdvice) randomReads() (done func()) {
	if a == nil || a.dir == "" {
		return func() {}
	}
	a.mu.Lock()
	if a.n == 0 {
		if now := time.Now(); now.Sub(a.read) > rereadMaps {
			a.ranges, a.read = mappedTables(a.dir), now
		}
		adviseRandom(a.ranges, true)
	}
	a.n++
	a.lists++
	a.mu.Unlock()
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.n--; a.n == 0 {
			adviseRandom(a.ranges, false)
		}
	}
}
