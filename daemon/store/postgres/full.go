package postgres

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/keyfleet/keyfleet/daemon/core"
)

// PostgreSQL's "insufficient resources" conditions (Appendix A, class 53).
const (
	sqlDiskFull           = "53100" // disk_full: a file could not be extended
	sqlOutOfMemory        = "53200" // out_of_memory
	sqlTooManyConnections = "53300" // too_many_connections
)

// fullFor is how long a refusal for lack of space marks the store full
// (Ready, Full) without another one: a write tried after it either goes
// through, and writes are taken again, or is refused and marks it again.
const fullFor = 30 * time.Second

// StorageFullError: PostgreSQL refused a write because its disk is full
// (SQLSTATE 53100). It wraps core.ErrStorageFull and core.ErrUnavailable,
// as the Badger store's *store.StorageFullError does, so that the API
// answers 503 /problems/storage-full with Retry-After.
type StorageFullError struct {
	// Message is PostgreSQL's, which names the file it could not extend.
	Message string
}

func (e *StorageFullError) Error() string {
	return fmt.Sprintf("storage full: the PostgreSQL server's disk is full (%s); writes are refused and reads go on; "+
		"free space on the database server (its data directory, tablespaces and pg_wal) and writes resume by themselves", e.Message)
}

// Unwrap lets callers match core.ErrStorageFull, and code that treats any
// unavailable store alike match core.ErrUnavailable.
func (e *StorageFullError) Unwrap() []error { return []error{core.ErrStorageFull, core.ErrUnavailable} }

// RetryAfter is how long a client should wait before trying again.
func (e *StorageFullError) RetryAfter() time.Duration { return fullFor }

// fullState remembers the last refusal for lack of space.
type fullState struct {
	last atomic.Pointer[fullMark]
	now  func() time.Time
}

type fullMark struct {
	err *StorageFullError
	at  time.Time
}

// note records the outcome of a write: a refusal for lack of space marks
// the store full (and says so once, loudly), a write that went through
// clears it. It returns err.
func (s *Store) noteWrite(err error) error {
	var fe *StorageFullError
	switch {
	case errors.As(err, &fe):
		if s.full.last.Swap(&fullMark{err: fe, at: s.full.clock()}) == nil {
			s.log.Error("STORAGE FULL: PostgreSQL refuses writes for lack of disk space; reads go on", "err", fe.Message)
		}
	case err == nil:
		if s.full.last.Swap(nil) != nil {
			s.log.Warn("storage space returned: PostgreSQL takes writes again")
		}
	}
	return err
}

// Full returns the last refusal for lack of space while it is recent
// (within 30 seconds), else nil.
func (s *Store) Full() *StorageFullError {
	m := s.full.last.Load()
	if m == nil || s.full.clock().Sub(m.at) > fullFor {
		return nil
	}
	return m.err
}

func (f *fullState) clock() time.Time {
	if f.now != nil {
		return f.now()
	}
	return time.Now()
}
