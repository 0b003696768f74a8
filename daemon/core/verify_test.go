package core_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/core/coretest"
	"github.com/keyfleet/keyfleet/daemon/seal"
	"github.com/keyfleet/keyfleet/daemon/store"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

func answer(secret string) json.RawMessage {
	b, _ := json.Marshal(map[string]string{"secret": secret})
	return b
}

func TestVerificationSucceedsOnceAndRecordsUse(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	app := e.principal(e.admin, "app", api.RoleAdmin)
	e.principal(e.admin, "gina")
	f := e.enrol("gina", "")
	v, err := e.svc.BeginVerify(ctx, app, api.BeginVerify{User: "gina"})
	if err != nil || len(v.Factors) != 1 || v.Factors[0].FactorID != f.ID {
		t.Fatalf("begin = %+v, %v", v, err)
	}
	res, err := e.svc.FinishVerify(ctx, app, api.FinishVerify{ID: v.ID, FactorID: f.ID, Response: answer("SEED-gina")})
	if err != nil || !res.OK {
		t.Fatalf("finish = %+v, %v", res, err)
	}
	if got, _ := e.svc.GetFactor(ctx, e.admin, f.ID); got.LastUsedAt == nil {
		t.Fatal("a successful verification did not record last use")
	}
	if _, err := e.svc.FinishVerify(ctx, app, api.FinishVerify{ID: v.ID, FactorID: f.ID, Response: answer("SEED-gina")}); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("finishing a verification twice gave %v", err)
	}
	other := e.principal(e.admin, "other-app", api.RoleAdmin)
	v2, _ := e.svc.BeginVerify(ctx, app, api.BeginVerify{User: "gina"})
	if _, err := e.svc.FinishVerify(ctx, other, api.FinishVerify{ID: v2.ID, FactorID: f.ID, Response: answer("SEED-gina")}); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("another application finishing a verification gave %v", err)
	}
	if _, err := e.svc.BeginVerify(ctx, app, api.BeginVerify{User: "gina", Kinds: []string{"totp"}}); !errors.Is(err, core.ErrNoUsableFactor) {
		t.Fatalf("asking for a kind the user lacks gave %v", err)
	}
	e.verifyChain()
}

func TestWrongAnswersLockTheFactorAndUserUntilUnlocked(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	app := e.principal(e.admin, "app", api.RoleAdmin)
	e.principal(e.admin, "hank")
	f := e.enrol("hank", "")
	for i := range 5 {
		v, err := e.svc.BeginVerify(ctx, app, api.BeginVerify{User: "hank"})
		if err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
		res, err := e.svc.FinishVerify(ctx, app, api.FinishVerify{ID: v.ID, FactorID: f.ID, Response: answer("guess")})
		if err != nil || res.OK {
			t.Fatalf("wrong answer %d gave %+v, %v", i, res, err)
		}
	}
	if _, err := e.svc.BeginVerify(ctx, app, api.BeginVerify{User: "hank"}); !errors.Is(err, core.ErrLocked) {
		t.Fatalf("after 5 failures begin gave %v, want ErrLocked", err)
	}
	recs, _ := e.svc.ListAudit(ctx, e.admin, core.AuditFilter{Action: "user.lockout"}, 10)
	if len(recs) != 1 {
		t.Fatalf("%d user.lockout events, want 1", len(recs))
	}
	if _, err := e.svc.UnlockUser(ctx, e.help, "hank", "called the helpdesk"); err != nil {
		t.Fatal(err)
	}
	v, _ := e.svc.BeginVerify(ctx, app, api.BeginVerify{User: "hank"})
	if res, err := e.svc.FinishVerify(ctx, app, api.FinishVerify{ID: v.ID, FactorID: f.ID, Response: answer("SEED-hank")}); err != nil || !res.OK {
		t.Fatalf("after unlock the right answer gave %+v, %v", res, err)
	}
	e.verifyChain()
}

