package storetest

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/events"
)

func event(action, target string) *audit.Event {
	return &audit.Event{Time: t0, Actor: api.Actor{ID: "system"}, Action: action, Target: api.Target{Type: "user", ID: target}}
}

// verify checks the chain end to end and that it has n records.
func verify(t *testing.T, st Store, n uint64) {
	t.Helper()
	rep, err := core.VerifyStore(ctxb, st)
	if err != nil || rep.Break != nil {
		t.Fatalf("audit chain: %v, break %+v", err, rep.Break)
	}
	if rep.Checked != n || st.AuditHead().Seq != n {
		t.Fatalf("audit chain has %d records, head %d; want %d", rep.Checked, st.AuditHead().Seq, n)
	}
}

func testAudit(t *testing.T, b Backend) {
	st := open(t, b)
	if h := st.AuditHead(); h.Seq != 0 || h.Hash != ([audit.HashSize]byte{}) {
		t.Fatalf("head of a new store: %+v", h)
	}
	var evs []*audit.Event
	update(t, st, func(tx core.Tx) error {
		for i := range 3 {
			ev := event("user.create", fmt.Sprintf("u%d", i%2))
			evs = append(evs, ev)
			if err := tx.Audit(ev); err != nil {
				return err
			}
		}
		return tx.Audit(event("system.note", ""))
	})
	if evs[0].Seq != 1 || evs[2].Seq != 3 {
		t.Fatalf("seqs assigned: %d, %d", evs[0].Seq, evs[2].Seq)
	}
	if err := st.Update(ctxb, func(tx core.Tx) error { return tx.Audit(&audit.Event{}) }); err == nil {
		t.Fatal("an event without an action was accepted")
	}
	verify(t, st, 4)
	view(t, st, func(tx core.ReadTx) error {
		r, err := tx.AuditRecord(2)
		if err != nil {
			return err
		}
		ev, err := r.Event()
		if err != nil || ev.Target.ID != "u1" || r.Seq != 2 {
			t.Fatalf("AuditRecord(2) = %+v, %v", ev, err)
		}
		_, err = tx.AuditRecord(5)
		wantNotFound(t, "AuditRecord past the head", err)
		seqs, err := AuditBy(tx, core.AuditTarget, "u0", 0, 10)
		if err != nil || fmt.Sprint(seqs) != "[1 3]" {
			t.Fatalf("AuditBy(target u0) = %v, %v", seqs, err)
		}
		seqs, _ = AuditBy(tx, core.AuditTarget, "u0", 1, 10)
		none, _ := AuditBy(tx, core.AuditTarget, "", 0, 10)
		if fmt.Sprint(seqs) != "[3]" || len(none) != 0 {
			t.Fatalf("AuditBy(target u0, after 1) = %v; by no target %v", seqs, none)
		}
		return nil
	})
	testAuditIndexes(t, st)
	var keys []uint64
	st.AuditScan(ctxb, 1, func(k uint64, r audit.Record) (bool, error) { keys = append(keys, k); return k < 3, nil })
	if fmt.Sprint(keys) != "[2 3]" {
		t.Fatalf("AuditScan after 1, stopping at 3: %v", keys)
	}
}

var errPlanned = errors.New("planned failure")

func testFailedTx(t *testing.T, b Backend) {
	st := open(t, b)
	update(t, st, func(tx core.Tx) error { return tx.Audit(event("a", "")) })
	err := st.Update(ctxb, func(tx core.Tx) error {
		if err := tx.InsertUser(userN(1, "ghost")); err != nil {
			return err
		}
		if err := tx.Audit(event("user.create", "")); err != nil {
			return err
		}
		return errPlanned
	})
	if !errors.Is(err, errPlanned) {
		t.Fatalf("Update = %v, want the function's error", err)
	}
	update(t, st, func(tx core.Tx) error { return tx.Audit(event("b", "")) })
	verify(t, st, 2) // no gap where the failed transaction's event would have been
	view(t, st, func(tx core.ReadTx) error {
		_, err := tx.UserByName("ghost")
		wantNotFound(t, "a user of a failed transaction", err)
		return nil
	})
}

