package store

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/keyfleet/keyfleet/daemon/audit"
)

// Group commit. Badger runs without SyncWrites; instead, a writer whose
// commit has reached Badger's write-ahead log waits here until a sync that
// began after its commit has finished. The first writer to wait runs the
// sync; writers that commit while it runs wait for the next one, which
// covers all of them. So under load one fsync acknowledges many writes,
// and nothing is acknowledged before it is on disk.
//
// Commits still happen one at a time in chain order (Store.commit), and
// Badger appends them to its log in that order, so a crash loses at most
// a suffix of unacknowledged commits: never a gap in the audit chain.
// Audit readers (AuditScan, AuditHead, the event sinks) see only the
// durable part of the chain; other reads may see a write up to one sync
// before its writer is told it is durable, as they would see it a moment
// later anyway.
type syncer struct {
	// flush makes every commit that returned before it started durable.
	flush func() error

	committed atomic.Uint64              // commits that returned, counted
	head      atomic.Pointer[audit.Head] // chain head after the last commit
	durable   atomic.Pointer[audit.Head] // chain head known to be on disk

	mu      sync.Mutex
	cond    *sync.Cond
	synced  uint64 // commits covered by a finished sync; guarded by mu
	running bool   // a sync is in progress; guarded by mu
	err     error  // a sync failed: nothing more is durable; guarded by mu
}

func newSyncer(flush func() error, head audit.Head) *syncer {
	s := &syncer{flush: flush}
	s.cond = sync.NewCond(&s.mu)
	s.head.Store(&head)
	s.durable.Store(&head)
	return s
}

// committedOne records a commit that has returned and gives its number,
// to pass to wait. head is the chain head after it (nil: no audit events).
func (s *syncer) committedOne(head *audit.Head) uint64 {
	if head != nil {
		s.head.Store(head)
	}
	return s.committed.Add(1)
}

// wait returns once commit n is durable, running the sync itself when no
// other writer is.
func (s *syncer) wait(n uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.synced < n {
		if s.err != nil {
			return s.err
		}
		if s.running {
			s.cond.Wait()
			continue
		}
		s.running = true
		// Everything counted here committed before the sync starts, so
		// the sync covers it.
		target, head := s.committed.Load(), s.head.Load()
		s.mu.Unlock()
		err := s.flush()
		s.mu.Lock()
		s.running = false
		if err != nil {
			s.err = err
		} else {
			s.synced = max(s.synced, target)
			if head.Seq > s.durable.Load().Seq {
				s.durable.Store(head)
			}
		}
		s.cond.Broadcast()
	}
	return nil
}

// durableHead is the last audit link known to be on disk.
func (s *syncer) durableHead() audit.Head { return *s.durable.Load() }

// syncWALs makes Badger's logs durable: DB.Sync syncs the active
// memtable's write-ahead log and the value log, but not the logs of
// memtables that were retired (rotated out) since the last sync and are
// still waiting to be flushed to tables. Those hold writes this sync must
// cover too, so every memtable log in the folder is synced when there is
// more than the active one. fsync writes back pages dirtied through
// Badger's memory map as well.
func syncWALs(dir string, dbSync func() error) error {
	if err := dbSync(); err != nil {
		return err
	}
	if dir == "" {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var wals []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".mem") {
			wals = append(wals, filepath.Join(dir, e.Name()))
		}
	}
	if len(wals) < 2 {
		return nil
	}
	for _, p := range wals {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if os.IsNotExist(err) {
			continue // flushed and removed meanwhile: its writes are in a table
		}
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