func TestLockoutsExpireByTime(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	app := e.principal(e.admin, "app", api.RoleAdmin)
	e.principal(e.admin, "ivy")
	f := e.enrol("ivy", "")
	for range 5 {
		v, _ := e.svc.BeginVerify(ctx, app, api.BeginVerify{User: "ivy"})
		e.svc.FinishVerify(ctx, app, api.FinishVerify{ID: v.ID, FactorID: f.ID, Response: json.RawMessage(`"not even an object"`)})
	}
	if _, err := e.svc.BeginVerify(ctx, app, api.BeginVerify{User: "ivy"}); !errors.Is(err, core.ErrLocked) {
		t.Fatalf("malformed answers did not count as failures: %v", err)
	}
	e.clock.Add(16 * time.Minute)
	if _, err := e.svc.BeginVerify(ctx, app, api.BeginVerify{User: "ivy"}); err != nil {
		t.Fatalf("after the lockout window begin gave %v", err)
	}
}

func TestRacingAnswersToOneVerificationSucceedAtMostOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	app := e.principal(e.admin, "app", api.RoleAdmin)
	e.principal(e.admin, "jo")
	f := e.enrol("jo", "")
	v, _ := e.svc.BeginVerify(ctx, app, api.BeginVerify{User: "jo"})
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := e.svc.FinishVerify(ctx, app, api.FinishVerify{ID: v.ID, FactorID: f.ID, Response: answer("SEED-jo")})
			if err == nil && res.OK {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok != 1 {
		t.Fatalf("%d racing answers succeeded, want exactly 1", ok)
	}
}

func TestMFAStatusSaysWhoMustEnrol(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.principal(e.admin, "kim")
	e.applyPolicy(e.admin, minimalPolicy)
	st, err := e.svc.MFAStatus(ctx, e.help, "kim")
	if err != nil || !st.MustEnrol || len(st.ActiveFactors) != 0 {
		t.Fatalf("before enrolment: %+v %v", st, err)
	}
	e.enrol("kim", "")
	if st, _ = e.svc.MFAStatus(ctx, e.help, "kim"); st.MustEnrol || len(st.ActiveFactors) != 1 {
		t.Fatalf("after enrolment: %+v", st)
	}
}

func TestBeginningWithANamedFactorOffersOnlyThatUsersActiveFactor(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	app := e.principal(e.admin, "app", api.RoleAdmin)
	e.principal(e.admin, "hana")
	e.principal(e.admin, "ivan")
	mine, theirs := e.enrol("hana", ""), e.enrol("ivan", "")
	v, err := e.svc.BeginVerify(ctx, app, api.BeginVerify{User: "hana", FactorID: mine.ID})
	if err != nil || len(v.Factors) != 1 || v.Factors[0].FactorID != mine.ID {
		t.Fatalf("begin with hana's factor = %+v, %v", v, err)
	}
	for name, in := range map[string]api.BeginVerify{
		"another user's factor":           {User: "hana", FactorID: theirs.ID},
		"an unknown factor":               {User: "hana", FactorID: "fac_unknown"},
		"a factor of a kind not accepted": {User: "hana", FactorID: mine.ID, Kinds: []string{"totp"}},
	} {
		if _, err := e.svc.BeginVerify(ctx, app, in); !errors.Is(err, core.ErrNoUsableFactor) {
			t.Errorf("%s: err = %v, want ErrNoUsableFactor", name, err)
		}
	}
	if _, err := e.svc.SuspendFactor(ctx, e.admin, mine.ID, "lost on a train"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.BeginVerify(ctx, app, api.BeginVerify{User: "hana", FactorID: mine.ID}); !errors.Is(err, core.ErrNoUsableFactor) {
		t.Errorf("a suspended factor: err = %v, want ErrNoUsableFactor", err)
	}
}

func TestAVerificationOffersOneChallengeForAllTheUsersFactors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	app := e.principal(e.admin, "app", api.RoleAdmin)
	e.principal(e.admin, "jun")
	e.enrol("jun", "")
	e.enrol("jun", "")
	v, err := e.svc.BeginVerify(ctx, app, api.BeginVerify{User: "jun"})
	if err != nil || len(v.Factors) != 2 {
		t.Fatalf("begin = %+v, %v", v, err)
	}
	if string(v.Factors[0].Prompt) != string(v.Factors[1].Prompt) || len(v.Factors[0].Prompt) < 40 {
		t.Fatalf("the factors got different challenges: %s and %s", v.Factors[0].Prompt, v.Factors[1].Prompt)
	}
	v2, _ := e.svc.BeginVerify(ctx, app, api.BeginVerify{User: "jun"})
	if string(v2.Factors[0].Prompt) == string(v.Factors[0].Prompt) {
		t.Fatal("two verifications got the same challenge")
	}
	// Answering with one factor finishes it for both.
	if res, err := e.svc.FinishVerify(ctx, app, api.FinishVerify{ID: v.ID, FactorID: v.Factors[0].FactorID, Response: answer("SEED-jun")}); err != nil || !res.OK {
		t.Fatalf("finish = %+v, %v", res, err)
	}
	if _, err := e.svc.FinishVerify(ctx, app, api.FinishVerify{ID: v.ID, FactorID: v.Factors[1].FactorID, Response: answer("SEED-jun")}); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("finishing with the other factor after: %v, want ErrNotFound", err)
	}
}