func testOwnWrites(t *testing.T, b Backend) {
	st := open(t, b)
	update(t, st, func(tx core.Tx) error {
		u := userN(1, "own")
		if err := tx.InsertUser(u); err != nil {
			return err
		}
		if got, err := tx.UserByName("own"); err != nil || got.ID != u.ID {
			t.Fatalf("a transaction does not see its own insert: %v", err)
		}
		if err := tx.PutFactor(factorN(1, u.ID, "", "active", "totp")); err != nil {
			return err
		}
		fs, _, err := tx.Factors(core.FactorFilter{UserID: u.ID}, core.PageReq{Limit: 5})
		if err != nil || len(fs) != 1 {
			t.Fatalf("a transaction does not list its own factor: %v %v", fs, err)
		}
		return tx.DeleteUser(u)
	})
}

func testCursors(t *testing.T, b Backend) {
	st := open(t, b)
	if _, err := st.Cursor(ctxb, "s1"); !errors.Is(err, events.ErrNoCursor) {
		t.Fatalf("Cursor of a new sink: %v, want ErrNoCursor", err)
	}
	for _, seq := range []uint64{5, 3, 9} {
		if err := st.SetCursor(ctxb, "s1", seq); err != nil {
			t.Fatal(err)
		}
	}
	if seq, err := st.Cursor(ctxb, "s1"); seq != 9 || err != nil {
		t.Fatalf("Cursor = %d, %v", seq, err)
	}
	for i := range 3 {
		d := events.DeadLetter{Sink: "s1", FromSeq: uint64(i), ToSeq: uint64(i + 1), At: t0.Add(time.Duration(i) * time.Second), Error: "down"}
		if err := st.AddDeadLetter(ctxb, d); err != nil {
			t.Fatal(err)
		}
	}
	dls, err := st.DeadLetters(ctxb, "s1")
	if err != nil || len(dls) != 3 || dls[0].FromSeq != 0 || dls[2].FromSeq != 2 {
		t.Fatalf("DeadLetters = %+v, %v", dls, err)
	}
	if other, _ := st.DeadLetters(ctxb, "s2"); len(other) != 0 {
		t.Fatalf("another sink's dead letters: %+v", other)
	}
}

