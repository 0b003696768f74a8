package store

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyfleet/keyfleet/daemon/core"
)

// Disk space is a state, not a crash. Badger writes its write-ahead logs
// and its tables through memory maps; a page written through a map on a
// full file system is not an error Badger can return but a SIGBUS that
// kills the process. So the store never lets Badger near the end of the
// disk:
//
//   - the memtable's write-ahead log is allocated on disk in full before
//     Badger writes to it, and the next one is made ahead of time
//     (prealloc.go): filling a memtable never needs a free block;
//   - writes stop while the free space is below a reserve that covers
//     what Badger still writes on its own once they stop: a flush of the
//     memtables and the compactions it sets off (and the flush at Close);
//   - a store opened with less than the reserve free is opened read-only
//     (Badger then writes nothing at all) and reopened for writing by
//     itself once space returns (readonly.go).
//
// What remains is documented in docs/operations.md: a process other than
// keyfleetd that fills the same file system in the instant Badger writes a
// table can still fault it, because Badger creates tables through a map
// this package cannot reach. Give the data folder its own file system.

// StorageFullError says why writes are refused for lack of space. It
// wraps core.ErrStorageFull and core.ErrUnavailable.
type StorageFullError struct {
	Dir     string
	Free    uint64 // bytes free to keyfleetd when last measured
	Reserve uint64 // bytes the store keeps free for Badger's own writes
	// Cause, when set, is what failed instead of the measure (making the
	// next write-ahead log, for instance).
	Cause string
	// ReadOnly is set when the store was opened read-only for lack of
	// space and reopens for writing once space returns.
	ReadOnly bool
}

func (e *StorageFullError) Error() string {
	msg := fmt.Sprintf("storage full: %s has %s free, below the %s reserve keyfleetd keeps for the store's own flushes and compactions",
		e.Dir, mib(e.Free), mib(e.Reserve))
	if e.Cause != "" {
		msg += " (" + e.Cause + ")"
	}
	return msg + "; writes are refused and reads go on; free space on that file system (or raise its size) and keyfleetd resumes writes by itself"
}

// Unwrap lets callers match core.ErrStorageFull, and code that treats any
// unavailable store alike match core.ErrUnavailable.
func (e *StorageFullError) Unwrap() []error { return []error{core.ErrStorageFull, core.ErrUnavailable} }

// RetryAfter is how long a client should wait before trying again.
func (e *StorageFullError) RetryAfter() time.Duration { return 30 * time.Second }

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// SpaceStats is what the store last measured of its disk.
type SpaceStats struct {
	Free    uint64 // bytes free to keyfleetd
	Reserve uint64 // the reserve writes stop at
	Full    bool   // writes are refused for lack of space
	// ReadOnly: the store was opened read-only for lack of space.
	ReadOnly bool
}

// spaceGuard measures the store's file system and keeps the state writes
// are refused in. It refuses below the reserve and resumes a tenth above
// it, so that a store hovering at the line does not flap.
type spaceGuard struct {
	dir     string
	statfs  func(dir string) (free uint64, err error)
	reserve func() uint64
	log     *slog.Logger
	// onChange runs, outside the guard's lock, when the state changes.
	onChange func(full bool)

	free atomic.Uint64
	full atomic.Pointer[StorageFullError] // nil while writes are allowed

	mu sync.Mutex // serialises check
}

// refusal is the error writes get, or nil.
func (g *spaceGuard) refusal() error {
	if g == nil {
		return nil
	}
	if e := g.full.Load(); e != nil {
		return e
	}
	return nil
}

// roomToResume reports whether the last measure leaves room to resume
// writes: a tenth above the reserve.
func (g *spaceGuard) roomToResume() bool {
	r := g.reserve()
	return g.free.Load() >= r+r/10
}

// stats reports the last measure.
func (g *spaceGuard) stats() SpaceStats {
	e := g.full.Load()
	st := SpaceStats{Free: g.free.Load(), Reserve: g.reserve(), Full: e != nil}
	if e != nil {
		st.ReadOnly = e.ReadOnly
	}
	return st
}

// check measures the free space and updates the state. cause, if not
// empty, is a failure that holds writes off until a check without one;
// readOnly holds them off until the store is reopened for writing.
func (g *spaceGuard) check(cause string, readOnly bool) {
	g.mu.Lock()
	free, err := g.statfs(g.dir)
	if err != nil {
		g.mu.Unlock()
		g.log.Warn("measuring the store's free space failed", "dir", g.dir, "err", err)
		return
	}
	g.free.Store(free)
	reserve := g.reserve()
	was := g.full.Load()
	var next *StorageFullError
	switch {
	case cause != "", readOnly, free < reserve, was != nil && free < reserve+reserve/10:
		next = &StorageFullError{Dir: g.dir, Free: free, Reserve: reserve, Cause: cause, ReadOnly: readOnly}
	}
	g.full.Store(next)
	g.mu.Unlock()
	switch {
	case was == nil && next != nil:
		g.log.Error("STORAGE FULL: the store refuses writes until space returns; reads go on",
			"dir", g.dir, "free_bytes", free, "reserve_bytes", reserve, "cause", cause, "read_only", readOnly)
	case was != nil && next == nil:
		g.log.Warn("storage space returned: the store takes writes again", "dir", g.dir, "free_bytes", free, "reserve_bytes", reserve)
	}
	if (was == nil) != (next == nil) && g.onChange != nil {
		g.onChange(next != nil)
	}
}
