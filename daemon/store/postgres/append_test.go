package postgres_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/store/postgres"
)

func openStore(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), postgres.Options{DSN: dsn, StoreKey: storeKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func appendEvents(st *postgres.Store, action string, n int) error {
	return st.Update(context.Background(), func(tx core.Tx) error {
		for i := range n {
			ev := &audit.Event{Time: time.Now(), Actor: api.Actor{ID: "system"}, Action: fmt.Sprintf("%s.%d", action, i), Target: api.Target{Type: "user", ID: "usr_x"}}
			if err := tx.Audit(ev); err != nil {
				return err
			}
		}
		return nil
	})
}

// checkChain verifies the chain and that every acknowledged transaction
// left its events, together and in order.
func checkChain(t *testing.T, st *postgres.Store, acked map[string]bool, per int) {
	t.Helper()
	rep, err := core.VerifyStore(context.Background(), st)
	if err != nil || rep.Break != nil {
		t.Fatalf("audit chain: %v, break %+v", err, rep.Break)
	}
	seen := map[string]int{}
	var prev string
	st.AuditScan(context.Background(), 0, func(seq uint64, r audit.Record) (bool, error) {
		ev, _ := r.Event()
		var tx string
		var part int
		fmt.Sscanf(ev.Action, "%s", &tx)
		if i := len(ev.Action) - 2; i > 0 && ev.Action[i] == '.' {
			tx, part = ev.Action[:i], int(ev.Action[i+1]-'0')
		}
		if part > 0 && prev != fmt.Sprintf("%s.%d", tx, part-1) {
			t.Errorf("seq %d (%s) does not follow its transaction's event %d (%s)", seq, ev.Action, part-1, prev)
		}
		seen[tx]++
		prev = ev.Action
		return true, nil
	})
	for tx := range acked {
		if seen[tx] != per {
			t.Errorf("acknowledged transaction %s left %d events, want %d", tx, seen[tx], per)
		}
	}
}

// TestTwoKeyfleetdAppendingAtOnceKeepOneChain: two stores on one database
// (two keyfleetd) append at once from several writers each. Each guesses
// where the head is and pipelines its commits; the guesses fail whenever
// the other appended in between, those transactions run again, and the
// chain has every acknowledged transaction's events once, together, with
// no gap.
func TestTwoKeyfleetdAppendingAtOnceKeepOneChain(t *testing.T) {
	dsn := cluster.Database(t)
	a, b := openStore(t, dsn), openStore(t, dsn)
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	for w := range 8 {
		st := []*postgres.Store{a, b}[w%2]
		wg.Go(func() {
			for i := range 40 {
				name := fmt.Sprintf("w%d-%d", w, i)
				if err := appendEvents(st, name, 3); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				mu.Lock()
				acked[name] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	checkChain(t, a, acked, 3)
	for i, st := range []*postgres.Store{a, b} {
		p, l, m := st.AppendStats()
		t.Logf("keyfleetd %d: %d commits pipelined, %d locked, %d guesses failed", i+1, p, l, m)
		if p+l == 0 {
			t.Fatalf("keyfleetd %d appended nothing", i+1)
		}
	}
}

// TestOneKeyfleetdPipelinesItsCommits: alone on the database, a keyfleetd
// appends the locked way once, then pipelines every commit after it
// (several transactions may share one commit: group.go).
func TestOneKeyfleetdPipelinesItsCommits(t *testing.T) {
	st := openStore(t, cluster.Database(t))
	acked := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 25 {
				name := fmt.Sprintf("w%d-%d", w, i)
				if err := appendEvents(st, name, 2); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				mu.Lock()
				acked[name] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	checkChain(t, st, acked, 2)
	p, l, m := st.AppendStats()
	g := st.Grouped()
	t.Logf("%d commits pipelined, %d locked, %d guesses failed; %d of the 200 transactions shared a commit", p, l, m, g)
	if m != 0 || l > 2 || p+l < 200-g {
		t.Fatalf("%d commits pipelined, %d locked, %d guesses failed; %d of the 200 transactions shared a commit: want all but the first pipelined and none failed", p, l, m, g)
	}
}

// TestAWrongGuessOfTheHeadChangesNothing: a keyfleetd that believes the
// chain ends elsewhere (a restored database, a bug) has its commit
// refused by the guard, not appended after the wrong link; it runs again
// the locked way and the chain stays whole.
func TestAWrongGuessOfTheHeadChangesNothing(t *testing.T) {
	st := openStore(t, cluster.Database(t))
	for i := range 3 {
		if err := appendEvents(st, fmt.Sprintf("before-%d", i), 1); err != nil {
			t.Fatal(err)
		}
	}
	for _, wrong := range []audit.Head{
		{Seq: 3, Hash: sha256.Sum256([]byte("another history at the same seq"))},
		{Seq: 2},
		{Seq: 40},
	} {
		st.GuessTail(wrong)
		_, _, movedBefore := st.AppendStats()
		if err := appendEvents(st, fmt.Sprintf("after-%d", wrong.Seq), 1); err != nil {
			t.Fatal(err)
		}
		if _, _, moved := st.AppendStats(); moved != movedBefore+1 {
			t.Fatalf("a guess of %d was not refused by the guard", wrong.Seq)
		}
	}
	checkChain(t, st, map[string]bool{"before-0": true, "before-1": true, "before-2": true, "after-3": true, "after-2": true, "after-40": true}, 1)
	if h := st.AuditHead(); h.Seq != 6 {
		t.Fatalf("head %d after six commits", h.Seq)
	}
}