// testConcurrentIncrements: writers that read a counter and write it
// back must not lose each other's updates; collisions are retried.
func testConcurrentIncrements(t *testing.T, b Backend) {
	st := open(t, b)
	u := userN(1, "counter")
	update(t, st, func(tx core.Tx) error { return tx.InsertUser(u) })
	const writers, each = 8, 25
	var wg sync.WaitGroup
	var done atomic.Int64
	errs := make(chan error, writers*each)
	for range writers {
		wg.Go(func() {
			for range each {
				err := st.Update(ctxb, func(tx core.Tx) error {
					x, err := tx.User(u.ID)
					if err != nil {
						return err
					}
					x.Failures++
					if err := tx.PutUser(x); err != nil {
						return err
					}
					return tx.Audit(event("user.update", u.ID))
				})
				switch {
				case err == nil:
					done.Add(1)
				case errors.Is(err, core.ErrConflict):
					// Allowed: it kept colliding and changed nothing (on a
					// loaded machine eight writers on one record can).
				default:
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("an increment failed: %v", err)
	}
	n := int(done.Load())
	if n < writers*each/2 {
		t.Fatalf("only %d of %d increments went through", n, writers*each)
	}
	view(t, st, func(tx core.ReadTx) error {
		x, err := tx.User(u.ID)
		if x.Failures != n {
			t.Fatalf("counter = %d after %d acknowledged increments: updates were lost", x.Failures, n)
		}
		return err
	})
	verify(t, st, uint64(n))
}

func testConcurrentInserts(t *testing.T, b Backend) {
	st := open(t, b)
	const n = 8
	res := make(chan error, n)
	for i := range n {
		go func() { res <- st.Update(ctxb, func(tx core.Tx) error { return tx.InsertUser(userN(i+1, "same")) }) }()
	}
	onlyOneInserted(t, res, n)
}

// testNameFoundFreeThenTaken: a transaction looks a username up and finds
// no user (as a directory sync does before it creates one); whatever then
// takes the name in the same transaction (an insert, a rename), a second
// insert of it is refused, and a name freed by a deletion can be taken.
func testNameFoundFreeThenTaken(t *testing.T, b Backend) {
	st := open(t, b)
	update(t, st, func(tx core.Tx) error { return tx.InsertUser(userN(1, "held")) })
	takes := []struct {
		name string
		take func(tx core.Tx) error
	}{
		{"an insert", func(tx core.Tx) error { return tx.InsertUser(userN(2, "free")) }},
		{"a rename", func(tx core.Tx) error {
			u, err := tx.UserByName("held")
			if err != nil {
				return err
			}
			u.Username = "free"
			return tx.RenameUser("held", u)
		}},
	}
	for _, c := range takes {
		err := st.Update(ctxb, func(tx core.Tx) error {
			if _, err := tx.UserByName("free"); !errors.Is(err, core.ErrNotFound) {
				return fmt.Errorf("the free name: %v, want ErrNotFound", err)
			}
			if err := c.take(tx); err != nil {
				return err
			}
			return tx.InsertUser(userN(3, "free"))
		})
		if !errors.Is(err, core.ErrAlreadyExists) {
			t.Fatalf("after %s took the name, an insert of it: %v, want ErrAlreadyExists", c.name, err)
		}
	}
	update(t, st, func(tx core.Tx) error {
		if _, err := tx.UserByName("gone"); !errors.Is(err, core.ErrNotFound) {
			return fmt.Errorf("the free name: %v, want ErrNotFound", err)
		}
		if err := tx.InsertUser(userN(4, "gone")); err != nil {
			return err
		}
		if err := tx.DeleteUser(userN(4, "gone")); err != nil {
			return err
		}
		return tx.InsertUser(userN(5, "gone"))
	})
	view(t, st, func(tx core.ReadTx) error {
		u, err := tx.UserByName("gone")
		if err == nil && u.ID != userN(5, "gone").ID {
			t.Fatalf("gone is %s, want the second insert", u.ID)
		}
		return err
	})
}

// testConcurrentLookupInserts: transactions at once each find a username
// free and insert it; one of them succeeds.
func testConcurrentLookupInserts(t *testing.T, b Backend) {
	st := open(t, b)
	const n = 8
	res := make(chan error, n)
	for i := range n {
		go func() {
			res <- st.Update(ctxb, func(tx core.Tx) error {
				if _, err := tx.UserByName("same"); err != nil && !errors.Is(err, core.ErrNotFound) {
					return err
				}
				return tx.InsertUser(userN(i+1, "same"))
			})
		}()
	}
	onlyOneInserted(t, res, n)
}

// testWriteSkew: each transaction reads two records and sets its own
// only if neither is set. Two that run at once must not both commit
// (each read what the other writes).
func testWriteSkew(t *testing.T, b Backend) {
	st := open(t, b)
	for round := range 10 {
		x, y := userN(round*2+1, fmt.Sprintf("x%d", round)), userN(round*2+2, fmt.Sprintf("y%d", round))
		update(t, st, func(tx core.Tx) error {
			if err := tx.InsertUser(x); err != nil {
				return err
			}
			return tx.InsertUser(y)
		})
		var wg sync.WaitGroup
		for _, mine := range []core.User{x, y} {
			wg.Go(func() {
				st.Update(ctxb, func(tx core.Tx) error {
					a, _ := tx.User(x.ID)
					b, _ := tx.User(y.ID)
					if a.Failures+b.Failures > 0 {
						return nil
					}
					time.Sleep(2 * time.Millisecond) // let the other read too
					m := mine
					m.Failures = 1
					return tx.PutUser(m)
				})
			})
		}
		wg.Wait()
		view(t, st, func(tx core.ReadTx) error {
			a, _ := tx.User(x.ID)
			b, _ := tx.User(y.ID)
			if a.Failures+b.Failures != 1 {
				t.Fatalf("round %d: %d records set; two transactions that read each other's record both committed", round, a.Failures+b.Failures)
			}
			return nil
		})
	}
}

// testChainConcurrent: writers appending events at once leave a chain
// with no gap, each transaction's events together and in order.
func testChainConcurrent(t *testing.T, b Backend) {
	st := open(t, b)
	const writers, each = 8, 20
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				err := st.Update(ctxb, func(tx core.Tx) error {
					for part := range 2 {
						if err := tx.Audit(event(fmt.Sprintf("w%d.%d.%d", w, i, part), "")); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
				}
			}
		})
	}
	wg.Wait()
	verify(t, st, writers*each*2)
	var prev string
	st.AuditScan(ctxb, 0, func(k uint64, r audit.Record) (bool, error) {
		ev, _ := r.Event()
		if k%2 == 0 && strings.TrimSuffix(ev.Action, ".1") != strings.TrimSuffix(prev, ".0") {
			t.Errorf("seq %d (%s) does not follow its transaction's first event (%s)", k, ev.Action, prev)
		}
		prev = ev.Action
		return true, nil
	})
}

const childEnv = "KEYFLEET_STORETEST_CHILD"

// Child is the killed writer of the durability test: when the suite
// starts the test binary again with its place, it writes users with
// audit events, printing each one's name once Update returned, until it
// is killed. Call it first in TestMain; it returns at once otherwise.
func Child(b Backend) {
	place := os.Getenv(childEnv)
	if place == "" {
		return
	}
	st, err := b.Open(place)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	for i := 1; ; i++ {
		name := fmt.Sprintf("durable%06d", i)
		err := st.Update(ctxb, func(tx core.Tx) error {
			if err := tx.InsertUser(userN(i, name)); err != nil {
				return err
			}
			return tx.Audit(event("user.create", userN(i, name).ID))
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(4)
		}
		fmt.Println("acked", name)
	}
}

// testDurableAfterKill: every write acknowledged before the writer was
// killed with SIGKILL is there after reopening, and the chain is whole.
func testDurableAfterKill(t *testing.T, b Backend) {
	place := b.New(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+place)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	sc := bufio.NewScanner(out)
	for sc.Scan() && len(acked) < 300 {
		if name, ok := strings.CutPrefix(sc.Text(), "acked "); ok {
			acked = append(acked, name)
		}
	}
	cmd.Process.Kill() // SIGKILL, mid-write
	for sc.Scan() {    // what it acknowledged before it died
		if name, ok := strings.CutPrefix(sc.Text(), "acked "); ok {
			acked = append(acked, name)
		}
	}
	cmd.Wait()
	if len(acked) < 300 {
		t.Fatalf("the writer acknowledged only %d writes", len(acked))
	}
	st, err := b.Open(place)
	if err != nil {
		t.Fatalf("reopening after the kill: %v", err)
	}
	defer st.Close()
	view(t, st, func(tx core.ReadTx) error {
		for _, name := range acked {
			if _, err := tx.UserByName(name); err != nil {
				t.Fatalf("%s was acknowledged but is gone after the kill: %v", name, err)
			}
		}
		return nil
	})
	rep, err := core.VerifyStore(ctxb, st)
	if err != nil || rep.Break != nil || rep.Checked < uint64(len(acked)) {
		t.Fatalf("chain after the kill: %d records, %v, break %+v (acked %d)", rep.Checked, err, rep.Break, len(acked))
	}
}

// testAuditIndexes: events are found by target, actor and action through
// AuditBy, oldest first, after a sequence number, up to a limit.
func testAuditIndexes(t *testing.T, st Store) {
	head := st.AuditHead().Seq
	evs := []struct{ actor, action, target string }{
		{"usr_a", "factor.revoke", "fac_1"}, {"usr_b", "user.create", "usr_x"}, {"usr_a", "user.create", "usr_y"},
		{"usr_b", "factor.revoke", "fac_1"}, {"", "system.note", ""}, {"usr_a", "factor.revoke", "fac_2"},
	}
	update(t, st, func(tx core.Tx) error {
		for _, e := range evs {
			ev := event(e.action, e.target)
			ev.Actor.ID = e.actor
			if err := tx.Audit(ev); err != nil {
				return err
			}
		}
		return nil
	})
	at := func(i ...int) string { // the seqs of evs[i...]
		out := make([]uint64, len(i))
		for j, n := range i {
			out[j] = head + uint64(n) + 1
		}
		return fmt.Sprint(out)
	}
	tests := []struct {
		name  string
		field core.AuditField
		value string
		after uint64
		limit int
		want  string
	}{
		{"by actor", core.AuditActor, "usr_a", 0, 10, at(0, 2, 5)},
		{"by actor after one of its events", core.AuditActor, "usr_a", head + 1, 10, at(2, 5)},
		{"by action", core.AuditAction, "factor.revoke", 0, 10, at(0, 3, 5)},
		{"by action up to a limit", core.AuditAction, "factor.revoke", 0, 2, at(0, 3)},
		{"by target", core.AuditTarget, "fac_1", 0, 10, at(0, 3)},
		{"by an actor nobody is", core.AuditActor, "usr_nobody", 0, 10, "[]"},
		{"by an empty actor", core.AuditActor, "", 0, 10, "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			view(t, st, func(tx core.ReadTx) error {
				seqs, err := AuditBy(tx, tt.field, tt.value, tt.after, tt.limit)
				if err != nil || fmt.Sprint(nonNilSeqs(seqs)) != tt.want {
					t.Fatalf("AuditBy(%s %q after %d) = %v, %v; want %s", tt.field, tt.value, tt.after, seqs, err, tt.want)
				}
				return nil
			})
		})
	}
	testAuditIndexPaging(t, st)
	testAuditMatching(t, st)
	view(t, st, func(tx core.ReadTx) error {
		if _, err := AuditBy(tx, "request_id", "x", 0, 10); !errors.Is(err, core.ErrInvalid) {
			t.Errorf("AuditBy an unindexed field: %v, want ErrInvalid", err)
		}
		return nil
	})
}

