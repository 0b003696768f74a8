package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/cluster"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/push"
)

func (n *node) pushes() *cluster.Pushes {
	return &cluster.Pushes{Pool: n.st.Pool(), Sealer: n.st}
}

// pending is a push to user's phone, running out a minute after t0.
func pending(vid, user string) core.Pending {
	return core.Pending{Ticket: "ticket-" + vid + "-sealed-verification", VerificationID: vid, FactorID: "fac_" + user + "_phone",
		Kind: "push", UserID: "usr_" + user, Username: user, Application: "payroll-portal", Address: "198.51.100.7",
		Delivery: []byte(`{"verification_id":"` + vid + `","choices":["17","47","83"],"application":"payroll-portal"}`),
		Time:     t0, Deadline: t0.Add(time.Minute)}
}

// TestAPushFiledByOneKeyfleetdIsAnsweredOnAnotherOnce: the push filed
// through A is listed for its phone through B, claimed there once (A no
// longer can), and its outcome is taken once, through A.
func TestAPushFiledByOneKeyfleetdIsAnsweredOnAnotherOnce(t *testing.T) {
	dsn, key := newDatabase(t)
	a, b := open(t, dsn, key).pushes(), open(t, dsn, key).pushes()
	ctx, p := context.Background(), pending("ver_1", "alice")
	if err := a.Put(ctx, p); err != nil {
		t.Fatal(err)
	}
	list, err := b.Waiting(ctx, p.FactorID, t0.Add(time.Second))
	if err != nil || len(list) != 1 || list[0].Ticket != p.Ticket || !bytes.Equal(list[0].Delivery, p.Delivery) {
		t.Fatalf("B lists %+v, %v", list, err)
	}
	if n, err := b.Count(ctx, t0.Add(time.Second)); n != 1 || err != nil {
		t.Fatalf("B counts %d pending, %v", n, err)
	}
	if a.ID(p.VerificationID, p.FactorID) != b.ID(p.VerificationID, p.FactorID) {
		t.Fatal("the two keyfleetd name the push differently")
	}
	if _, done, err := a.Result(ctx, p.VerificationID, p.FactorID); done || err != nil {
		t.Fatalf("an outcome before any answer: %v %v", done, err)
	}
	got, err := b.Claim(ctx, p.VerificationID, p.FactorID, t0.Add(2*time.Second))
	if err != nil || got.Ticket != p.Ticket {
		t.Fatalf("B claims %+v, %v", got, err)
	}
	if _, err := a.Claim(ctx, p.VerificationID, p.FactorID, t0.Add(2*time.Second)); !errors.Is(err, push.ErrNotPending) {
		t.Fatalf("A claims it again: %v", err)
	}
	if list, _ := a.Waiting(ctx, p.FactorID, t0.Add(2*time.Second)); len(list) != 0 {
		t.Fatalf("a claimed push is still listed for the phone: %+v", list)
	}
	if n, _ := a.Count(ctx, t0.Add(2*time.Second)); n != 0 {
		t.Fatalf("a claimed push is still counted as pending: %d", n)
	}
	approved := push.Outcome{Result: api.VerifyResult{OK: true, UserID: p.UserID, FactorID: p.FactorID, Kind: "push"}, Outcome: "approved"}
	if err := b.Decide(ctx, p.VerificationID, p.FactorID, approved, t0.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	o, done, err := a.Result(ctx, p.VerificationID, p.FactorID)
	if err != nil || !done || !o.Result.OK || o.Outcome != "approved" {
		t.Fatalf("A reads %+v %v %v", o, done, err)
	}
	for _, n := range []*cluster.Pushes{a, b} {
		if _, _, err := n.Result(ctx, p.VerificationID, p.FactorID); !errors.Is(err, push.ErrNotPending) {
			t.Fatalf("the outcome taken a second time: %v", err)
		}
	}
	if _, got, err := b.Lookup(ctx, a.ID(p.VerificationID, p.FactorID)); err != nil || got == nil || got.Outcome != "approved" {
		t.Fatalf("B cannot say how the push ended (for its companions' streams): %+v %v", got, err)
	}
}

// TestTheSameAnswerToBothKeyfleetdAtOnceIsTakenOnce: a companion (or an
// attacker replaying its answer) sends it to both keyfleetd at once; one
// claim wins, every round.
func TestTheSameAnswerToBothKeyfleetdAtOnceIsTakenOnce(t *testing.T) {
	dsn, key := newDatabase(t)
	nodes := []*cluster.Pushes{open(t, dsn, key).pushes(), open(t, dsn, key).pushes()}
	ctx := context.Background()
	for round := range 20 {
		p := pending("ver_race_"+string(rune('a'+round)), "bob")
		if err := nodes[round%2].Put(ctx, p); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		won := 0
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := nodes[i%2].Claim(ctx, p.VerificationID, p.FactorID, t0.Add(time.Second))
				if err == nil {
					mu.Lock()
					won++
					mu.Unlock()
				} else if !errors.Is(err, push.ErrNotPending) {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if won != 1 {
			t.Fatalf("round %d: %d claims won", round, won)
		}
	}
}

// TestAnAnswerForAnotherFactorOrAfterTheDeadlineClaimsNothing: a device
// naming another's push under its own factor finds nothing; an answer at
// the deadline finds nothing; the sweep claims the push past its
// deadline once, whichever keyfleetd sweeps, and forgets it after its
// outcome's time.
func TestAnAnswerForAnotherFactorOrAfterTheDeadlineClaimsNothing(t *testing.T) {
	dsn, key := newDatabase(t)
	a, b := open(t, dsn, key).pushes(), open(t, dsn, key).pushes()
	ctx, p := context.Background(), pending("ver_late", "carol")
	a.Put(ctx, p)
	if _, err := b.Claim(ctx, p.VerificationID, "fac_mallory_phone", t0); !errors.Is(err, push.ErrNotPending) {
		t.Fatalf("mallory's device claimed carol's push: %v", err)
	}
	if _, err := b.Claim(ctx, p.VerificationID, p.FactorID, p.Deadline); !errors.Is(err, push.ErrNotPending) {
		t.Fatalf("an answer at the deadline claimed the push: %v", err)
	}
	if list, _ := b.Waiting(ctx, p.FactorID, p.Deadline); len(list) != 0 {
		t.Fatalf("a push past its deadline is listed for the phone: %+v", list)
	}
	if due, err := a.Due(ctx, p.Deadline.Add(-time.Second), t0.Add(-time.Hour), 10); err != nil || len(due) != 0 {
		t.Fatalf("due before its deadline: %+v %v", due, err)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	claimed := 0
	for _, n := range []*cluster.Pushes{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			due, err := n.Due(ctx, p.Deadline, t0.Add(-time.Hour), 10)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			claimed += len(due)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if claimed != 1 {
		t.Fatalf("the push past its deadline was claimed %d times", claimed)
	}
	expired := push.Outcome{Result: api.VerifyResult{UserID: p.UserID, FactorID: p.FactorID, Kind: "push"}, Outcome: "expired"}
	if err := b.Decide(ctx, p.VerificationID, p.FactorID, expired, p.Deadline.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Due(ctx, p.Deadline.Add(2*time.Minute), t0.Add(-time.Hour), 10); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Lookup(ctx, a.ID(p.VerificationID, p.FactorID)); !errors.Is(err, push.ErrNotPending) {
		t.Fatalf("the outcome is kept past its time: %v", err)
	}
}

// TestAClaimNeverDecidedIsClosedByTheSweep: a keyfleetd stopped between
// claiming a push and recording its outcome; once the claim is stale,
// another keyfleetd's sweep claims it to close it.
func TestAClaimNeverDecidedIsClosedByTheSweep(t *testing.T) {
	dsn, key := newDatabase(t)
	a, b := open(t, dsn, key).pushes(), open(t, dsn, key).pushes()
	ctx, p := context.Background(), pending("ver_stale", "dan")
	a.Put(ctx, p)
	if _, err := a.Claim(ctx, p.VerificationID, p.FactorID, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if due, _ := b.Due(ctx, t0.Add(2*time.Second), t0, 10); len(due) != 0 {
		t.Fatalf("a fresh claim was taken over: %+v", due)
	}
	if due, _ := b.Due(ctx, t0.Add(2*time.Minute), t0.Add(time.Minute), 10); len(due) != 1 || due[0].Ticket != p.Ticket {
		t.Fatalf("the stale claim was not taken over: %+v", due)
	}
}

// TestANoticeNamesThePushOnlyByItsID: B hears of a push A filed, and of
// its outcome, by the push's opaque id alone.
func TestANoticeNamesThePushOnlyByItsID(t *testing.T) {
	dsn, key := newDatabase(t)
	a, b := open(t, dsn, key).pushes(), open(t, dsn, key).pushes()
	ctx, cancel := context.WithCancel(context.Background())
	ready, got := make(chan struct{}, 1), make(chan push.BoardNotice, 4)
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.Listen(ctx, func() { ready <- struct{}{} }, func(n push.BoardNotice) { got <- n })
	}()
	t.Cleanup(func() { cancel(); <-done })
	<-ready
	p := pending("ver_notice", "erin")
	a.Put(ctx, p)
	id := a.ID(p.VerificationID, p.FactorID)
	if n := recv(t, got); n.ID != id || n.Decided || n.Tag != a.Tag(p.FactorID) || strings.Contains(n.Tag, "erin") {
		t.Fatalf("filed notice %+v, want %s", n, id)
	}
	a.Claim(ctx, p.VerificationID, p.FactorID, t0)
	a.Decide(ctx, p.VerificationID, p.FactorID, push.Outcome{Outcome: "refused"}, t0.Add(time.Minute))
	if n := recv(t, got); n.ID != id || !n.Decided {
		t.Fatalf("decided notice %+v, want %s", n, id)
	}
}

func recv(t *testing.T, c <-chan push.BoardNotice) push.BoardNotice {
	t.Helper()
	select {
	case n := <-c:
		return n
	case <-time.After(10 * time.Second):
		t.Fatal("no notice in 10s")
	}
	return push.BoardNotice{}
}

// TestADumpOfThePendingPushesHoldsNoNameNumberOrTicket: pg_dump shows
// neither the user, the numbers shown, the delivery, the ticket nor the
// ids; a sealed push copied under another push's id does not open there.
func TestADumpOfThePendingPushesHoldsNoNameNumberOrTicket(t *testing.T) {
	dsn, key := newDatabase(t)
	na := open(t, dsn, key)
	a := na.pushes()
	ctx := context.Background()
	gina, mal := pending("ver_gina", "gina.rossi"), pending("ver_mal", "mallory")
	a.Put(ctx, gina)
	a.Put(ctx, mal)
	a.Claim(ctx, gina.VerificationID, gina.FactorID, t0)
	a.Decide(ctx, gina.VerificationID, gina.FactorID, push.Outcome{Result: api.VerifyResult{OK: true, UserID: gina.UserID}, Outcome: "approved"}, t0.Add(time.Hour))
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	dump, err := cl.Dump(cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(dump, []byte("push_pending")) {
		t.Fatal("the dump has no push_pending table: the test looks in the wrong place")
	}
	for _, secret := range []string{"gina.rossi", gina.Ticket, "ver_gina", gina.FactorID, gina.UserID, "payroll-portal", "198.51.100.7", `"47"`, "choices", "approved"} {
		if bytes.Contains(dump, []byte(secret)) {
			t.Fatalf("the dump shows %q", secret)
		}
	}
	admin(t, dsn, "UPDATE push_pending SET rec = (SELECT rec FROM push_pending WHERE k = $1) WHERE k = $2",
		na.st.Index("push", gina.VerificationID, gina.FactorID), na.st.Index("push", mal.VerificationID, mal.FactorID))
	if got, err := a.Claim(ctx, mal.VerificationID, mal.FactorID, t0); err == nil {
		t.Fatalf("gina's push opened under mallory's: %+v", got)
	}
}

// TestACompanionsSignedRequestIsSeenOnceAcrossKeyfleetd: a request
// header captured on its way to A and sent to B within the clock skew is
// refused there; the sweep forgets it once its time is past.
func TestACompanionsSignedRequestIsSeenOnceAcrossKeyfleetd(t *testing.T) {
	dsn, key := newDatabase(t)
	a, b := open(t, dsn, key).pushes(), open(t, dsn, key).pushes()
	ctx, ms := context.Background(), t0.UnixMilli()
	if first, err := a.FirstSeen(ctx, "fac_ivy_phone", ms, t0.Add(2*time.Minute)); !first || err != nil {
		t.Fatalf("A, the first time: %v %v", first, err)
	}
	if first, err := b.FirstSeen(ctx, "fac_ivy_phone", ms, t0.Add(2*time.Minute)); first || err != nil {
		t.Fatalf("B took the captured request: %v %v", first, err)
	}
	if first, _ := b.FirstSeen(ctx, "fac_ivy_phone", ms+1, t0.Add(2*time.Minute)); !first {
		t.Fatal("a request signed a millisecond later was refused")
	}
	if first, _ := b.FirstSeen(ctx, "fac_mallory_phone", ms, t0.Add(2*time.Minute)); !first {
		t.Fatal("another device's request at the same time was refused")
	}
	a.Due(ctx, t0.Add(3*time.Minute), t0, 10)
	if first, _ := a.FirstSeen(ctx, "fac_ivy_phone", ms, t0.Add(2*time.Minute)); !first {
		t.Fatal("the sweep kept a request past its time")
	}
}

// lookups counts the pushes a keyfleetd looked up after a notice.
type lookups struct {
	*cluster.Pushes
	mu sync.Mutex
	n  int
}

func (l *lookups) Lookup(ctx context.Context, id string) (core.Pending, *push.Outcome, error) {
	l.mu.Lock()
	l.n++
	l.mu.Unlock()
	return l.Pushes.Lookup(ctx, id)
}

// TestAKeyfleetdLooksUpOnlyThePushesForItsOwnCompanions: B has erin's
// phone connected; pushes filed through A for other people's phones cost
// B no round trip to the database (the notice carries the factor's tag),
// and erin's still reaches her.
func TestAKeyfleetdLooksUpOnlyThePushesForItsOwnCompanions(t *testing.T) {
	dsn, key := newDatabase(t)
	a, b := open(t, dsn, key).pushes(), &lookups{Pushes: open(t, dsn, key).pushes()}
	hub, err := push.New(push.Config{}, push.Options{Board: b})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hub.Close)
	// A stream opened before B listens is ended (notices may have been
	// missed); the phone reconnects until it stays.
	var s *push.Stream
	for deadline := time.Now().Add(10 * time.Second); ; {
		st, _, done := hub.Subscribe("fac_erin_phone")
		t.Cleanup(done)
		select {
		case <-st.Ended():
		case <-time.After(200 * time.Millisecond):
			s = st
		}
		if s != nil || time.Now().After(deadline) {
			break
		}
	}
	if s == nil {
		t.Fatal("the stream kept ending")
	}
	ctx := context.Background()
	for _, user := range []string{"mallory", "trent", "erin"} {
		if err := a.Put(ctx, pending("ver_"+user, user)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case ev := <-s.Events():
		if ev.Type != push.EventPush || !bytes.Contains(ev.Data, []byte("ver_erin")) {
			t.Fatalf("erin's phone got %s %s", ev.Type, ev.Data)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("erin's push never reached her phone through B")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.n != 1 {
		t.Fatalf("B looked up %d pushes, want only erin's", b.n)
	}
}