// challengeKind answers a challenge: it keeps a session between begin and
// finish, so it cannot be checked in one call.
type challengeKind struct{ coretest.Kind }

func (challengeKind) Describe(context.Context) (sdk.Info, error) {
	return sdk.Info{Kind: "chal", DisplayName: "Challenge test factor"}, nil
}

func (challengeKind) BeginVerify(_ context.Context, req sdk.BeginVerifyRequest) (sdk.BeginVerifyResponse, error) {
	return sdk.BeginVerifyResponse{Session: req.Challenge}, nil
}

func TestACodeIsCheckedInOneCall(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	app := e.principal(e.admin, "app", api.RoleAdmin)
	e.principal(e.admin, "lee")
	f := e.enrol("lee", "")
	check := func(in api.CheckVerify) (api.VerifyResult, error) { return e.svc.CheckVerify(ctx, app, in) }
	if res, err := check(api.CheckVerify{User: "lee", Response: answer("SEED-lee")}); err != nil || !res.OK || res.FactorID != f.ID {
		t.Fatalf("the right code: %+v, %v", res, err)
	}
	if got, _ := e.svc.GetFactor(ctx, e.admin, f.ID); got.LastUsedAt == nil {
		t.Fatal("a one-call check did not record last use")
	}
	for i := range 5 {
		res, err := check(api.CheckVerify{User: "lee", Response: answer("wrong")})
		if err != nil || res.OK {
			t.Fatalf("wrong code %d: %+v, %v", i, res, err)
		}
	}
	if _, err := check(api.CheckVerify{User: "lee", Response: answer("SEED-lee")}); !errors.Is(err, core.ErrLocked) && !errors.Is(err, core.ErrNoUsableFactor) {
		t.Fatalf("after five wrong codes: %v, want a lockout", err)
	}
	if _, err := e.svc.UnlockUser(ctx, e.admin, "lee", "called the helpdesk"); err != nil {
		t.Fatal(err)
	}
	second := e.enrol("lee", "")
	if _, err := check(api.CheckVerify{User: "lee", Response: answer("SEED-lee")}); !errors.Is(err, core.ErrInvalid) || !strings.Contains(err.Error(), "factor_id") {
		t.Fatalf("two factors and no factor_id: %v, want ErrInvalid naming factor_id", err)
	}
	if res, err := check(api.CheckVerify{User: "lee", FactorID: second.ID, Response: answer("SEED-lee")}); err != nil || !res.OK {
		t.Fatalf("naming the factor: %+v, %v", res, err)
	}
	if _, err := e.svc.CheckVerify(ctx, e.principal(e.admin, "nobody"), api.CheckVerify{User: "lee", Response: answer("SEED-lee")}); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("a user without the service role: %v", err)
	}
	e.verifyChain()
}