// testAuditIndexPaging: a bulk change audits many events of one actor
// and action in one commit, between the single events of other commits;
// paging through them from every point, one or several at a time, finds
// each once, in order.
func testAuditIndexPaging(t *testing.T, st Store) {
	var want []uint64
	for range 3 {
		head := st.AuditHead().Seq
		update(t, st, func(tx core.Tx) error {
			for i := range 40 {
				ev := event("bulk.step", fmt.Sprintf("usr_bulk%d", i%7))
				ev.Actor.ID = "bulk-actor"
				if i%10 == 3 {
					ev.Actor.ID, ev.Action = "someone-else", "other.step" // interleaved in the commit
				}
				if err := tx.Audit(ev); err != nil {
					return err
				}
			}
			return nil
		})
		for i := range 40 {
			if i%10 != 3 {
				want = append(want, head+uint64(i)+1)
			}
		}
		update(t, st, func(tx core.Tx) error { // a commit in between with one event of the actor
			ev := event("other.step", "usr_elsewhere")
			ev.Actor.ID = "bulk-actor"
			return tx.Audit(ev)
		})
		want = append(want, head+41)
	}
	for _, limit := range []int{1, 3, 36, 1000} {
		for _, from := range []uint64{0, want[0] - 1, want[0], want[5], want[35], want[36], want[len(want)-1]} {
			var got []uint64
			view(t, st, func(tx core.ReadTx) error {
				for after := from; ; {
					page, err := AuditBy(tx, core.AuditActor, "bulk-actor", after, limit)
					if err != nil {
						t.Fatalf("AuditBy(actor bulk-actor after %d, limit %d): %v", after, limit, err)
					}
					if len(page) > limit {
						t.Fatalf("AuditBy(limit %d) gave %d", limit, len(page))
					}
					got = append(got, page...)
					if len(page) < limit {
						return nil
					}
					after = page[len(page)-1]
				}
			})
			var exp []uint64
			for _, s := range want {
				if s > from {
					exp = append(exp, s)
				}
			}
			if fmt.Sprint(nonNilSeqs(got)) != fmt.Sprint(nonNilSeqs(exp)) {
				t.Fatalf("paging by actor from %d, %d at a time:\n got %v\nwant %v", from, limit, got, exp)
			}
		}
	}
	testAuditIndexNewestFirst(t, st, want)
	view(t, st, func(tx core.ReadTx) error {
		seqs, err := AuditBy(tx, core.AuditTarget, "usr_bulk3", 0, 1000)
		if err != nil || len(seqs) != 3*6 { // i = 3, 10, 17, 24, 31, 38 in each round
			t.Errorf("by target usr_bulk3: %v, %v; want 18 events", seqs, err)
		}
		seqs, err = AuditBy(tx, core.AuditAction, "other.step", 0, 1000)
		if err != nil || len(seqs) != 3*4+3 { // i = 3, 13, 23, 33 and the commit in between, each round
			t.Errorf("by action other.step: %v, %v; want 15 events", seqs, err)
		}
		return nil
	})
}

