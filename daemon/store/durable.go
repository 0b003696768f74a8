package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// Group commit. Badger runs without SyncWrites; instead, a writer whose
// commit has reached Badger's write-ahead log waits here until a sync that
// began after its commit has finished. The first writer to wait runs the
// sync; writers that commit while it runs wait for the next one, which
// covers all of them. So under load one fsync acknowledges many writes,
// and nothing is acknowledged before it is on disk.
//
// Commits that append audit events take their place in Badger's write
// queue one at a time in chain order (Store.commitChained), and Badger
// appends them to its log in that order, so a crash of the process
// (SIGKILL included: the page cache survives) loses nothing, and a power
// cut loses at most unacknowledged commits. One limit: when Badger starts
// a new write-ahead log (every 64 MB of writes) between two syncs and the
// power fails before the next sync, the kernel may have written some of
// the new log's pages but not the end of the old one; Badger replays each
// log on its own, so unacknowledged commits at the end of the old log can
// be missing while later unacknowledged ones survive. keyfleet audit
// verify then reports the gap. Acknowledged commits are on disk in both
// logs (walSync), so none of them is ever lost.
// Audit readers (AuditScan, AuditHead, the event sinks) see only the
// durable part of the chain; other reads may see a write up to one sync
// before its writer is told it is durable, as they would see it a moment
// later anyway.
type syncer struct {
	// flush makes every commit that returned before it started durable.
	flush func() error

	committed atomic.Uint64              // commits that returned, counted
	syncs     atomic.Uint64              // syncs run
	inflight  atomic.Int64               // writers in a transaction, not committed yet
	ended     atomic.Uint64              // writers whose transaction ended, counted
	kick      chan struct{}              // a writer committed (or gave up)
	head      atomic.Pointer[audit.Head] // chain head after the last commit
	durable   atomic.Pointer[audit.Head] // chain head known to be on disk

	mu      sync.Mutex
	cond    *sync.Cond
	synced  uint64 // commits covered by a finished sync; guarded by mu
	running bool   // a sync is in progress; guarded by mu
	err     error  // a sync failed: nothing more is durable; guarded by mu
	closed  bool   // the store is closing: no sync may start; guarded by mu
}

func newSyncer(flush func() error, head audit.Head) *syncer {
	s := &syncer{flush: flush, kick: make(chan struct{}, 1)}
	s.cond = sync.NewCond(&s.mu)
	s.head.Store(&head)
	s.durable.Store(&head)
	return s
}

// committedOne records a commit that has returned and gives its number,
// to pass to wait. head is the chain head after it (nil: no audit events).
//
// Writers chained one after another may return from their writes in any
// order; a head is only ever replaced by a later one, since a commit is
// written after every commit chained before it.
func (s *syncer) committedOne(head *audit.Head) uint64 {
	for head != nil {
		cur := s.head.Load()
		if cur.Seq >= head.Seq || s.head.CompareAndSwap(cur, head) {
			break
		}
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
		if s.closed {
			return errClosing
		}
		s.running = true
		s.mu.Unlock()
		s.gather()
		// Everything counted here committed before the sync starts, so
		// the sync covers it.
		target, head := s.committed.Load(), s.head.Load()
		err := s.flush()
		s.syncs.Add(1)
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

// errClosing refuses a write whose sync would start after Close.
var errClosing = fmt.Errorf("%w: keyfleetd is shutting down; the write was not made durable, try again once it is back", core.ErrUnavailable)

// close stops syncs from starting and waits for the one under way, so
// that the store can be closed under it.
func (s *syncer) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for s.running {
		s.cond.Wait()
	}
	s.cond.Broadcast()
}

// gatherFor bounds how long a sync waits for writers that are about to
// commit, so that one sync covers them too.
const gatherFor = 500 * time.Microsecond

// gather lets writers already past their reads commit before the sync
// starts: when others are committing, a short wait saves them a sync each.
// It returns at once on a quiet store.
//
// It waits for the writers in a transaction when it starts, not for those
// that begin later: under a steady load there always are some, and the
// sync would otherwise always wait the whole gatherFor.
func (s *syncer) gather() {
	n := s.inflight.Load()
	if n <= 0 {
		return
	}
	goal := s.ended.Load() + uint64(n)
	t := time.NewTimer(gatherFor)
	defer t.Stop()
	for s.ended.Load() < goal {
		select {
		case <-s.kick:
		case <-t.C:
			return
		}
	}
}

// begin and end bracket a writer's transaction, so that a sync can wait
// for it (gather).
func (s *syncer) begin() { s.inflight.Add(1) }

func (s *syncer) end() {
	s.inflight.Add(-1)
	s.ended.Add(1)
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Stats reports how many commits were made durable by how many syncs.
func (s *syncer) stats() (commits, syncs uint64) { return s.committed.Load(), s.syncs.Load() }

// durableHead is the last audit link known to be on disk.
func (s *syncer) durableHead() audit.Head { return *s.durable.Load() }

// walSync makes Badger's logs durable: DB.Sync syncs the active
// memtable's write-ahead log and the value log, but not the logs of
// memtables that were retired (rotated out) since the last sync and are
// still waiting to be flushed to tables. Those hold writes this sync must
// cover too, so every memtable log in the folder is synced when there is
// more than the active one (an empty log made ahead does not count).
// fsync writes back pages dirtied through
// Badger's memory map as well. The folder is listed again only when its
// modification time says files may have come or gone. One sync runs at a time
// (syncer), so walSync needs no lock.
type walSync struct {
	dir    string
	dbSync func() error
	seen   time.Time // the folder's modification time when last listed
	listed time.Time // when that was
	wals   []string  // the memtable logs then
	inUse  []string  // those not empty, at the last sync
}

func (w *walSync) sync() error {
	if err := w.dbSync(); err != nil {
		return err
	}
	if w.dir == "" {
		return nil
	}
	st, err := os.Stat(w.dir)
	if err != nil {
		return err
	}
	// A file made within the file system's clock tick of the last
	// listing may leave the modification time as it was: list again until
	// the time seen is a second older than the listing.
	if !st.ModTime().Equal(w.seen) || w.listed.Sub(w.seen) < time.Second {
		entries, err := os.ReadDir(w.dir)
		if err != nil {
			return err
		}
		w.wals = w.wals[:0]
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".mem") {
				w.wals = append(w.wals, filepath.Join(w.dir, e.Name()))
			}
		}
		w.seen, w.listed = st.ModTime(), time.Now()
	}
	if len(w.wals) < 2 {
		return nil
	}
	// The log made ahead (prealloc.go) is listed while still empty, and
	// Badger takes it into use without a new folder entry: so the logs
	// are told apart by size at each sync, and a memtable rotation is
	// seen as a second log that is not empty.
	inUse := w.inUse[:0]
	for _, p := range w.wals {
		if st, err := os.Stat(p); err == nil && st.Size() > 0 {
			inUse = append(inUse, p)
		}
	}
	w.inUse = inUse
	if len(inUse) < 2 {
		return nil
	}
	for _, p := range inUse {
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
