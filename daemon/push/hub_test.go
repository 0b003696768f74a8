package push

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/ratelimit"
	pushkind "github.com/keyfleet/keyfleet/plugins/push"
)

func other(right string, choices []string) string {
	return choices[slices.IndexFunc(choices, func(c string) bool { return c != right })]
}

func TestAnsweredPushesAreDecidedAndHandedToTheApplicationOnce(t *testing.T) {
	e := newEnv(t, Config{})
	tests := []struct {
		name   string
		answer func(c *companion, p push, d pushkind.Delivery) (core.OutOfBandOutcome, error)
		ok     bool
		audit  string
	}{
		{"the right number is verified", func(c *companion, p push, d pushkind.Delivery) (core.OutOfBandOutcome, error) {
			return c.answer(d, p.prompt.Number, pushkind.Approve)
		}, true, "factor.verify"},
		{"a wrong number is refused", func(c *companion, p push, d pushkind.Delivery) (core.OutOfBandOutcome, error) {
			return c.answer(d, other(p.prompt.Number, d.Choices), pushkind.Approve)
		}, false, "factor.verify_failed"},
		{"a deny is refused", func(c *companion, _ push, d pushkind.Delivery) (core.OutOfBandOutcome, error) {
			return c.answer(d, "", pushkind.Deny)
		}, false, "factor.verify_failed"},
		{"the right number after the deadline is refused", func(c *companion, p push, d pushkind.Delivery) (core.OutOfBandOutcome, error) {
			c.e.clock.Add(61 * time.Second) // the hub's timer has not fired yet: the kind sees the time
			return c.answer(d, p.prompt.Number, pushkind.Approve)
		}, false, "factor.verify_failed"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.enrol(e.user("user"+string(rune('a'+i))), nil)
			p := e.mustBegin(c.user)
			d := c.delivery(p)
			if d.User != c.user.Username || d.Application != "VPN" || d.Address != "203.0.113.7" || len(d.Choices) != 3 {
				t.Fatalf("the companion got %+v", d)
			}
			before := len(e.audited(tt.audit))
			out, err := tt.answer(c, p, d)
			if err != nil || out.Result.OK != tt.ok {
				t.Fatalf("answer: %+v, %v", out, err)
			}
			res, err := e.finish(p, "0s")
			if err != nil || res.OK != tt.ok || res.Pending {
				t.Fatalf("finish: %+v, %v", res, err)
			}
			if _, err := e.finish(p, "0s"); !errors.Is(err, core.ErrVerificationClosed) {
				t.Fatalf("a second finish: %v, want closed", err)
			}
			if _, err := c.answer(d, p.prompt.Number, pushkind.Approve); !errors.Is(err, core.ErrVerificationClosed) {
				t.Fatalf("the answer sent again: %v, want closed", err)
			}
			evs := e.audited(tt.audit)
			if len(evs) != before+1 || evs[len(evs)-1].Extra["application"] != "VPN" || evs[len(evs)-1].Actor.ID != c.user.ID {
				t.Fatalf("audit %s: %d events, last %+v", tt.audit, len(evs), evs[len(evs)-1])
			}
			if len(c.received()) != 0 {
				t.Fatal("the decided push is still pending on the companion")
			}
		})
	}
}

func TestFinishWaitsForTheAnswerOrSaysPending(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.enrol(e.user("wendy"), nil)
	p := e.mustBegin(c.user)
	if res, err := e.finish(p, "0s"); err != nil || !res.Pending || res.OK {
		t.Fatalf("before the answer: %+v %v", res, err)
	}
	got := make(chan api.VerifyResult, 1)
	go func() {
		res, err := e.finish(p, "")
		if err != nil {
			t.Error(err)
		}
		got <- res
	}()
	time.Sleep(20 * time.Millisecond) // let the finish start waiting; the answer would be taken either way
	if _, err := c.answer(c.delivery(p), p.prompt.Number, pushkind.Approve); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-got:
		if !res.OK || res.Pending {
			t.Fatalf("the waiting finish got %+v", res)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting finish never returned")
	}
	if _, err := e.finish(p, "bad"); err == nil {
		t.Fatal("a malformed wait was accepted")
	}
}

