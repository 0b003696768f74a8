package core_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/core/coretest"
)

// No credential outlives what granted it. Each story takes a credential
// (a pass's token, an enrolment code's token, a token made in a
// break-glass session, a request) past the end of what granted it and
// shows it refused.

// confirmedCase opens and confirms (with a recovery code) a case for a
// user who has their own first factor, and issues its pass.
func (e *env) confirmedCase(name string) (core.RecoveryCase, api.IssuedPass) {
	e.t.Helper()
	ctx := context.Background()
	u := e.principal(e.admin, name)
	f := e.enrolSelf(u)
	c, err := e.svc.OpenRecovery(ctx, e.help, api.OpenRecovery{User: name, Reason: "phone stolen"})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.svc.ConfirmWithRecoveryCode(ctx, e.help, c.ID, f.RecoveryCodes[0]); err != nil {
		e.t.Fatal(err)
	}
	pass, _, err := e.svc.IssuePass(ctx, e.help, c.ID, api.IssuePass{TTL: "1h"})
	if err != nil {
		e.t.Fatal(err)
	}
	return c, pass
}

func TestACancelledRecoveryCasesPassNoLongerTakesOverTheAccount(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// The helpdesk opens a case for bob, confirms it with a recovery code
	// and issues a pass…
	c, pass := e.confirmedCase("bob")
	// …then suspects social engineering and cancels the case.
	if _, err := e.svc.CancelRecovery(ctx, e.help, c.ID, "social engineering suspected"); err != nil {
		t.Fatal(err)
	}
	// The pass no longer redeems, so no factor can be enrolled with it.
	if _, err := e.svc.RedeemPass(ctx, core.Principal{}, pass.Code); !errors.Is(err, core.ErrUnauthenticated) {
		t.Fatalf("redeeming the cancelled case's pass: %v", err)
	}
	got, _ := e.svc.GetRecovery(ctx, e.admin, c.ID)
	if got.State != api.CaseCancelled {
		t.Fatalf("the case is %s; a cancelled case stays cancelled", got.State)
	}
}

func TestATokenRedeemedFromAPassDiesWithItsCase(t *testing.T) {
	cases := []struct {
		name string
		end  func(e *env, c core.RecoveryCase)
	}{
		{"cancelled", func(e *env, c core.RecoveryCase) {
			if _, err := e.svc.CancelRecovery(context.Background(), e.help, c.ID, "changed my mind"); err != nil {
				e.t.Fatal(err)
			}
		}},
		{"expired", func(e *env, c core.RecoveryCase) { e.clock.Add(73 * time.Hour) }},
	}
	for _, tc := range cases {
		t.Run("when the case is "+tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			c, pass := e.confirmedCase("dan")
			red, err := e.svc.RedeemPass(ctx, core.Principal{}, pass.Code)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.svc.Authenticate(ctx, red.Token); err != nil {
				t.Fatalf("the fresh pass token: %v", err)
			}
			tc.end(e, c)
			if _, err := e.svc.Authenticate(ctx, red.Token); !errors.Is(err, core.ErrTokenRevoked) && !errors.Is(err, core.ErrTokenExpired) {
				t.Fatalf("the token after its case was %s: %v", tc.name, err)
			}
		})
	}
}

func TestAReplacedPassesTokenStopsAtOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c, passA := e.confirmedCase("eve")
	redA, err := e.svc.RedeemPass(ctx, core.Principal{}, passA.Code)
	if err != nil {
		t.Fatal(err)
	}
	// Pass B replaces A on the same case: A's token stops, so it cannot
	// make itself fresh recovery codes for the next case.
	if _, _, err := e.svc.IssuePass(ctx, e.help, c.ID, api.IssuePass{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Authenticate(ctx, redA.Token); !errors.Is(err, core.ErrTokenRevoked) {
		t.Fatalf("pass A's token after pass B: %v", err)
	}
}

func TestAPassTokenEndsWhenItsCaseCloses(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, pass := e.confirmedCase("fay")
	red, _ := e.svc.RedeemPass(ctx, core.Principal{}, pass.Code)
	p, err := e.svc.Authenticate(ctx, red.Token)
	if err != nil {
		t.Fatal(err)
	}
	en, _, err := e.svc.CreateEnrolment(ctx, p, api.CreateEnrolment{User: "fay", Kind: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CompleteEnrolment(ctx, p, en.ID, api.CompleteEnrolment{Payload: coretest.EnrolPayload(en.Challenge, "new", "")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Authenticate(ctx, red.Token); !errors.Is(err, core.ErrTokenRevoked) {
		t.Fatalf("the pass token after its case closed: %v", err)
	}
}

func TestAnEnrolmentCodesTokenDiesWithItsEnrolment(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.principal(e.admin, "gil")
	en, code := e.codeFor("gil")
	red, err := e.svc.RedeemEnrolmentCode(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CancelEnrolment(ctx, e.admin, en.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Authenticate(ctx, red.Token); !errors.Is(err, core.ErrTokenRevoked) {
		t.Fatalf("the code's token after its enrolment was cancelled: %v", err)
	}
}

func TestABreakGlassSessionMakesNothingThatOutlivesIt(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, shares, err := e.svc.InitBreakGlass(ctx, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := e.svc.UseBreakGlass(ctx, api.BreakGlassUse{Shares: shares[:2], Duration: "30m", Reason: "outage"})
	if err != nil {
		t.Fatal(err)
	}
	bg, _ := e.svc.Authenticate(ctx, sess.Token)
	e.svc.CreateUser(ctx, bg, api.CreateUser{Username: "ops-bot", Kind: api.KindService})
	// A token with no expiry asked for, made in the session…
	tok, secret, err := e.svc.CreateToken(ctx, bg, api.CreateToken{User: "ops-bot", Name: "forever"})
	if err != nil || tok.ExpiresAt == nil || tok.ExpiresAt.After(sess.ExpiresAt) {
		t.Fatalf("a token made in the session: %+v %v; want it to expire with the session", tok, err)
	}
	if _, err := e.svc.Authenticate(ctx, secret); err != nil {
		t.Fatalf("during the session: %v", err)
	}
	// …stops when the session is ended early.
	if err := e.svc.EndBreakGlass(ctx, bg); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Authenticate(ctx, secret); !errors.Is(err, core.ErrTokenRevoked) {
		t.Fatalf("after the session ended: %v", err)
	}
}

func TestARequestWhoseRequesterLeftIsVoid(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.principal(e.admin, "hal")
	e.enrol("hal", "")
	e.enrol("hal", "")
	// The helpdesk asks to reset hal's MFA, then the helpdesk account is
	// disabled (through its own approved request).
	req, err := e.svc.RequestUserAction(ctx, e.help, "hal", api.ActionUserResetMFA, "hal says so")
	if err != nil {
		t.Fatal(err)
	}
	dis, err := e.svc.RequestUserAction(ctx, e.admin, "desk", api.ActionUserDisable, "left the company")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.approve(e.admin2, dis.ID); err != nil {
		t.Fatal(err)
	}
	got, err := e.approve(e.admin2, req.ID)
	if err == nil || got.State != api.ApprovalVoid {
		t.Fatalf("approving the departed requester's request: %+v %v; want it void", got, err)
	}
	fs, _, _ := e.svc.ListFactors(ctx, e.admin, core.FactorFilter{UserID: got.TargetID}, core.PageReq{})
	for _, f := range fs {
		if f.State != api.FactorActive {
			t.Fatalf("a void request acted: factor %s is %s", f.ID, f.State)
		}
	}
}
