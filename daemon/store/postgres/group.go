package postgres

import (
	"context"
	"errors"
	"slices"
	"sync"
)

// Group commit of transactions. A commit that appends audit events costs
// two round trips (the checks, then the chain's head and COMMIT,
// store.go), a transaction id, a head update and a commit record; under
// load most of the work PostgreSQL does for a verification is that. So
// transactions that are ready to commit while others of this keyfleetd
// are committing wait, and the next commit takes them all: their writes,
// checks and audit events go, in the order they arrived, in one
// PostgreSQL transaction on the first one's connection, which commits
// them together or not at all.
//
// Only transactions that have not begun in PostgreSQL join (every read
// before their writes ran outside a transaction, or came from the cache:
// their writes are all still queued), that append audit events, and whose
// rows are their own within the group: no row one of them writes is read
// or written by another, and a row several read was read at the same
// version. Then committing them together is committing them one after
// the other, each with its own checks (a record read that has changed
// since fails the whole group). When the group fails before its COMMIT,
// nothing of it was stored and the error may be any one's: each of its
// transactions runs again alone (Update) and gets its own answer. When
// the connection breaks after COMMIT was sent, the outcome is unknown,
// and that is every one's answer. The audit chain gets their events in
// the group's order, under the head's row lock, as one commit's.

// maxGroups is how many group commits of one keyfleetd run at once;
// maxMembers bounds one group.
const (
	maxGroups  = 2
	maxMembers = 32
)

// grouper queues the transactions waiting for a group commit.
type grouper struct {
	mu      sync.Mutex
	queue   []*member
	running int // group commits under way
}

// member is a transaction in the queue: it gets its group's result, or
// the group to lead (itself first).
type member struct {
	t      *tx
	result chan error
	lead   chan []*member
}

// groupable reports whether t may share its commit (see above).
func groupable(t *tx) bool {
	lc, ok := t.conn.(*lazyConn)
	return ok && !lc.begun() && len(t.events) > 0 && t.err == nil && !t.track.opaque
}

// commitGrouped commits t with whatever waits with it, leading the group
// (on t's connection; *ended as in commit) or waiting for its leader.
func (s *Store) commitGrouped(ctx context.Context, t *tx, ended *bool) error {
	m := &member{t: t, result: make(chan error, 1), lead: make(chan []*member, 1)}
	g := &s.group
	g.mu.Lock()
	g.queue = append(g.queue, m)
	if g.running < maxGroups {
		g.running++
		batch := g.takeLocked()
		batch[0].lead <- batch
	}
	g.mu.Unlock()
	select {
	case err := <-m.result:
		return err
	case batch := <-m.lead:
		defer g.handOver()
		return s.runGroup(ctx, batch, ended)
	}
}

// takeLocked takes the next group from the queue: its first transaction
// and, in order, those that fit with the ones taken (up to maxMembers).
// g.mu is held; the queue is not empty.
func (g *grouper) takeLocked() []*member {
	c := newGroupSets()
	var batch, rest []*member
	for _, m := range g.queue {
		if len(batch) < maxMembers && c.fits(m.t) {
			c.add(m.t)
			batch = append(batch, m)
			continue
		}
		rest = append(rest, m)
	}
	g.queue = rest
	return batch
}

// handOver lets the first transaction waiting lead the next group, or
// ends this one's turn.
func (g *grouper) handOver() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.queue) == 0 {
		g.running--
		return
	}
	batch := g.takeLocked()
	batch[0].lead <- batch
}

// runGroup merges the others of batch into its first, which is t of the
// calling attempt, commits it, and hands every other its result. The
// commit does not end with the leader's context: the others wait on it.
func (s *Store) runGroup(ctx context.Context, batch []*member, ended *bool) (err error) {
	lead := batch[0].t
	others := batch[1:]
	if len(others) > 0 {
		s.grouped.Add(uint64(len(batch)))
		merge(lead, others)
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), barrierTimeout)
		defer cancel()
	}
	defer func() {
		if p := recover(); p != nil {
			err = errors.New("the group commit failed")
			for _, m := range others {
				m.result <- err
			}
			panic(p)
		}
	}()
	xid, err := s.commit(ctx, lead, ended)
	s.cacheWritten(lead, xid, err)
	if err != nil && len(others) > 0 && !*ended {
		// Nothing was stored, and the error may be any one's: each runs
		// again alone and gets its own answer. (Once COMMIT was sent, a
		// broken connection leaves the outcome unknown: that is every
		// one's answer, since running again could store it twice.)
		err = errGroupFailed
	}
	for _, m := range others {
		m.result <- err
	}
	return err
}

// errGroupFailed: the group commit a transaction shared failed before
// COMMIT; it runs again alone.
var errGroupFailed = errors.New("a group commit failed; running each of its transactions again alone")

// merge moves the queued writes, read and write sets and audit events of
// others into lead, in order.
func merge(lead *tx, others []*member) {
	lc := lead.conn.(*lazyConn)
	events := slices.Clone(lead.events)
	for _, m := range others {
		t := m.t
		mc := t.conn.(*lazyConn)
		lc.pending = append(lc.pending, mc.pending...)
		mc.pending = nil
		events = append(events, t.events...)
		for rk, v := range t.track.reads {
			if !t.track.wrote[rk] {
				lead.track.reads[rk] = v
			}
		}
		for rk := range t.track.wrote {
			lead.track.wrote[rk] = true
		}
		for rk, v := range t.track.written {
			lead.track.written[rk] = v
		}
		lead.dirty = lead.dirty || t.dirty
	}
	lead.events = events
}

// groupSets are the rows a group's transactions read (at which version)
// and write.
type groupSets struct {
	reads  map[rowKey]string
	writes map[rowKey]bool
}

func newGroupSets() groupSets {
	return groupSets{reads: map[rowKey]string{}, writes: map[rowKey]bool{}}
}

// fits reports whether t's rows are its own within the group.
func (c groupSets) fits(t *tx) bool {
	wrote := func(yield func(rowKey) bool) {
		for rk := range t.track.wrote {
			if !yield(rk) {
				return
			}
		}
		for rk := range t.track.touched {
			if !yield(rk) {
				return
			}
		}
	}
	for rk := range wrote {
		if _, read := c.reads[rk]; read || c.writes[rk] {
			return false
		}
	}
	for rk, v := range t.track.reads {
		if t.track.wrote[rk] {
			continue
		}
		if c.writes[rk] {
			return false
		}
		if w, ok := c.reads[rk]; ok && w != v {
			return false
		}
	}
	return true
}

func (c groupSets) add(t *tx) {
	for rk, v := range t.track.reads {
		if !t.track.wrote[rk] {
			c.reads[rk] = v
		}
	}
	for rk := range t.track.wrote {
		c.writes[rk] = true
	}
	for rk := range t.track.touched {
		c.writes[rk] = true
	}
}