func TestAnUnansweredPushRunsOutIsCountedAndReported(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.enrol(e.user("ivan"), nil)
	for i := 1; i <= api.IgnoredPushesThreshold; i++ {
		p := e.mustBegin(c.user)
		d := c.delivery(p)
		e.hub.mu.Lock()
		ent := e.hub.pending[key(d.VerificationID, d.FactorID)]
		e.hub.mu.Unlock()
		e.hub.expire(key(d.VerificationID, d.FactorID), ent) // the deadline's timer
		if res, err := e.finish(p, "0s"); err != nil || res.OK || res.Pending {
			t.Fatalf("finish after the deadline: %+v %v", res, err)
		}
		if _, err := c.answer(d, p.prompt.Number, pushkind.Approve); !errors.Is(err, core.ErrVerificationClosed) {
			t.Fatalf("a late answer: %v, want closed", err)
		}
		if f := c.factor(); f.Unanswered != i || f.LastUnansweredAt == nil {
			t.Fatalf("after %d unanswered pushes the factor says %d", i, f.Unanswered)
		}
	}
	if n := len(e.audited(core.ActionPushUnanswered)); n != api.IgnoredPushesThreshold {
		t.Fatalf("%d push.unanswered events", n)
	}
	r, err := e.svc.ComplianceReport(context.Background(), core.System, "", 14*24*time.Hour)
	if err != nil || len(r.IgnoredPushes) != 1 || r.IgnoredPushes[0].FactorID != c.dev.FactorID || r.IgnoredPushes[0].Unanswered != 3 {
		t.Fatalf("compliance report: %+v %v", r.IgnoredPushes, err)
	}
	p := e.mustBegin(c.user)
	if _, err := c.answer(c.delivery(p), p.prompt.Number, pushkind.Approve); err != nil {
		t.Fatal(err)
	}
	if f := c.factor(); f.Unanswered != 0 {
		t.Fatalf("an answered push left the count at %d", f.Unanswered)
	}
}

// TestThisWasntMeLocksPushesAndRaisesTheAlarm: someone with alice's
// password starts a sign-in; alice's phone buzzes and she says it was not
// her. The attacker tries again at once.
func TestThisWasntMeLocksPushesAndRaisesTheAlarm(t *testing.T) {
	e := newEnv(t, Config{})
	alice := e.enrol(e.user("alice"), nil)
	p := e.mustBegin(alice.user)
	out, err := alice.answer(alice.delivery(p), "", pushkind.Report)
	if err != nil || out.Result.OK || !out.Reported || !out.Suspicious {
		t.Fatalf("the report: %+v %v", out, err)
	}
	if res, _ := e.finish(p, "0s"); res.OK {
		t.Fatal("the reported sign-in was verified")
	}
	evs := e.audited(core.ActionPushReported)
	if len(evs) != 1 || evs[0].Target.ID != alice.user.ID || evs[0].Extra["application"] != "VPN" || evs[0].Extra["address"] != "203.0.113.7" {
		t.Fatalf("push.reported: %+v", evs)
	}
	if failed := e.audited("factor.verify_failed"); len(failed) != 1 || failed[0].Extra["suspicious"] != "true" {
		t.Fatalf("factor.verify_failed: %+v", failed)
	}
	// The attacker asks for another push: none goes.
	if _, err := e.begin(alice.user); !errors.Is(err, core.ErrLocked) {
		t.Fatalf("a push after the report: %v, want locked", err)
	}
	if len(alice.received()) != 0 {
		t.Fatal("a push reached the phone after the report")
	}
	u, _ := e.svc.GetUser(context.Background(), core.System, alice.user.ID)
	if u.PushesLockedAt == nil {
		t.Fatal("the user record does not say pushes are locked")
	}
	// An administrator who has spoken to alice unlocks her.
	if _, err := e.svc.UnlockUser(context.Background(), core.System, "alice", "spoke to alice; password changed"); err != nil {
		t.Fatal(err)
	}
	p = e.mustBegin(alice.user)
	if out, err := alice.answer(alice.delivery(p), p.prompt.Number, pushkind.Approve); err != nil || !out.Result.OK {
		t.Fatalf("after unlocking: %+v %v", out, err)
	}
}

