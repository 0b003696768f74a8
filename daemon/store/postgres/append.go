package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
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

// guardSQL advances the head only from where the tail says it is, and
// then appends the records, wakes the other keyfleetd and lets the
// commit skip waiting for the disk (appendTail), all in one statement;
// when the head is elsewhere, no row is updated, nothing is appended and
// the division fails the transaction (SQLSTATE 22012) before COMMIT.
// guardSQL[1] takes one event's columns, guardSQL[0] arrays of several.
var guardSQL = [2]string{guardStmt(false), guardStmt(true)}

func guardStmt(one bool) string {
	return `WITH moved AS (UPDATE audit_head SET seq = $1, hash = $2 WHERE seq = $3 AND hash = $4 RETURNING seq)` + appendTail(5, one) +
		`SELECT 1 / count(*) FROM moved, tail`
}

// headSQL advances the head whose row lock the transaction holds, and
// then does what guardSQL does.
var headSQL = [2]string{headStmt(false), headStmt(true)}

func headStmt(one bool) string {
	return `WITH moved AS (UPDATE audit_head SET seq = $1, hash = $2 RETURNING seq)` + appendTail(3, one) +
		`SELECT count(*) FROM moved, tail`
}

// appendTail appends the records given from parameter $first on (seq,
// target, actor, action, sealed record: one record's, or five arrays)
// once the head moved, and in the same row sends the wake-up of the
// other keyfleetd (pg_notify, with the new head's seq) and sets
// synchronous_commit off for the commit: the head's lock goes with the
// commit record into the log, and the writer waits for a barrier
// afterwards (durable.go). One record is given as such, not as arrays,
// so that PostgreSQL plans the statement once (arrays have it planned
// again at every run).
func appendTail(first int, one bool) string {
	rows := fmt.Sprintf("SELECT * FROM unnest($%d::bigint[], $%d::text[], $%d::text[], $%d::text[], $%d::bytea[])", first, first+1, first+2, first+3, first+4)
	if one {
		rows = fmt.Sprintf("SELECT $%d::bigint, $%d::text, $%d::text, $%d::text, $%d::bytea", first, first+1, first+2, first+3, first+4)
	}
	return `, added AS (INSERT INTO audit (seq, target, actor, action, rec)
	` + rows + ` WHERE EXISTS (SELECT FROM moved) RETURNING 1),
tail AS (SELECT pg_notify('keyfleet_audit', seq::text), set_config('synchronous_commit', 'off', true) FROM moved)
`
}

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
	b.Queue(guardSQL[one(recs)], append([]any{int64(head.Seq), head.Hash[:], int64(from.Seq), from.Hash[:]}, recs...)...)
	b.Queue("COMMIT")
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
	b.Queue(headSQL[one(recs)], append([]any{int64(head.Seq), head.Hash[:]}, recs...)...)
	b.Queue("COMMIT")
	return head, commitBatchErr(t.conn.SendBatch(ctx, b).Close())
}

// chainEvents chains t's events after from and returns their records'
// columns (one record's five values, or five arrays of several: see
// appendTail and one) and the new head.
func (s *Store) chainEvents(t *tx, from audit.Head) ([]any, audit.Head, error) {
	chain := audit.Chain{Head: from}
	n := len(t.events)
	seqs, targets, actors, actions, recs := make([]int64, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([][]byte, 0, n)
	for _, ev := range t.events {
		rec, err := chain.Next(ev)
		if err != nil {
			return nil, from, err
		}
		seqs, targets, actors, actions = append(seqs, int64(rec.Seq)), append(targets, ev.Target.ID), append(actors, ev.Actor.ID), append(actions, ev.Action)
		recs = append(recs, s.box.seal("audit", strconv.FormatUint(rec.Seq, 10), rec.Marshal()))
	}
	if n == 1 {
		return []any{seqs[0], targets[0], actors[0], actions[0], recs[0]}, chain.Head, nil
	}
	return []any{seqs, targets, actors, actions, recs}, chain.Head, nil
}

// one is 1 when cols are one record's (chainEvents), else 0: the index
// of the statement in guardSQL and headSQL.
func one(cols []any) int {
	if _, ok := cols[0].(int64); ok {
		return 1
	}
	return 0
}
