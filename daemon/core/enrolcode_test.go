package core_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/core/coretest"
)

// codeFor opens a "test" enrolment for user and returns it with its code.
func (e *env) codeFor(user string) (core.Enrolment, string) {
	e.t.Helper()
	en, _, err := e.svc.CreateEnrolment(context.Background(), e.admin, api.CreateEnrolment{User: user, Kind: "test", TTL: "30m"})
	if err != nil {
		e.t.Fatal(err)
	}
	return en, en.Code()
}

func (e *env) auditHead() uint64 {
	e.t.Helper()
	h, err := e.svc.AuditHead(e.admin)
	if err != nil {
		e.t.Fatal(err)
	}
	return h.Seq
}

func TestAnEnrolmentCodeRedeemsOnceForATokenThatCompletesOnlyThatEnrolment(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.principal(e.admin, "alice")
	e.principal(e.admin, "bob")
	en, code := e.codeFor("alice")
	other, _ := e.codeFor("alice") // a second open enrolment of the same user
	bobs, _ := e.codeFor("bob")

	red, err := e.svc.RedeemEnrolmentCode(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	if red.Username != "alice" || red.Enrolment.ID != en.ID || red.Enrolment.Kind != "test" ||
		string(red.Enrolment.Challenge) != string(en.Challenge) || !red.ExpiresAt.Equal(en.ExpiresAt) {
		t.Fatalf("redeemed %+v", red)
	}
	p, err := e.svc.Authenticate(ctx, red.Token)
	if err != nil || p.EnrolmentID != en.ID || p.Auth != "enrolment_code" {
		t.Fatalf("the code's token is %+v, %v", p, err)
	}
	if _, err := e.svc.RedeemEnrolmentCode(ctx, code); !errors.Is(err, core.ErrUnauthenticated) {
		t.Fatalf("the same code redeemed twice: %v", err)
	}

	refusals := []struct {
		name string
		do   func() error
	}{
		{"creating another enrolment for the user", func() error {
			_, _, err := e.svc.CreateEnrolment(ctx, p, api.CreateEnrolment{User: "alice", Kind: "test"})
			return err
		}},
		{"reading another user", func() error { _, err := e.svc.GetUser(ctx, p, "bob"); return err }},
		{"listing users", func() error { _, _, err := e.svc.ListUsers(ctx, p, core.UserFilter{}, core.PageReq{}); return err }},
		{"reading an enrolment", func() error { _, err := e.svc.GetEnrolment(ctx, p, en.ID); return err }},
		{"cancelling the enrolment", func() error { _, err := e.svc.CancelEnrolment(ctx, p, en.ID); return err }},
		{"completing another enrolment of the same user", func() error {
			_, err := e.svc.CompleteEnrolment(ctx, p, other.ID, api.CompleteEnrolment{Payload: coretest.EnrolPayload(other.Challenge, "X", "")})
			return err
		}},
		{"completing another user's enrolment", func() error {
			_, err := e.svc.CompleteEnrolment(ctx, p, bobs.ID, api.CompleteEnrolment{Payload: coretest.EnrolPayload(bobs.Challenge, "X", "")})
			return err
		}},
	}
	for _, r := range refusals {
		if err := r.do(); !errors.Is(err, core.ErrForbidden) {
			t.Errorf("%s with the code's token gave %v, want forbidden", r.name, err)
		}
	}
	if u, err := e.svc.GetUser(ctx, p, "alice"); err != nil || u.Username != "alice" {
		t.Fatalf("reading its own user gave %v", err)
	}

	f, err := e.svc.CompleteEnrolment(ctx, p, en.ID, api.CompleteEnrolment{Label: "my key", Payload: coretest.EnrolPayload(en.Challenge, "SEED", "")})
	if err != nil || f.UserID != red.UserID || f.State != api.FactorActive {
		t.Fatalf("completing the code's enrolment: %+v %v", f, err)
	}
	if _, err := e.svc.Authenticate(ctx, red.Token); !errors.Is(err, core.ErrTokenRevoked) {
		t.Fatalf("after its enrolment completed the code's token gave %v, want revoked", err)
	}
	got, _ := e.svc.GetEnrolment(ctx, e.admin, en.ID)
	if got.CodeRedeemedAt == nil || got.State != api.EnrolmentCompleted {
		t.Fatalf("enrolment after redemption %+v", got)
	}

	recs, _ := e.svc.ListAudit(ctx, e.admin, core.AuditFilter{Action: "enrolment.code_redeemed"}, 10)
	if len(recs) != 1 {
		t.Fatalf("%d enrolment.code_redeemed events, want 1", len(recs))
	}
	ev, _ := recs[0].Event()
	if ev.Extra["enrolment_id"] != en.ID || ev.Actor.ID != red.UserID {
		t.Fatalf("event %+v", ev)
	}
	assertNoSecret(t, e, code, red.Token, strings.SplitN(code, ".", 2)[1])
	e.verifyChain()
}

// assertNoSecret fails if any audit record holds one of the secrets.
func assertNoSecret(t *testing.T, e *env, secrets ...string) {
	t.Helper()
	recs, err := e.svc.ListAudit(context.Background(), e.admin, core.AuditFilter{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		ev, _ := r.Event()
		b, _ := json.Marshal(ev)
		for _, s := range secrets {
			if strings.Contains(string(b), s) {
				t.Fatalf("audit event %s holds a secret: %s", ev.Action, b)
			}
		}
	}
}

func TestEveryUnusableEnrolmentCodeIsRefusedTheSameWayAndChangesNothing(t *testing.T) {
	tests := []struct {
		name  string
		setup func(e *env, en core.Enrolment, code string) string // returns the code to try
	}{
		{"a wrong secret", func(_ *env, en core.Enrolment, _ string) string {
			return api.EnrolmentCode(en.ID, make([]byte, 24))
		}},
		{"the enrolment's challenge, which other readers see", func(_ *env, en core.Enrolment, _ string) string {
			return api.EnrolmentCode(en.ID, en.Challenge)
		}},
		{"an unknown enrolment", func(_ *env, _ core.Enrolment, code string) string {
			_, secret, _ := api.ParseEnrolmentCode(code)
			return api.EnrolmentCode("enr_0000000000000000000000000", secret)
		}},
		{"a malformed code", func(_ *env, _ core.Enrolment, code string) string { return strings.ReplaceAll(code, ".", "") }},
		{"an expired enrolment", func(e *env, _ core.Enrolment, code string) string { e.clock.Add(31 * time.Minute); return code }},
		{"a cancelled enrolment", func(e *env, en core.Enrolment, code string) string {
			if _, err := e.svc.CancelEnrolment(context.Background(), e.admin, en.ID); err != nil {
				e.t.Fatal(err)
			}
			return code
		}},
		{"a completed enrolment", func(e *env, en core.Enrolment, code string) string {
			if _, err := e.svc.CompleteEnrolment(context.Background(), e.admin, en.ID, api.CompleteEnrolment{Payload: coretest.EnrolPayload(en.Challenge, "S", "")}); err != nil {
				e.t.Fatal(err)
			}
			return code
		}},
		{"a disabled user", func(e *env, _ core.Enrolment, code string) string {
			ctx := context.Background()
			a, err := e.svc.RequestUserAction(ctx, e.admin, "zoe", api.ActionUserDisable, "left")
			if err != nil {
				e.t.Fatal(err)
			}
			if _, err := e.approve(e.admin2, a.ID); err != nil {
				e.t.Fatal(err)
			}
			return code
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.principal(e.admin, "zoe")
			en, code := e.codeFor("zoe")
			try := tt.setup(e, en, code)
			before := e.auditHead()
			_, err := e.svc.RedeemEnrolmentCode(context.Background(), try)
			if !errors.Is(err, core.ErrUnauthenticated) || !strings.Contains(err.Error(), "not valid (wrong, used or expired); ask your administrator for a new one") {
				t.Fatalf("redeeming gave %v", err)
			}
			if strings.Contains(err.Error(), try) || strings.Contains(err.Error(), en.ID) {
				t.Fatalf("the error names the code or enrolment: %v", err)
			}
			// One event records the refusal, and nothing of what was typed.
			recs, _ := e.svc.ListAudit(context.Background(), e.admin, core.AuditFilter{After: before}, 10)
			if len(recs) != 1 || !strings.Contains(string(recs[0].Body), `"enrolment.code_refused"`) ||
				strings.Contains(string(recs[0].Body), try) || strings.Contains(string(recs[0].Body), en.ID) {
				t.Fatalf("a refused code wrote %d audit events: %v", len(recs), recs)
			}
			if got, _ := e.svc.GetEnrolment(context.Background(), e.admin, en.ID); got.CodeRedeemedAt != nil {
				t.Fatalf("a refused code marked the enrolment redeemed")
			}
		})
	}
}

func TestEnrolmentChallengesAreHiddenFromReadersWhoCannotEnrol(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.principal(e.admin, "yan")
	auditor := e.principal(e.admin, "audrey", api.RoleAuditor)
	en, _ := e.codeFor("yan")
	for _, c := range []struct {
		who  string
		p    core.Principal
		want bool
	}{{"an auditor", auditor, false}, {"the helpdesk that opened it", e.help, true}, {"an admin", e.admin, true}} {
		got, err := e.svc.GetEnrolment(ctx, c.p, en.ID)
		if err != nil || (len(got.Challenge) > 0) != c.want {
			t.Errorf("%s read challenge %x (%v); want shown = %v", c.who, got.Challenge, err, c.want)
		}
		list, _, err := e.svc.ListEnrolments(ctx, c.p, core.EnrolmentFilter{UserID: "yan"}, core.PageReq{})
		if err != nil || len(list) != 1 || (len(list[0].Challenge) > 0) != c.want || len(list[0].Sealed) > 0 {
			t.Errorf("%s listed %+v (%v); want challenge shown = %v", c.who, list, err, c.want)
		}
	}
}

func TestOnlyACreatorWhoMayCompleteGetsACode(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.principal(e.admin, "adm", api.RoleAdmin)
	// The helpdesk may open an enrolment for anyone, but not complete one:
	// it gets no code, so it cannot finish the enrolment itself.
	en, _, err := e.svc.CreateEnrolment(ctx, e.help, api.CreateEnrolment{User: "adm", Kind: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if en.Code() != "" || len(en.CodeHash) != 0 {
		t.Fatalf("a helpdesk-created enrolment has a code %q", en.Code())
	}
	if got, _ := e.svc.GetEnrolment(ctx, e.admin, en.ID); got.Code() != "" {
		t.Fatal("a stored enrolment gives its code out again")
	}
	for _, try := range []string{api.EnrolmentCode(en.ID, en.Challenge), api.EnrolmentCode(en.ID, make([]byte, 24))} {
		if _, err := e.svc.RedeemEnrolmentCode(ctx, try); !errors.Is(err, core.ErrUnauthenticated) {
			t.Fatalf("redeeming a code for a code-less enrolment: %v", err)
		}
	}
	enr := e.principal(e.admin, "desk-enroller", api.RoleEnroller)
	e.principal(e.admin, "bea")
	en2, _, err := e.svc.CreateEnrolment(ctx, enr, api.CreateEnrolment{User: "bea", Kind: "test"})
	if err != nil || en2.Code() == "" {
		t.Fatalf("an enroller's enrolment: code %q, %v", en2.Code(), err)
	}
	// An enrolment code for a staff account is never in someone else's
	// hands: whoever redeemed it would hold a key of that account.
	en3, _, err := e.svc.CreateEnrolment(ctx, enr, api.CreateEnrolment{User: "adm", Kind: "test"})
	if err != nil || en3.Code() != "" {
		t.Fatalf("an enroller's enrolment for an admin: code %q, %v; want none", en3.Code(), err)
	}
}
