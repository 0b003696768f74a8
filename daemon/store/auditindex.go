package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/dgraph-io/badger/v4"

	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// The audit indexes (Lt/ by target, Lc/ by actor, La/ by action) file
// the events of one commit that share a value under one key: the
// sequence number of the last of them is in the key, and the value lists
// the earlier ones, each as its distance from the one after it (uvarint).
// The events of one commit have consecutive sequence numbers (they are
// chained under one lock), so the ranges of two entries never overlap
// and key order is event order. An entry with an empty value, as schema
// 3 wrote them and as the upgrade from schema 2 writes them, files one
// event. A directory sync that creates 500 users in a commit writes one
// entry by actor and one by action for each kind of event, instead of
// one per event: the entries were half of what an audited creation
// wrote to the store.

// auditIndexBatch gathers the index entries of one commit's events.
type auditIndexBatch struct {
	keys []string   // prefix, value and "/" of each entry, in first-seen order
	seqs [][]uint64 // the events filed under keys[i], in order
	at   map[string]int
}

// add files the event with sequence number seq under its target, actor
// and action.
func (b *auditIndexBatch) add(ev *audit.Event, seq uint64) {
	for _, x := range [...]struct{ prefix, value string }{
		{pAuditTarget, ev.Target.ID}, {pAuditActor, ev.Actor.ID}, {pAuditAction, ev.Action},
	} {
		if x.value == "" {
			continue
		}
		k := x.prefix + x.value + "/"
		i, ok := b.at[k]
		if !ok {
			if b.at == nil {
				b.at = map[string]int{}
			}
			i = len(b.keys)
			b.at[k] = i
			b.keys = append(b.keys, k)
			b.seqs = append(b.seqs, nil)
		}
		b.seqs[i] = append(b.seqs[i], seq)
	}
}

// write sets the gathered entries.
func (b *auditIndexBatch) write(w setter) error {
	for i, k := range b.keys {
		seqs := b.seqs[i]
		last := seqs[len(seqs)-1]
		if err := w.Set(append([]byte(k), seqBytes(last)...), encodeEarlier(seqs)); err != nil {
			return err
		}
	}
	return nil
}

// encodeEarlier is the value of an index entry filing seqs (ascending):
// the distance of each but the last from the one after it, newest first.
// One event: nil.
func encodeEarlier(seqs []uint64) []byte {
	if len(seqs) < 2 {
		return nil
	}
	out := make([]byte, 0, len(seqs)-1)
	for i := len(seqs) - 1; i > 0; i-- {
		out = binary.AppendUvarint(out, seqs[i]-seqs[i-1])
	}
	return out
}

// errAuditIndex: an audit index entry's value does not decode.
var errAuditIndex = errors.New("audit index entry is damaged")

// decodeEntry appends to out the sequence numbers an entry files (last
// in its key, the earlier ones in v), ascending, those after after only.
func decodeEntry(out []uint64, last uint64, v []byte, after uint64) ([]uint64, error) {
	start := len(out)
	out = append(out, last)
	for s := last; len(v) > 0; {
		d, n := binary.Uvarint(v)
		if n <= 0 || d == 0 || d > s {
			return nil, errAuditIndex
		}
		v, s = v[n:], s-d
		if s <= after {
			break // the rest are earlier still
		}
		out = append(out, s)
	}
	slices.Reverse(out[start:])
	return out, nil
}

