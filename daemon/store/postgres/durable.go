package postgres

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// Group commit. Commits that append audit events take the audit head's
// row lock, and PostgreSQL holds a transaction's locks until its commit
// record is on disk, so with plain synchronous commits the whole
// database would make at most one such commit per fsync. Instead, such a
// transaction commits with synchronous_commit off (its locks go as soon
// as its commit record is in the write-ahead log, before the fsync), and
// its writer then waits for a barrier: a one-statement transaction that
// began after the commit returned and commits with the session's own
// synchronous_commit (on, or what the operator configured, such as
// remote_apply with a synchronous standby). PostgreSQL's log is one
// sequence: the barrier's commit is after every commit that returned
// before it began, so when the barrier is durable, so are they. Nothing
// is acknowledged before that.
//
// One barrier runs at a time per keyfleetd; every writer that finished
// committing while one ran waits for the next, which covers them all.
// Under load, one barrier (one round trip and one fsync) acknowledges
// many writes, and PostgreSQL merges the fsyncs of several keyfleetd's
// barriers too.
//
// The audit chain stays in commit order and gap-free: a commit whose
// record is lost in a crash takes every later commit with it (the log is
// replayed in order), and none of them was acknowledged. Audit readers
// (AuditHead, AuditScan, and through them the event sinks) see only the
// durable part of the chain: each barrier reads the head in the same
// statement, and they share the barriers the writers run (latest). Other reads may see a committed write a moment before its
// writer is told it is durable; a crash of PostgreSQL in that moment
// loses it (and whatever was derived from it, since those commits come
// later in the log), and nobody was told it was stored.

// barrier is one run of the barrier statement; done closes when it ends.
type barrier struct {
	done chan struct{}
	head audit.Head // the audit head it made durable
	err  error
}

// flusher runs barriers one at a time and lets writers share them.
type flusher struct {
	run func(ctx context.Context) (audit.Head, error)

	mu      sync.Mutex
	next    *barrier // the barrier writers that arrive now will wait for
	current *barrier // the barrier running, if running
	running bool

	commits  atomic.Uint64 // audited commits made durable through barriers
	barriers atomic.Uint64 // barriers run
}

// barrierTimeout bounds one barrier: a database that does not answer
// fails the writes waiting for it instead of holding them.
const barrierTimeout = 30 * time.Second

// wait returns once everything committed before it was called is
// durable, with the durable audit head, running a barrier when none is
// running and joining the next one otherwise.
func (f *flusher) wait(ctx context.Context) (audit.Head, error) {
	f.mu.Lock()
	b := f.next
	if b == nil {
		b = &barrier{done: make(chan struct{})}
		f.next = b
	}
	if !f.running {
		f.startLocked()
	}
	f.mu.Unlock()
	select {
	case <-b.done:
		return b.head, b.err
	case <-ctx.Done():
		return audit.Head{}, ctx.Err()
	}
}

// latest returns a durable audit head that is at least as new as the
// last one any barrier reported before the call: the running barrier's
// when one runs, else a new one's. Readers of the head share the
// writers' barriers this way instead of adding their own; a commit made
// visible while a barrier runs may be missed (the event sinks also poll).
func (f *flusher) latest(ctx context.Context) (audit.Head, error) {
	f.mu.Lock()
	if !f.running {
		f.mu.Unlock()
		return f.wait(ctx)
	}
	b := f.current
	f.mu.Unlock()
	select {
	case <-b.done:
		return b.head, b.err
	case <-ctx.Done():
		return audit.Head{}, ctx.Err()
	}
}

// startLocked runs f.next; f.mu is held.
func (f *flusher) startLocked() {
	b := f.next
	f.next, f.current, f.running = nil, b, true
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), barrierTimeout)
		b.head, b.err = f.run(ctx)
		cancel()
		f.barriers.Add(1)
		close(b.done)
		f.mu.Lock()
		f.running = false
		if f.next != nil {
			f.startLocked()
		}
		f.mu.Unlock()
	}()
}

// barrierSQL writes a record to the log in a transaction of its own (a
// transactional logical decoding message, which any user may emit and
// which needs no table), so that its commit waits for the log to be
// flushed (and replicated, as synchronous_commit says) up to there; it
// reads the audit head in the same snapshot. A transaction id alone does
// not do: PostgreSQL commits a transaction that wrote nothing to the log
// without waiting for the disk or a standby, whatever synchronous_commit
// says (TestNothingIsAcknowledgedBeforeItIsDurable).
const barrierSQL = "SELECT pg_logical_emit_message(true, 'keyfleet', ''), seq, hash FROM audit_head"

// runBarrier is flusher.run.
func (s *Store) runBarrier(ctx context.Context) (audit.Head, error) {
	return scanHead(s.pool.QueryRow(ctx, barrierSQL))
}

// scanHead reads barrierSQL's row.
func scanHead(row pgx.Row) (audit.Head, error) {
	var msg any
	var seq int64
	var hash []byte
	if err := row.Scan(&msg, &seq, &hash); err != nil {
		return audit.Head{}, err
	}
	if len(hash) != audit.HashSize {
		return audit.Head{}, fmt.Errorf("the audit head's hash is %d bytes, want %d: the database is damaged", len(hash), audit.HashSize)
	}
	h := audit.Head{Seq: uint64(seq)}
	copy(h.Hash[:], hash)
	return h, nil
}

// durable waits until the commit that just returned is durable.
func (s *Store) durable(ctx context.Context) error {
	h, err := s.flush.wait(ctx)
	if err != nil {
		return fmt.Errorf("%w: PostgreSQL did not confirm that the change is on disk (%v): it may or may not be stored; read it back before trying again", core.ErrUnavailable, redact(err))
	}
	s.flush.commits.Add(1)
	s.head.Store(&h)
	return nil
}

// SyncStats reports how many audited commits were made durable by how
// many barriers (keyfleet_store_commits_total and _syncs_total).
func (s *Store) SyncStats() (commits, syncs uint64) {
	return s.flush.commits.Load(), s.flush.barriers.Load()
}