// testAuditMatching: AuditMatching finds the events with every value it
// names, as a check of each event would, for every combination of
// target, actor and action, after any point and up to Through; followed
// through its cursors with a bound of one, two or five entries a call,
// it finds the same events, in order, once, and every call moves on.
func testAuditMatching(t *testing.T, st Store) {
	type ev struct {
		seq                   uint64
		target, actor, action string
	}
	var evs []ev
	pick := func(i, n int, name string) string { return fmt.Sprintf("m-%s%d", name, i%n) }
	// Commits of one event and bulk commits of many, the values cycling
	// at different rates so that every combination occurs, spread out.
	for c, size := range []int{1, 30, 1, 1, 45, 2, 1, 60, 1, 3, 1, 1} {
		head := st.AuditHead().Seq
		update(t, st, func(tx core.Tx) error {
			for i := range size {
				n := c*7 + i
				e := event(pick(n, 3, "action"), pick(n/2, 5, "target"))
				e.Actor.ID = pick(n/3, 4, "actor")
				if n%11 == 0 {
					e.Actor.ID = "" // a system event: no actor
				}
				if err := tx.Audit(e); err != nil {
					return err
				}
				evs = append(evs, ev{head + uint64(i) + 1, e.Target.ID, e.Actor.ID, e.Action})
			}
			return nil
		})
	}
	head := st.AuditHead().Seq
	first := evs[0].seq
	var queries []core.AuditMatch
	for _, target := range []string{"", "m-target1", "m-target4", "m-nobody"} {
		for _, actor := range []string{"", "m-actor0", "m-actor3"} {
			for _, action := range []string{"", "m-action2", "m-action0"} {
				if target != "" || actor != "" || action != "" {
					queries = append(queries, core.AuditMatch{Target: target, Actor: actor, Action: action})
				}
			}
		}
	}
	want := func(q core.AuditMatch) []uint64 {
		out := []uint64{}
		for _, e := range evs {
			if e.seq > q.After && e.seq <= q.Through && (q.Target == "" || e.target == q.Target) &&
				(q.Actor == "" || e.actor == q.Actor) && (q.Action == "" || e.action == q.Action) {
				out = append(out, e.seq)
			}
		}
		return out
	}
	matches := 0
	for _, q := range queries {
		for _, newest := range []bool{false, true} {
			for _, after := range []uint64{0, first, first + 20, first + 77, head - 1} {
				for _, through := range []uint64{head, first + 90} {
					q := q
					q.After, q.Through, q.Limit, q.Examine, q.Newest = after, through, 1000, 1_000_000, newest
					exp := want(q)
					if newest {
						slices.Reverse(exp)
					}
					matches += len(exp)
					checkAuditMatching(t, st, q, exp)
				}
			}
		}
	}
	if matches < 100 {
		t.Fatalf("only %d matches in all: the test's events do not cover the combinations", matches)
	}
	view(t, st, func(tx core.ReadTx) error {
		if _, _, err := tx.AuditMatching(core.AuditMatch{Through: head, Limit: 10, Examine: 10}); !errors.Is(err, core.ErrInvalid) {
			t.Errorf("AuditMatching with no value: %v, want ErrInvalid", err)
		}
		return nil
	})
}