// TestPushFatigueIsCapped: an attacker with the password asks for push
// after push, hoping the user taps approve to make it stop.
func TestPushFatigueIsCapped(t *testing.T) {
	e := newEnv(t, Config{MaxPerUser: 3, Period: Duration{time.Minute}})
	bob := e.enrol(e.user("bob"), nil)
	for range 3 {
		e.mustBegin(bob.user)
	}
	_, err := e.begin(bob.user)
	var le *LimitError
	if !errors.Is(err, core.ErrTooMany) || !errors.As(err, &le) || le.RetryAfter() <= 0 || le.RetryAfter() > time.Minute {
		t.Fatalf("the fourth push in a minute: %v", err)
	}
	if n := len(bob.received()); n != 3 {
		t.Fatalf("the phone got %d pushes, want 3", n)
	}
	e.clock.Add(61 * time.Second)
	if _, err := e.begin(bob.user); err != nil {
		t.Fatalf("a push a minute later: %v", err)
	}
}

// TestAnotherDeviceCannotAnswer: mallory enrolled a companion of her own
// and sees (through a relay) the ids of alice's push.
func TestAnotherDeviceCannotAnswer(t *testing.T) {
	e := newEnv(t, Config{})
	alice, mallory := e.enrol(e.user("alice"), nil), e.enrol(e.user("mallory"), nil)
	p := e.mustBegin(alice.user)
	d := alice.delivery(p)
	if _, err := mallory.answer(d, p.prompt.Number, pushkind.Approve); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("mallory's device answering for alice's: %v, want forbidden", err)
	}
	// Her own device's header, with alice's factor named in the answer's
	// signed content, signed by mallory's key: refused by the kind.
	a, _ := mallory.dev.Answer(d, p.prompt.Number, pushkind.Approve, e.clock.Now())
	a.FactorID = alice.dev.FactorID
	forged := alice.factor()
	out, err := e.hub.Answer(context.Background(), forged, d.VerificationID, d.FactorID, mustJSON(a))
	if err != nil || out.Result.OK || !out.Suspicious {
		t.Fatalf("an answer signed by another key: %+v %v", out, err)
	}
}

func TestPushesAreOfferedOnlyWhenAsked(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.enrol(e.user("olga"), nil)
	key := coreKey(t, e, c.user)
	v, err := e.svc.BeginVerify(context.Background(), e.app, api.BeginVerify{User: "olga"})
	if err != nil || len(v.Factors) != 1 || v.Factors[0].FactorID != key.ID || len(c.received()) != 0 {
		t.Fatalf("a verification without kinds offered %+v (%v) and pushed %d", v.Factors, err, len(c.received()))
	}
	v, err = e.svc.BeginVerify(context.Background(), e.app, api.BeginVerify{User: "olga", FactorID: c.dev.FactorID})
	if err != nil || len(v.Factors) != 1 || !v.Factors[0].OutOfBand || v.Factors[0].Deadline == nil || len(c.received()) != 1 {
		t.Fatalf("naming the push factor: %+v %v", v.Factors, err)
	}
	if _, err := e.svc.BeginVerify(context.Background(), e.app, api.BeginVerify{User: "olga", Kinds: []string{"push"}, Address: "not an address"}); !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("a bad address: %v", err)
	}
	// The application tries to answer the push itself.
	_, err = e.svc.FinishVerify(context.Background(), e.app, api.FinishVerify{ID: v.ID, FactorID: c.dev.FactorID, Response: []byte(`{"decision":"approve"}`)})
	if !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("an application answering a push: %v", err)
	}
}

// TestARestartLosesPendingPushesCleanly: keyfleetd restarts while a push
// waits. The application's finish fails as closed, the companion's late
// answer is refused, and nothing about the push was written.
func TestARestartLosesPendingPushesCleanly(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.enrol(e.user("rita"), nil)
	p := e.mustBegin(c.user)
	d := c.delivery(p)
	waiting := make(chan error, 1)
	go func() { _, err := e.finish(p, ""); waiting <- err }()
	time.Sleep(20 * time.Millisecond)
	head := e.st.AuditHead().Seq
	e.restart()
	if err := <-waiting; !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("the finish waiting across the restart: %v, want unavailable", err)
	}
	if _, err := e.finish(p, "0s"); !errors.Is(err, core.ErrVerificationClosed) {
		t.Fatalf("finish after the restart: %v, want closed", err)
	}
	if len(c.received()) != 0 {
		t.Fatal("the new hub has the old push")
	}
	if _, err := c.answer(d, p.prompt.Number, pushkind.Approve); !errors.Is(err, core.ErrVerificationClosed) {
		t.Fatalf("the answer after the restart: %v, want closed", err)
	}
	if e.st.AuditHead().Seq != head {
		t.Fatalf("the lost push left %d audit events", e.st.AuditHead().Seq-head)
	}
}

