package core_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// radiusCtx is a request as the RADIUS listener describes it.
func radiusCtx() context.Context {
	return core.WithRequest(context.Background(), core.RequestInfo{ID: "rad-1", Source: "192.0.2.7:40000",
		Extra: map[string]string{"nas_identifier": "vpn-gw1", "calling_station_id": "203.0.113.9"}})
}

func lastEvent(t *testing.T, e *env, action string) audit.Event {
	t.Helper()
	recs, err := e.svc.ListAudit(context.Background(), e.admin, core.AuditFilter{Action: action}, 500)
	if err != nil || len(recs) == 0 {
		t.Fatalf("no %s event (%v)", action, err)
	}
	ev, err := recs[len(recs)-1].Event()
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestFirstLoginPassGoesOnlyToAPersonWhoMustEnrolAndHasNoFactor(t *testing.T) {
	e := newPolicyEnv(t)
	e.applyPolicy(e.admin, minimalPolicy) // every person needs a factor, at once
	radius := core.LoginPrincipal("radius")
	ctx := radiusCtx()
	e.person("newbie")
	e.person("enrolled")
	e.enrol("enrolled", "")
	e.principal(e.admin, "deskworker", api.RoleHelpdesk)
	if _, _, err := e.svc.CreateUser(ctx, e.admin, api.CreateUser{Username: "robot", Kind: api.KindService}); err != nil {
		t.Fatal(err)
	}
	first, err := e.svc.IssueFirstLoginPass(ctx, radius, "newbie", time.Hour)
	if err != nil || first.Code == "" || first.Uses != 1 {
		t.Fatalf("first-login pass for newbie = %+v, %v", first, err)
	}
	ev := lastEvent(t, e, "pass.issue")
	if ev.Actor.Auth != "radius" || ev.Extra["purpose"] != "first_login" || ev.Extra["nas_identifier"] != "vpn-gw1" ||
		ev.Extra["calling_station_id"] != "203.0.113.9" || ev.Source != "192.0.2.7:40000" {
		t.Fatalf("pass.issue event = %+v", ev)
	}
	second, err := e.svc.IssueFirstLoginPass(ctx, radius, "newbie", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RedeemPass(ctx, core.Principal{}, first.Code); !errors.Is(err, core.ErrUnauthenticated) {
		t.Fatalf("the replaced first-login pass still redeems: %v", err)
	}
	if _, err := e.svc.RedeemPass(ctx, core.Principal{}, second.Code); err != nil {
		t.Fatalf("the latest first-login pass does not redeem: %v", err)
	}
	for _, tc := range []struct {
		name, user string
		ttl        time.Duration
		want       error
	}{
		{"a user with a factor goes to recovery instead", "enrolled", time.Hour, core.ErrIllegalTransition},
		{"staff get their first pass from an administrator", "deskworker", time.Hour, core.ErrIllegalTransition},
		{"a service account enrols nothing", "robot", time.Hour, core.ErrIllegalTransition},
		{"nobody is nobody", "ghost", time.Hour, core.ErrNotFound},
		{"a pass lives at least ten minutes", "newbie", time.Minute, core.ErrInvalid},
		{"a pass lives at most eight hours", "newbie", 9 * time.Hour, core.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.svc.IssueFirstLoginPass(ctx, radius, tc.user, tc.ttl); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestFirstLoginPassNeedsThePolicyToAskForEnrolment(t *testing.T) {
	e := newPolicyEnv(t) // no policy: a person without a role need not enrol
	e.person("casual")
	if _, err := e.svc.IssueFirstLoginPass(context.Background(), core.LoginPrincipal("radius"), "casual", time.Hour); !errors.Is(err, core.ErrIllegalTransition) {
		t.Fatalf("a pass for a user the policy does not ask to enrol: %v", err)
	}
}

func TestAUserTokenCannotMintFirstLoginPassesOrLoginRecords(t *testing.T) {
	e := newPolicyEnv(t)
	e.applyPolicy(e.admin, minimalPolicy)
	e.person("victim")
	mallory := e.principal(e.admin, "mallory")
	if _, err := e.svc.IssueFirstLoginPass(context.Background(), mallory, "victim", time.Hour); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("a plain user issued a first-login pass for someone else: %v", err)
	}
	if err := e.svc.RecordLogin(context.Background(), mallory, core.LoginEvent{User: "victim", Outcome: core.LoginAllowed, Reason: "x"}); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("a plain user wrote a login record: %v", err)
	}
}

func TestRecordLoginAuditsTheDecisionWithWhereItCameFrom(t *testing.T) {
	e := newPolicyEnv(t)
	e.person("alice")
	radius := core.LoginPrincipal("radius")
	ctx := radiusCtx()
	if err := e.svc.RecordLogin(ctx, radius, core.LoginEvent{User: "alice", Outcome: core.LoginRefused, Reason: "rate_limited", Count: 12}); err != nil {
		t.Fatal(err)
	}
	ev := lastEvent(t, e, core.LoginRefused)
	if ev.Target.ID == "" || ev.Target.Name != "alice" || ev.Extra["reason"] != "rate_limited" || ev.Extra["count"] != "12" || ev.Extra["nas_identifier"] != "vpn-gw1" {
		t.Fatalf("login.refused = %+v", ev)
	}
	typed := "ghost\x1b[31m\nroot" + string(make([]rune, 80))
	if err := e.svc.RecordLogin(ctx, radius, core.LoginEvent{User: typed, Outcome: core.LoginRefused, Reason: "unknown_user"}); err != nil {
		t.Fatal(err)
	}
	ev = lastEvent(t, e, core.LoginRefused)
	if ev.Target.ID != "" || ev.Target.Name != "ghost[31mroot" {
		t.Fatalf("an unknown, hostile name is kept as %q (id %q)", ev.Target.Name, ev.Target.ID)
	}
	for _, bad := range []core.LoginEvent{
		{User: "alice", Outcome: "login.owned", Reason: "x"},
		{User: "alice", Outcome: core.LoginRefused, Reason: "Spaces and CAPS"},
	} {
		if err := e.svc.RecordLogin(ctx, radius, bad); !errors.Is(err, core.ErrInvalid) {
			t.Fatalf("RecordLogin(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
	e.verifyChain()
}

func TestLoginStateSaysWhatStandsInTheWay(t *testing.T) {
	e := newPolicyEnv(t)
	e.applyPolicy(e.admin, strictPolicy) // engineers verify with hardware keys only
	ctx := context.Background()
	radius := core.LoginPrincipal("radius")
	e.person("sus")
	f := e.enrol("sus", "")
	if _, err := e.svc.SuspendFactor(ctx, e.help, f.ID, "phone reported stolen"); err != nil {
		t.Fatal(err)
	}
	e.person("eng", "eng")
	soft, err := e.enrolKind("eng", "test", "")
	if err != nil {
		t.Fatal(err)
	}
	// In the rule's grace the engineer still signs in with what he has, as
	// verification lets him; from its deadline on the kind is refused.
	if st, err := e.svc.LoginState(ctx, radius, "eng"); err != nil || len(st.Factors) != 1 || st.Factors[0].ID != soft.ID || len(st.Refused) != 0 {
		t.Fatalf("eng in grace: %+v %v", st, err)
	}
	e.clock.Add(15 * 24 * time.Hour)
	e.person("ok")
	ok := e.enrol("ok", "")
	for _, tc := range []struct {
		user      string
		factors   []string
		suspended int
		refused   []string
	}{
		{"sus", nil, 1, nil},
		{"eng", nil, 0, []string{"test"}},
		{"ok", []string{ok.ID}, 0, nil},
	} {
		st, err := e.svc.LoginState(ctx, radius, tc.user)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, lf := range st.Factors {
			ids = append(ids, lf.ID)
		}
		if !st.Active || !slices.Equal(ids, tc.factors) || st.Suspended != tc.suspended || !slices.Equal(st.Refused, tc.refused) {
			t.Fatalf("%s: state = %+v", tc.user, st)
		}
	}
	if got := e.svc.CodeKinds(); len(got) != 0 {
		t.Fatalf("the test kinds answer with a secret, not a code, yet CodeKinds = %v", got)
	}
}