// checkAuditMatching checks that AuditMatching(q) finds exp, whole and up
// to a limit of two, and followed through its cursors with a bound of one,
// two or five entries a call.
func checkAuditMatching(t *testing.T, st Store, q core.AuditMatch, exp []uint64) {
	t.Helper()
	view(t, st, func(tx core.ReadTx) error {
		got, next, err := tx.AuditMatching(q)
		if err != nil || next != 0 || fmt.Sprint(nonNilSeqs(got)) != fmt.Sprint(exp) {
			t.Fatalf("AuditMatching(%+v) = %v, next %d, %v;\nwant %v", q, got, next, err, exp)
		}
		if len(exp) > 2 {
			q := q
			q.Limit = 2
			got, next, err = tx.AuditMatching(q)
			if err != nil || next != 0 || fmt.Sprint(got) != fmt.Sprint(exp[:2]) {
				t.Fatalf("AuditMatching(%+v) = %v, next %d, %v; want %v", q, got, next, err, exp[:2])
			}
		}
		return nil
	})
	for _, examine := range []int{1, 2, 5} {
		q := q
		q.Examine, q.Limit = examine, 3
		var got []uint64
		view(t, st, func(tx core.ReadTx) error {
			for calls := 0; ; calls++ {
				page, next, err := tx.AuditMatching(q)
				if err != nil || calls > 1000 {
					t.Fatalf("AuditMatching(%+v): %v after %d calls", q, err, calls)
				}
				got = append(got, page...)
				var last uint64
				if len(page) > 0 {
					last = page[len(page)-1]
				}
				switch {
				case next != 0 && !q.Newest && (next <= q.After || next > q.Through || next < last):
					t.Fatalf("AuditMatching(%+v) = %v, next %d: not a step forward", q, page, next)
				case next != 0 && q.Newest && (next <= q.After || next > q.Through || len(page) > 0 && next > last):
					t.Fatalf("AuditMatching(%+v) = %v, next %d: not a step back", q, page, next)
				case next != 0 && !q.Newest:
					q.After = next
				case next != 0:
					q.Through = next - 1
				case len(page) == q.Limit && !q.Newest:
					q.After = last
				case len(page) == q.Limit:
					q.Through = last - 1
				default:
					return nil
				}
				if q.After >= q.Through {
					return nil
				}
			}
		})
		if fmt.Sprint(nonNilSeqs(got)) != fmt.Sprint(nonNilSeqs(exp)) {
			t.Fatalf("AuditMatching(%+v) followed, %d entries a call:\n got %v\nwant %v", q, examine, got, exp)
		}
	}
}