// AuditMatching intersects the indexes of q's values: each is walked in
// sequence order, and each step moves the one behind to the event at or
// after the candidate of the one ahead (a seek, when the next entry is
// not it), so that entries between the matches are skipped, not read.
// Events themselves are not read.
func (r *readTx) AuditMatching(q core.AuditMatch) ([]uint64, uint64, error) {
	var cs []auditSeeker
	for _, x := range [...]struct{ prefix, value string }{
		{pAuditTarget, q.Target}, {pAuditActor, q.Actor}, {pAuditAction, q.Action},
	} {
		if x.value == "" {
			continue
		}
		opts := badger.DefaultIteratorOptions
		opts.Prefix, opts.PrefetchValues = key(x.prefix, x.value, "/"), false
		if q.Newest {
			c := &auditBackCursor{fwd: r.txn.NewIterator(opts), prefix: opts.Prefix}
			opts.Reverse = true
			c.back = r.txn.NewIterator(opts)
			defer c.fwd.Close()
			defer c.back.Close()
			cs = append(cs, c)
			continue
		}
		c := &auditCursor{it: r.txn.NewIterator(opts), prefix: opts.Prefix}
		defer c.it.Close()
		cs = append(cs, c)
	}
	if len(cs) == 0 {
		return nil, 0, fmt.Errorf("%w: an audit match names no target, actor or action", core.ErrInvalid)
	}
	if q.Limit <= 0 || q.After >= q.Through {
		return nil, 0, nil
	}
	out, next, err := intersect(cs, q)
	if len(out) > 0 {
		// The events found, which the caller reads next in this
		// transaction, lie anywhere in the log: read only their own pages
		// of it (the index entries, read in order, were read as usual).
		r.readRandomly()
	}
	return out, next, err
}

// auditSeeker walks one audit index: seek returns its first event at or
// after x (oldest first), or its last at or before x (newest first),
// counting the entries it reads; ok is false when there is none.
type auditSeeker interface {
	seek(x uint64, reads *int) (v uint64, ok bool, err error)
}

// intersect walks the cursors of AuditMatching: each step moves one
// cursor to the candidate x, or past it to its own next event, which
// becomes the candidate; x is a match once every cursor stands on it.
func intersect(cs []auditSeeker, q core.AuditMatch) ([]uint64, uint64, error) {
	var out []uint64
	reads := 0
	// Every event between the start and x is matched or ruled out.
	x, step := q.After+1, uint64(1)
	if q.Newest {
		x, step = q.Through, math.MaxUint64 // x + step == x - 1
	}
	for i, agree := 0, 0; ; i = (i + 1) % len(cs) {
		switch {
		case reads < q.Examine:
		case !q.Newest && x-1 > q.After:
			return out, x - 1, nil
		case q.Newest && x < q.Through:
			return out, x + 1, nil
		}
		v, ok, err := cs[i].seek(x, &reads)
		if err != nil {
			return nil, 0, err
		}
		if !ok || v > q.Through || v <= q.After {
			return out, 0, nil
		}
		if v != x {
			x, agree = v, 0
		}
		if agree++; agree < len(cs) {
			continue
		}
		out = append(out, x)
		if len(out) == q.Limit || !q.Newest && x == q.Through || q.Newest && x == q.After+1 {
			return out, 0, nil
		}
		x, agree = x+step, 0
	}
}

// reaches reports whether the iterator is at an entry of c's value whose
// last event is at or after x.
func (c *auditCursor) reaches(x uint64) bool {
	if !c.it.Valid() {
		return false
	}
	k := c.it.Item().Key()
	return len(k) == len(c.prefix)+8 && uint64FromBytes(k[len(c.prefix):]) >= x
}

// auditCursor walks one audit index in sequence order.
type auditCursor struct {
	it      *badger.Iterator
	prefix  []byte
	started bool
	seqs    []uint64 // the current entry's events from the last position, ascending
}

