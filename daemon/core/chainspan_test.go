package core

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/keyfleet/keyfleet/daemon/audit"
)

// chainStore is a Store that holds only an audit chain, in a map that a
// test can tamper with.
type chainStore struct {
	Store
	recs map[uint64]audit.Record
	head audit.Head
}

func (c *chainStore) AuditHead() audit.Head { return c.head }

func (c *chainStore) AuditScan(ctx context.Context, after uint64, fn func(uint64, audit.Record) (bool, error)) error {
	for _, k := range slices.Sorted(maps.Keys(c.recs)) {
		if k <= after {
			continue
		}
		if cont, err := fn(k, c.recs[k]); err != nil || !cont {
			return err
		}
	}
	return nil
}

func newChainStore(n int) *chainStore {
	c := &chainStore{recs: map[uint64]audit.Record{}}
	var ch audit.Chain
	for i := range n {
		r, _ := ch.Next(&audit.Event{Action: "test.event", Extra: map[string]string{"i": fmt.Sprint(i)}})
		c.recs[r.Seq] = r
	}
	c.head = ch.Head
	return c
}

// walk is the reference: one Verifier from the first record to the head.
func walk(c *chainStore) ChainReport {
	var v audit.Verifier
	err := c.AuditScan(context.Background(), 0, func(k uint64, r audit.Record) (bool, error) { return true, v.Check(k, r) })
	if err == nil {
		err = v.Finish(c.head)
	}
	out := ChainReport{Checked: v.Checked(), Head: c.head}
	out.Break, _ = err.(*audit.BreakError)
	return out
}

// Checking a chain in spans on several goroutines finds what one walk
// finds, wherever the chain was tampered with: the same first break, the
// same reason, the same count of records checked before it.
func TestAChainCheckedInSpansFindsWhatOneWalkFinds(t *testing.T) {
	const n = 100 // spans of 25 on four goroutines: boundaries after 25, 50, 75
	tests := []struct {
		name   string
		tamper func(c *chainStore)
	}{
		{"an intact chain", func(*chainStore) {}},
		{"a record edited in the second span", func(c *chainStore) { r := c.recs[40]; r.Body = []byte(`{"edited":1}`); c.recs[40] = r }},
		{"the first record of a span removed", func(c *chainStore) { delete(c.recs, 51) }},
		{"the last record of a span removed", func(c *chainStore) { delete(c.recs, 50) }},
		{"a whole span's records removed", func(c *chainStore) {
			for k := uint64(26); k <= 50; k++ {
				delete(c.recs, k)
			}
		}},
		{"the first record removed", func(c *chainStore) { delete(c.recs, 1) }},
		{"two records swapped across a boundary", func(c *chainStore) { c.recs[50], c.recs[51] = c.recs[51], c.recs[50] }},
		{"a record in the first span rehashed, linking to nothing", func(c *chainStore) {
			r := c.recs[10]
			r.Prev[0] ^= 1
			c.recs[10] = r
		}},
		{"the first record of a span replaced by a well-formed one linking elsewhere", func(c *chainStore) {
			forged := audit.Chain{Head: audit.Head{Seq: 50, Hash: [audit.HashSize]byte{7}}}
			r, _ := forged.Next(&audit.Event{Action: "test.forged"})
			c.recs[51] = r
		}},
		{"records cut from the end", func(c *chainStore) { delete(c.recs, 100); delete(c.recs, 99) }},
		{"the end cut with its head", func(c *chainStore) { delete(c.recs, 100); c.head = audit.Head{Seq: 99, Hash: c.recs[99].Hash} }},
		{"a record beyond the head", func(c *chainStore) { c.recs[101] = audit.Record{Seq: 101, Body: []byte("{}")} }},
		{"every span broken", func(c *chainStore) {
			for _, k := range []uint64{20, 45, 70, 95} {
				r := c.recs[k]
				r.Body = []byte(`{"x":1}`)
				c.recs[k] = r
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newChainStore(n)
			tt.tamper(c)
			want := walk(c)
			got, err := verifyChain(context.Background(), c, 4, 10)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("in spans: %+v %+v\none walk: %+v %+v", got, got.Break, want, want.Break)
			}
		})
	}
}