// testAuditIndexNewestFirst: AuditByBefore pages back through the bulk
// actor's events (want, ascending) from every point, one or several at a
// time, newest first, finding each once, including the events of a bulk
// commit below a point inside it.
func testAuditIndexNewestFirst(t *testing.T, st Store, want []uint64) {
	for _, limit := range []int{1, 3, 36, 1000} {
		for _, from := range []uint64{want[len(want)-1] + 1000, want[len(want)-1] + 1, want[len(want)-1], want[40], want[37], want[5], want[0] + 1, want[0], 1} {
			var got []uint64
			view(t, st, func(tx core.ReadTx) error {
				for before := from; ; {
					page, err := AuditByBefore(tx, core.AuditActor, "bulk-actor", before, limit)
					if err != nil {
						t.Fatalf("AuditByBefore(actor bulk-actor below %d, limit %d): %v", before, limit, err)
					}
					if len(page) > limit {
						t.Fatalf("AuditByBefore(limit %d) gave %d", limit, len(page))
					}
					got = append(got, page...)
					if len(page) < limit {
						return nil
					}
					before = page[len(page)-1]
				}
			})
			var exp []uint64
			for i := len(want) - 1; i >= 0; i-- {
				if want[i] < from {
					exp = append(exp, want[i])
				}
			}
			if fmt.Sprint(nonNilSeqs(got)) != fmt.Sprint(nonNilSeqs(exp)) {
				t.Fatalf("paging back by actor from below %d, %d at a time:\n got %v\nwant %v", from, limit, got, exp)
			}
		}
	}
	view(t, st, func(tx core.ReadTx) error {
		for _, tt := range []struct {
			field         core.AuditField
			value         string
			before        uint64
			limit         int
			wantNone      bool
			wantInvalidFn bool
		}{
			{core.AuditActor, "", want[len(want)-1] + 1, 10, true, false},
			{core.AuditActor, "bulk-actor", 0, 10, true, false},
			{core.AuditActor, "bulk-actor", want[len(want)-1] + 1, 0, true, false},
			{core.AuditActor, "usr_nobody", want[len(want)-1] + 1, 10, true, false},
			{"request_id", "x", 10, 10, false, true},
		} {
			seqs, err := AuditByBefore(tx, tt.field, tt.value, tt.before, tt.limit)
			switch {
			case tt.wantInvalidFn && !errors.Is(err, core.ErrInvalid):
				t.Errorf("AuditByBefore an unindexed field: %v, want ErrInvalid", err)
			case tt.wantNone && (err != nil || len(seqs) != 0):
				t.Errorf("AuditByBefore(%s %q below %d, limit %d) = %v, %v; want nothing", tt.field, tt.value, tt.before, tt.limit, seqs, err)
			}
		}
		return nil
	})
}

