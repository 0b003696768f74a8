package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyfleet/keyfleet/daemon/audit"
)

// Appending to the audit chain. Every commit that appends audit events
// advances the head row (audit_head), so the head is the one place where
// all writers of the cluster meet. Two ways to advance it:
//
//   - locked: the commit's first batch takes the head's row lock (FOR
//     UPDATE) and reads it; the second chains the events after it and
//     sends them, the new head and COMMIT. The lock is held for one round
//     trip to keyfleetd and back.
//   - pipelined: this keyfleetd remembers the head its last commit left
//     (the tail) and chains the next commit's events after it without
//     reading the head: one batch waits for the previous pipelined commit
//     of this keyfleetd to end, advances the head only if it is still the
//     tail (else the transaction fails and runs again), and commits. The
//     head's lock is then held only while PostgreSQL runs that batch, with
//     no round trip to keyfleetd in between, so commits of one keyfleetd
//     follow each other as fast as PostgreSQL runs them.
//
// Either way the head advances under its row lock in the transaction of
// the change, so the chain stays gap-free and in commit order; the tail
// is only a guess that the guard checks. Ordering: each pipelined commit
// holds a transaction-level advisory lock of its own from its first
// batch on, and the next one's batch begins by waiting for it, so they
// reach the head in the order they were sent even though they run on
// different connections. When a guess fails (another keyfleetd appended,
// or the commit before failed), the tail is forgotten, the commits built
// on it run again, and this keyfleetd appends the locked way for a while.

// errChainMoved: the head was not where this keyfleetd's tail said; the
// transaction runs again.
var errChainMoved = errors.New("the audit head moved under the transaction")

// lockedFor is how long a keyfleetd whose guess failed appends the locked
// way: several keyfleetd writing at once take turns on the head instead
// of failing each other's guesses.
const lockedFor = time.Second

// appender is what one Store knows about the head.
type appender struct {
	node     int32         // the advisory lock class of this keyfleetd's ordering locks
	drainFor time.Duration // drainFor, or what a test sets

	mu      sync.Mutex
	drained chan struct{} // closed when no locked commit is under way
	tail    *audit.Head   // the head after the last commit sent; nil: unknown
	last    int32         // ordering lock of the last pipelined commit sent (0: none)
	seq     int32         // the last ordering lock handed out
	until   time.Time     // append the locked way until then
	locked  int           // locked commits under way
	best    *audit.Head   // the newest head locked commits left since none was under way

	// Commits appended each way, and guesses that failed; commits waiting
	// for the locked ones to end.
	pipelined, lockedN, moved atomic.Uint64
	waiting                   atomic.Int32
}

func newAppender() *appender {
	return &appender{node: rand.Int32(), drained: make(chan struct{}), drainFor: drainFor}
}

// drainFor bounds how long a commit waits for the locked commits under way
// to end before it goes the locked way too. The wait is in keyfleetd, not
// in PostgreSQL, so a commit holding a row lock that one of them waits
// for (a record read FOR UPDATE after a collision) must not wait long.
const drainFor = 20 * time.Millisecond

// ticket decides how the next commit appends: pipelined, with its
// ordering lock, when the tail is known; else locked. Pipelined and
// locked commits of one keyfleetd do not run at once (a locked one would
// move the head under the pipelined ones): when the tail is unknown and
// no failed guess holds the locked way, a commit waits a little for the
// locked commits under way to end (the last leaves the tail) and is then
// pipelined.
func (a *appender) ticket() (key int32, pipelined bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	waited := false
	for {
		backoff := time.Now().Before(a.until)
		if a.tail != nil && !backoff && a.locked == 0 {
			a.seq++
			if a.seq == 0 {
				a.seq++
			}
			return a.seq, true
		}
		if backoff || a.locked == 0 || waited {
			a.tail, a.last = nil, 0
			a.locked++
			return 0, false
		}
		drained := a.drained
		a.mu.Unlock()
		a.waiting.Add(1)
		t := time.NewTimer(a.drainFor)
		select {
		case <-drained:
		case <-t.C:
		}
		t.Stop()
		a.waiting.Add(-1)
		a.mu.Lock()
		waited = true
	}
}