// seek moves c to its first event at or after x (x > 0) and returns it;
// ok is false when the index has none. reads counts the entries read.
func (c *auditCursor) seek(x uint64, reads *int) (uint64, bool, error) {
	if n := len(c.seqs); n > 0 && c.seqs[n-1] >= x {
		i, _ := slices.BinarySearch(c.seqs, x)
		c.seqs = c.seqs[i:]
		return c.seqs[0], true, nil
	}
	// The current entry is behind x: the next one, if it reaches x, else
	// the first whose last event does (it holds every event of its commit
	// at or after x).
	if c.started {
		c.it.Next()
	}
	if !c.started || !c.reaches(x) {
		if c.started {
			*reads++ // the entry looked at
		}
		c.it.Seek(append(bytes.Clone(c.prefix), seqBytes(x)...))
		c.started = true
	}
	for ; c.it.Valid(); c.it.Next() {
		*reads++
		item := c.it.Item()
		k := item.Key()
		if len(k) != len(c.prefix)+8 {
			continue // the entry of a value that starts with this one and a "/"
		}
		err := item.Value(func(v []byte) error {
			var err error
			c.seqs, err = decodeEntry(c.seqs[:0], uint64FromBytes(k[len(c.prefix):]), v, x-1)
			return err
		})
		if err != nil {
			return 0, false, fmt.Errorf("%w: %q: restore the store from a backup", err, k)
		}
		return c.seqs[0], true, nil
	}
	c.seqs = nil
	return 0, false, nil
}

// auditBackCursor walks one audit index newest first. An entry files the
// events of one commit up to the one in its key, so the newest event at
// or before x is in the first entry whose key reaches x, or else it is
// the key of the entry before that one: fwd finds the first, back walks
// back from it.
type auditBackCursor struct {
	fwd, back *badger.Iterator
	prefix    []byte
	started   bool
	seqs      []uint64 // the current entry's events up to the last position, ascending
}

// seek moves c to its newest event at or before x and returns it.
func (c *auditBackCursor) seek(x uint64, reads *int) (uint64, bool, error) {
	if len(c.seqs) > 0 && c.seqs[0] <= x {
		i, found := slices.BinarySearch(c.seqs, x)
		if found {
			i++
		}
		c.seqs = c.seqs[:i]
		return c.seqs[i-1], true, nil
	}
	if c.started {
		// The entry before the current one, if it has an event at or
		// before x.
		c.back.Next()
		if v, ok, err := c.take(x, reads); err != nil || ok {
			return v, ok, err
		}
	}
	c.started = true
	// The first entry that reaches x, if it has an event at or before x.
	c.fwd.Seek(append(bytes.Clone(c.prefix), seqBytes(x)...))
	for ; c.fwd.Valid(); c.fwd.Next() {
		*reads++
		k := c.fwd.Item().Key()
		if len(k) != len(c.prefix)+8 {
			continue // the entry of a value that starts with this one and a "/"
		}
		c.back.Seek(k)
		if v, ok, err := c.take(x, reads); err != nil || ok {
			return v, ok, err
		}
		break
	}
	// Else the entry before it: the last whose key is at or before x.
	c.back.Seek(append(bytes.Clone(c.prefix), seqBytes(x)...))
	v, ok, err := c.take(x, reads)
	if err == nil && !ok {
		c.seqs = nil
	}
	return v, ok, err
}

// take decodes the entry back is at (skipping entries of other values)
// and keeps its events at or before x; ok is false when there is no
// entry, or it has no such event.
func (c *auditBackCursor) take(x uint64, reads *int) (uint64, bool, error) {
	for ; c.back.Valid(); c.back.Next() {
		*reads++
		item := c.back.Item()
		k := item.Key()
		if len(k) != len(c.prefix)+8 {
			continue
		}
		err := item.Value(func(v []byte) error {
			var err error
			c.seqs, err = decodeEntry(c.seqs[:0], uint64FromBytes(k[len(c.prefix):]), v, 0)
			return err
		})
		if err != nil {
			return 0, false, fmt.Errorf("%w: %q: restore the store from a backup", err, k)
		}
		i, found := slices.BinarySearch(c.seqs, x)
		if found {
			i++
		}
		if c.seqs = c.seqs[:i]; i == 0 {
			return 0, false, nil
		}
		return c.seqs[i-1], true, nil
	}
	return 0, false, nil
}