func nonNilSeqs(s []uint64) []uint64 {
	if s == nil {
		return []uint64{}
	}
	return s
}

// SpansFindTheFirstBreak checks st's chain in four spans and in one
// walk: both must report the same, and that is a break at broken whose
// reason says reason. A span takes its first record's previous-hash as
// given until the spans are joined; this is what the joins are tested by.
func SpansFindTheFirstBreak(t *testing.T, st core.Store, broken uint64, reason string) {
	t.Helper()
	got, err := core.VerifyStoreInSpans(ctxb, st, 4)
	if err != nil {
		t.Fatal(err)
	}
	want, err := core.VerifyStoreInSpans(ctxb, st, 1)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got, got.Break) != fmt.Sprint(want, want.Break) {
		t.Fatalf("in four spans: %+v %+v\none walk:      %+v %+v", got, got.Break, want, want.Break)
	}
	if got.Break == nil || got.Break.Seq != broken || !strings.Contains(got.Break.Reason, reason) {
		t.Fatalf("broke at %+v, want %d (%s)", got.Break, broken, reason)
	}
}

// AuditBy lists the sequence numbers of the events whose field has value,
// oldest first, after the given seq, up to limit, through the store's
// AuditMatching with no bound on what it examines: what the conformance
// tests ask of one field's index. An empty value finds nothing; a field
// the events are not indexed by is core.ErrInvalid.
func AuditBy(tx core.ReadTx, field core.AuditField, value string, after uint64, limit int) ([]uint64, error) {
	q, err := oneField(field, value)
	if err != nil || value == "" || limit <= 0 || after == math.MaxUint64 {
		return nil, err
	}
	q.After, q.Through, q.Limit, q.Examine = after, math.MaxUint64, limit, math.MaxInt
	seqs, _, err := tx.AuditMatching(q)
	return seqs, err
}

// AuditByBefore is AuditBy newest first, below before.
func AuditByBefore(tx core.ReadTx, field core.AuditField, value string, before uint64, limit int) ([]uint64, error) {
	q, err := oneField(field, value)
	if err != nil || value == "" || limit <= 0 || before == 0 {
		return nil, err
	}
	q.Through, q.Limit, q.Examine, q.Newest = before-1, limit, math.MaxInt, true
	seqs, _, err := tx.AuditMatching(q)
	return seqs, err
}

// oneField is the match of one field's value.
func oneField(field core.AuditField, value string) (core.AuditMatch, error) {
	switch field {
	case core.AuditTarget:
		return core.AuditMatch{Target: value}, nil
	case core.AuditActor:
		return core.AuditMatch{Actor: value}, nil
	case core.AuditAction:
		return core.AuditMatch{Action: value}, nil
	}
	return core.AuditMatch{}, fmt.Errorf("%w: audit events are not indexed by %q", core.ErrInvalid, field)
}

// onlyOneInserted reads n racing inserts' results of one username from
// res: exactly one succeeds, the others are refused as taken.
func onlyOneInserted(t *testing.T, res <-chan error, n int) {
	t.Helper()
	ok := 0
	for range n {
		err := <-res
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, core.ErrAlreadyExists):
			t.Fatalf("a racing insert failed with %v, want ErrAlreadyExists", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d racing inserts of one username succeeded, want 1", ok)
	}
}