// lockedEnded records the end of a locked commit, with the head it left
// if it committed; the last of a run leaves the tail for the next
// commits.
func (a *appender) lockedEnded(h *audit.Head) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if h != nil {
		a.lockedN.Add(1)
		if a.best == nil || h.Seq > a.best.Seq {
			a.best = h
		}
	}
	a.locked--
	if a.locked == 0 {
		if !time.Now().Before(a.until) {
			a.tail, a.last = a.best, 0
		}
		a.best = nil
		close(a.drained)
		a.drained = make(chan struct{})
	}
}

// missed forgets the tail after a failed pipelined commit; when another
// keyfleetd moved the head, this one appends the locked way for a while.
func (a *appender) missed(moved bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tail, a.last = nil, 0
	if moved {
		a.moved.Add(1)
		a.until = time.Now().Add(lockedFor)
	}
}

// guardSQL advances the head only from where the tail says it is; when
// it is elsewhere, no row is updated and the division fails the
// transaction (SQLSTATE 22012) before COMMIT.
const guardSQL = `WITH moved AS (UPDATE audit_head SET seq = $1, hash = $2 WHERE seq = $3 AND hash = $4 RETURNING 1)
SELECT 1 / count(*) FROM moved`

// appendPipelined chains t's events after the tail and sends them with
// COMMIT in one batch; sent is false (nothing sent) when the tail was
// forgotten since the ticket: then the commit is counted as locked, and
// appends the locked way.
func (s *Store) appendPipelined(ctx context.Context, t *tx, key int32) (sent bool, err error) {
	a := s.app
	a.mu.Lock()
	if a.tail == nil {
		a.locked++
		a.mu.Unlock()
		return false, nil
	}
	from, wait := *a.tail, a.last
	recs, head, err := s.chainEvents(t, from)
	if err != nil {
		a.mu.Unlock()
		return false, err
	}
	b := &pgx.Batch{}
	if wait != 0 {
		b.Queue("SELECT pg_advisory_xact_lock($1, $2)", a.node, wait)
	}
	b.Queue(guardSQL, int64(head.Seq), head.Hash[:], int64(from.Seq), from.Hash[:])
	s.queueAppend(b, recs, head)
	res := t.conn.SendBatch(ctx, b)
	a.tail, a.last = &head, key
	a.mu.Unlock()
	if err := res.Close(); err != nil {
		var pe *pgconn.PgError
		moved := errors.As(err, &pe) && pe.Code == "22012"
		a.missed(moved)
		if moved {
			return true, errChainMoved
		}
		return true, commitBatchErr(err)
	}
	a.pipelined.Add(1)
	return true, nil
}

// appendLocked chains t's events after from, the head whose row lock t
// holds, and commits; it returns the new head.
func (s *Store) appendLocked(ctx context.Context, t *tx, from audit.Head) (audit.Head, error) {
	recs, head, err := s.chainEvents(t, from)
	if err != nil {
		return from, err
	}
	b := &pgx.Batch{}
	b.Queue("UPDATE audit_head SET seq = $1, hash = $2", int64(head.Seq), head.Hash[:])
	s.queueAppend(b, recs, head)
	return head, commitBatchErr(t.conn.SendBatch(ctx, b).Close())
}

// chainEvents chains t's events after from and returns the arguments of
// their records' INSERTs and the new head.
func (s *Store) chainEvents(t *tx, from audit.Head) ([][]any, audit.Head, error) {
	chain := audit.Chain{Head: from}
	recs := make([][]any, 0, len(t.events))
	for _, ev := range t.events {
		rec, err := chain.Next(ev)
		if err != nil {
			return nil, from, err
		}
		recs = append(recs, []any{int64(rec.Seq), ev.Target.ID, ev.Actor.ID, ev.Action, s.box.seal("audit", fmt.Sprint(rec.Seq), rec.Marshal())})
	}
	return recs, chain.Head, nil
}

// queueAppend queues the records, the wake-up of the other keyfleetd and
// the commit, which does not wait for the disk: the head's lock goes with
// the commit record into the log, and the writer waits for a barrier
// afterwards (durable.go).
func (s *Store) queueAppend(b *pgx.Batch, recs [][]any, head audit.Head) {
	for _, args := range recs {
		b.Queue("INSERT INTO audit (seq, target, actor, action, rec) VALUES ($1, $2, $3, $4, $5)", args...)
	}
	b.Queue("SELECT pg_notify('keyfleet_audit', $1)", fmt.Sprint(head.Seq))
	b.Queue("SET LOCAL synchronous_commit = off")
	b.Queue("COMMIT")
}