func TestClosingTheHubRefusesNewPushes(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.enrol(e.user("carl"), nil)
	e.hub.Close()
	if _, err := e.begin(c.user); !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("a push after close: %v", err)
	}
}

// TestThePolicyDecidesWhoMayUsePushAndHow: staff must match numbers, and
// contractors may not sign in with push at all.
func TestThePolicyDecidesWhoMayUsePushAndHow(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	sam, _, _ := e.svc.CreateUser(ctx, core.System, api.CreateUser{Username: "sam", Groups: []string{"staff"}})
	cora, _, _ := e.svc.CreateUser(ctx, core.System, api.CreateUser{Username: "cora", Groups: []string{"contractors"}})
	bare := e.enrol(sam, map[string]string{"number_matching": "false"}) // before the policy
	e.enrol(cora, nil)
	doc := `version: 1
rules:
  - name: staff
    match: {groups: [staff]}
    require: {push: {number_matching: true}}
  - name: contractors
    match: {groups: [contractors]}
    require: {verification_kinds: [totp]}
`
	if _, err := e.svc.ApplyPolicy(ctx, core.System, api.PolicyDocument{Document: doc, Comment: "push rules"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.begin(sam); !errors.Is(err, core.ErrPolicyViolation) {
		t.Fatalf("a push without number matching under a rule that requires it: %v", err)
	}
	if len(bare.received()) != 0 {
		t.Fatal("the push went out anyway")
	}
	if _, err := e.begin(cora); !errors.Is(err, core.ErrPolicyViolation) {
		t.Fatalf("a contractor's push: %v", err)
	}
	if _, _, err := e.svc.CreateEnrolment(ctx, core.System, api.CreateEnrolment{User: sam.ID, Kind: "push", Options: map[string]string{"number_matching": "false"}}); !errors.Is(err, core.ErrPolicyViolation) {
		t.Fatalf("enrolling a push without number matching for staff: %v", err)
	}
	matching := e.enrol(sam, nil) // the policy's options: number matching
	p, err := e.svc.BeginVerify(ctx, e.app, api.BeginVerify{User: "sam", FactorID: matching.dev.FactorID})
	if err != nil || len(p.Factors) != 1 {
		t.Fatalf("a push with number matching: %+v %v", p, err)
	}
}

// buckets is a shared count of pushes that admits the first max and
// then refuses, or fails when down (the database does not answer).
type buckets struct {
	max  int
	down bool
	got  []ratelimit.Bucket
}

func (b *buckets) Take(_ context.Context, _ time.Time, bs []ratelimit.Bucket) (int, time.Duration, error) {
	if b.down {
		return 0, 0, fmt.Errorf("%w: PostgreSQL does not answer", core.ErrUnavailable)
	}
	b.got = append(b.got, bs...)
	if len(b.got) > b.max {
		return 0, 42 * time.Second, nil
	}
	return -1, 0, nil
}

// TestWithASharedCountThePushCapIsTheDatabasesAndFailsClosed: with
// several keyfleetd on one database the hub asks the shared buckets
// (one per user: max_per_user pushes, one more every period) instead of
// its memory; a refusal is the same 429 with the wait the buckets give,
// and a count that cannot be made sends nothing.
func TestWithASharedCountThePushCapIsTheDatabasesAndFailsClosed(t *testing.T) {
	e := newEnv(t, Config{MaxPerUser: 2, Period: Duration{10 * time.Minute}})
	b := &buckets{max: 2}
	e.shared = b
	e.restart()
	bob := e.enrol(e.user("bob"), nil)
	for range 2 {
		e.mustBegin(bob.user)
	}
	_, err := e.begin(bob.user)
	var le *LimitError
	if !errors.Is(err, core.ErrTooMany) || !errors.As(err, &le) || le.RetryAfter() != 42*time.Second {
		t.Fatalf("the push the shared count refused: %v", err)
	}
	if want := (ratelimit.Bucket{Key: "push\x00" + bob.user.ID, Burst: 2, Every: 10 * time.Minute}); b.got[0] != want {
		t.Fatalf("the hub asked for %+v, want %+v", b.got[0], want)
	}
	b.down = true
	if _, err := e.begin(bob.user); !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("a push that could not be counted: %v, want unavailable", err)
	}
	if n := len(bob.received()); n != 2 {
		t.Fatalf("the phone got %d pushes, want the 2 the count admitted", n)
	}
}