func TestAKindThatAnswersAChallengeIsNotCheckedInOneCall(t *testing.T) {
	st, err := store.Open(store.Options{InMemory: true, EncryptionKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sl, _ := seal.New(make([]byte, 32))
	svc, err := core.New(core.Config{Store: st, Sealer: sl, Kinds: []sdk.Factor{challengeKind{}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, _, err := svc.CreateUser(ctx, core.System, api.CreateUser{Username: "mo"}); err != nil {
		t.Fatal(err)
	}
	en, _, err := svc.CreateEnrolment(ctx, core.System, api.CreateEnrolment{User: "mo", Kind: "chal"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CompleteEnrolment(ctx, core.System, en.ID, api.CompleteEnrolment{Payload: coretest.EnrolPayload(en.Challenge, "SEED-mo", "")}); err != nil {
		t.Fatal(err)
	}
	head := st.AuditHead()
	_, err = svc.CheckVerify(ctx, core.System, api.CheckVerify{User: "mo", Response: answer("SEED-mo")})
	if !errors.Is(err, core.ErrInvalid) || !strings.Contains(err.Error(), "/v1/verify/begin") {
		t.Fatalf("a challenge kind in one call: %v, want ErrInvalid pointing at begin and finish", err)
	}
	if st.AuditHead() != head {
		t.Error("a refused one-call check wrote an audit event")
	}
}

// freeKind declares itself challenge-free and counts the verifications
// begun with it.
type freeKind struct {
	coretest.Kind
	begun *atomic.Int64
}

func (freeKind) Describe(context.Context) (sdk.Info, error) {
	return sdk.Info{Kind: "free", DisplayName: "Challenge-free test factor", ChallengeFree: true}, nil
}

func (k freeKind) BeginVerify(ctx context.Context, req sdk.BeginVerifyRequest) (sdk.BeginVerifyResponse, error) {
	k.begun.Add(1)
	return k.Kind.BeginVerify(ctx, req)
}

// A kind that says its verifications need no challenge (TOTP) is checked
// in one call with one call to the kind: for a plugin, one round trip to
// its process instead of two.
func TestAChallengeFreeKindIsCheckedInOneCallWithoutBeginning(t *testing.T) {
	st, err := store.Open(store.Options{InMemory: true, EncryptionKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sl, _ := seal.New(make([]byte, 32))
	k := freeKind{begun: &atomic.Int64{}}
	svc, err := core.New(core.Config{Store: st, Sealer: sl, Kinds: []sdk.Factor{k}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, _, err := svc.CreateUser(ctx, core.System, api.CreateUser{Username: "kit"}); err != nil {
		t.Fatal(err)
	}
	en, _, err := svc.CreateEnrolment(ctx, core.System, api.CreateEnrolment{User: "kit", Kind: "free"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CompleteEnrolment(ctx, core.System, en.ID, api.CompleteEnrolment{Payload: coretest.EnrolPayload(en.Challenge, "SEED-kit", "")}); err != nil {
		t.Fatal(err)
	}
	res, err := svc.CheckVerify(ctx, core.System, api.CheckVerify{User: "kit", Response: answer("SEED-kit")})
	if err != nil || !res.OK {
		t.Fatalf("the right code: %+v, %v", res, err)
	}
	if n := k.begun.Load(); n != 0 {
		t.Errorf("the kind was asked to begin %d times for a one-call check", n)
	}
	if res, _ := svc.CheckVerify(ctx, core.System, api.CheckVerify{User: "kit", Response: answer("wrong")}); res.OK {
		t.Error("a wrong code passed")
	}
}
