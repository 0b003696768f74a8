package core_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/core/coretest"
)

// lostKey sets up a user with two factors and a first set of recovery
// codes, and opens a case for the first factor.
func (e *env) lostKey(name string) (core.Factor, core.Factor, []string, core.RecoveryCase) {
	e.t.Helper()
	u := e.principal(e.admin, name)
	lost := e.enrolSelf(u) // the user's own first factor: its codes go to them
	other := e.enrol(name, "")
	if len(lost.RecoveryCodes) != 10 || len(other.RecoveryCodes) != 0 {
		e.t.Fatalf("first enrolment gave %d codes, second %d; want 10 and 0", len(lost.RecoveryCodes), len(other.RecoveryCodes))
	}
	c, err := e.svc.OpenRecovery(context.Background(), e.help, api.OpenRecovery{User: name, Reason: "left it on a train", LostFactors: []string{lost.ID}, Suspend: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return lost, other, lost.RecoveryCodes, c
}

// redeemAndEnrol uses a pass code to enrol a replacement as the user.
func (e *env) redeemAndEnrol(user, code string) (core.Factor, error) {
	ctx := context.Background()
	red, err := e.svc.RedeemPass(ctx, core.Principal{}, code)
	if err != nil {
		return core.Factor{}, err
	}
	p, err := e.svc.Authenticate(ctx, red.Token)
	if err != nil {
		return core.Factor{}, err
	}
	en, _, err := e.svc.CreateEnrolment(ctx, p, api.CreateEnrolment{User: user, Kind: "test"})
	if err != nil {
		return core.Factor{}, err
	}
	return e.svc.CompleteEnrolment(ctx, p, en.ID, api.CompleteEnrolment{Payload: coretest.EnrolPayload(en.Challenge, "NEW", "")})
}

func TestRecoveryByEachMethodEndsWithTheLostFactorRevoked(t *testing.T) {
	confirmers := map[string]func(e *env, c core.RecoveryCase, codes []string, other core.Factor){
		"another factor": func(e *env, c core.RecoveryCase, _ []string, other core.Factor) {
			v, err := e.svc.BeginRecoveryVerify(context.Background(), e.help, c.ID)
			if err != nil || len(v.Factors) != 1 || v.Factors[0].FactorID != other.ID {
				e.t.Fatalf("recovery verification offered %+v, %v: want only the other factor", v, err)
			}
			if _, err := e.svc.FinishRecoveryVerify(context.Background(), e.help, c.ID, api.RecoveryFactorAnswer{VerificationID: v.ID, FactorID: other.ID, Response: answer("SEED-" + c.Username)}); err != nil {
				e.t.Fatal(err)
			}
		},
		"a recovery code": func(e *env, c core.RecoveryCase, codes []string, _ core.Factor) {
			if _, err := e.svc.ConfirmWithRecoveryCode(context.Background(), e.help, c.ID, codes[3]); err != nil {
				e.t.Fatal(err)
			}
		},
		"a helpdesk check approved by a security officer": func(e *env, c core.RecoveryCase, _ []string, _ core.Factor) {
			a, err := e.svc.RequestIdentityCheck(context.Background(), e.help, c.ID, api.IdentityCheck{Method: "in_person_id", Detail: "passport seen at the desk"})
			if err != nil {
				e.t.Fatal(err)
			}
			if _, err := e.svc.Approve(context.Background(), e.help, a.ID, "checked"); !errors.Is(err, core.ErrSelfApproval) && !errors.Is(err, core.ErrForbidden) {
				e.t.Fatalf("the helpdesk approving its own identity check gave %v", err)
			}
			so := e.principal(e.admin, "olga-"+c.Username, api.RoleSecurityOfficer)
			if _, err := e.people.Approve(so, a.ID, "video call with manager"); err != nil {
				e.t.Fatal(err)
			}
		},
	}
	i := 0
	for method, confirm := range confirmers {
		t.Run("identity by "+method, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			i++
			name := "user-" + string(rune('a'+i))
			lost, other, codes, c := e.lostKey(name)
			if f, _ := e.svc.GetFactor(ctx, e.admin, lost.ID); f.State != api.FactorSuspended {
				t.Fatalf("the lost factor is %s after opening with suspend", f.State)
			}
			if _, _, err := e.svc.IssuePass(ctx, e.help, c.ID, api.IssuePass{}); !errors.Is(err, core.ErrIllegalTransition) {
				t.Fatalf("a pass before identity was confirmed gave %v", err)
			}
			confirm(e, c, codes, other)
			pass, _, err := e.svc.IssuePass(ctx, e.help, c.ID, api.IssuePass{TTL: "30m"})
			if err != nil {
				t.Fatal(err)
			}
			nf, err := e.redeemAndEnrol(name, pass.Code)
			if err != nil {
				t.Fatal(err)
			}
			if f, _ := e.svc.GetFactor(ctx, e.admin, lost.ID); f.State != api.FactorRevoked {
				t.Fatalf("after the replacement the lost factor is %s", f.State)
			}
			if f, _ := e.svc.GetFactor(ctx, e.admin, other.ID); f.State != api.FactorActive {
				t.Fatalf("the other factor is %s", f.State)
			}
			got, _ := e.svc.GetRecovery(ctx, e.admin, c.ID)
			if got.State != api.CaseClosed || got.NewFactorID != nf.ID {
				t.Fatalf("case after enrolment: %+v", got)
			}
			if _, err := e.redeemAndEnrol(name, pass.Code); !errors.Is(err, core.ErrUnauthenticated) {
				t.Fatalf("the same pass used twice gave %v", err)
			}
			e.verifyChain()
		})
	}
}

func TestRecoveryAttacksAreRefused(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, _, codes, c := e.lostKey("mallory")
	if _, err := e.svc.ConfirmWithRecoveryCode(ctx, e.help, c.ID, codes[0]); err != nil {
		t.Fatal(err)
	}
	pass, _, _ := e.svc.IssuePass(ctx, e.help, c.ID, api.IssuePass{TTL: "10m"})
	t.Run("a pass cannot do anything but enrol", func(t *testing.T) {
		red, err := e.svc.RedeemPass(ctx, core.Principal{}, pass.Code)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := e.svc.Authenticate(ctx, red.Token)
		if _, _, err := e.svc.CreateUser(ctx, p, api.CreateUser{Username: "evil"}); !errors.Is(err, core.ErrForbidden) {
			t.Fatalf("creating a user with a pass gave %v", err)
		}
		if _, _, err := e.svc.ListUsers(ctx, p, core.UserFilter{}, core.PageReq{}); !errors.Is(err, core.ErrForbidden) {
			t.Fatalf("listing users with a pass gave %v", err)
		}
		if _, _, err := e.svc.CreateEnrolment(ctx, p, api.CreateEnrolment{User: "desk", Kind: "test"}); !errors.Is(err, core.ErrForbidden) {
			t.Fatalf("enrolling another user with a pass gave %v", err)
		}
	})
	t.Run("a recovery code works once", func(t *testing.T) {
		_, _, codes2, c2 := e.lostKey("trudy")
		e.svc.ConfirmWithRecoveryCode(ctx, e.help, c2.ID, codes2[1])
		c3, _ := e.svc.OpenRecovery(ctx, e.help, api.OpenRecovery{User: "trudy", Reason: "again"})
		if _, err := e.svc.ConfirmWithRecoveryCode(ctx, e.help, c3.ID, codes2[1]); !errors.Is(err, core.ErrInvalid) {
			t.Fatalf("a reused recovery code gave %v", err)
		}
	})
	t.Run("an expired pass is refused", func(t *testing.T) {
		_, _, codes4, c4 := e.lostKey("eve")
		e.svc.ConfirmWithRecoveryCode(ctx, e.help, c4.ID, codes4[2])
		p4, _, _ := e.svc.IssuePass(ctx, e.help, c4.ID, api.IssuePass{TTL: "10m"})
		e.clock.Add(11 * time.Minute)
		if _, err := e.svc.RedeemPass(ctx, core.Principal{}, p4.Code); !errors.Is(err, core.ErrUnauthenticated) {
			t.Fatalf("an expired pass gave %v", err)
		}
	})
	t.Run("repeated wrong codes lock recovery until an admin clears it", func(t *testing.T) {
		_, _, good, c5 := e.lostKey("oscar")
		for range 5 {
			e.svc.ConfirmWithRecoveryCode(ctx, e.help, c5.ID, "aaaaa-bbbbb")
		}
		if _, err := e.svc.ConfirmWithRecoveryCode(ctx, e.help, c5.ID, good[0]); !errors.Is(err, core.ErrLocked) {
			t.Fatalf("after five wrong codes a good one gave %v", err)
		}
		if _, err := e.svc.ClearRecoveryLock(ctx, e.help, "oscar", ""); !errors.Is(err, core.ErrForbidden) {
			t.Fatalf("the helpdesk clearing the lock gave %v", err)
		}
		if _, err := e.svc.ClearRecoveryLock(ctx, e.admin, "oscar", "verified in person"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.ConfirmWithRecoveryCode(ctx, e.help, c5.ID, good[0]); err != nil {
			t.Fatalf("after clearing, a good code gave %v", err)
		}
	})
	e.verifyChain()
}

func TestBreakGlassOpensOneTimeBoxedSessionWithoutASecondApprover(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, shares, err := e.svc.InitBreakGlass(ctx, 5, 3)
	if err != nil || len(shares) != 5 {
		t.Fatalf("init: %d shares, %v", len(shares), err)
	}
	victor := e.principal(e.admin, "victor")
	f := e.enrolSelf(victor) // his own: the recovery codes are his
	e.enrol("victor", "")    // a second factor: policy never removes the last one
	use := func(sh []string, d string) (api.BreakGlassSession, error) {
		return e.svc.UseBreakGlass(ctx, api.BreakGlassUse{Shares: sh, Duration: d, Reason: "all admins locked out"})
	}
	if _, err := use(shares[:2], ""); !errors.Is(err, core.ErrUnauthenticated) {
		t.Fatalf("M-1 shares gave %v", err)
	}
	sess, err := use([]string{shares[4], shares[0], shares[2]}, "30m")
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.svc.Authenticate(ctx, sess.Token)
	if err != nil {
		t.Fatal(err)
	}
	a, err := e.svc.RequestFactorRevoke(ctx, p, f.ID, "emergency")
	if err != nil || a.State != api.ApprovalApproved {
		t.Fatalf("a revoke in break-glass: %+v %v", a, err)
	}
	if got, _ := e.svc.GetFactor(ctx, e.admin, f.ID); got.State != api.FactorRevoked {
		t.Fatalf("the factor is %s", got.State)
	}
	if _, err := use(shares[:3], ""); !errors.Is(err, core.ErrUnauthenticated) {
		t.Fatalf("a second use of the credential gave %v", err)
	}
	st, _ := e.svc.BreakGlassStatus(ctx, e.admin)
	if !st.NeedsRotation || !st.SessionActive || st.SessionEndsAt == nil || !st.SessionEndsAt.Equal(sess.ExpiresAt) {
		t.Fatalf("during the session the status is %+v", st)
	}
	rep, err := e.svc.ComplianceReport(ctx, e.admin, "", 14*24*time.Hour)
	if err != nil || rep.BreakGlass == nil || !rep.BreakGlass.NeedsRotation {
		t.Fatalf("the compliance report does not say break-glass was used and not rotated: %+v %v", rep.BreakGlass, err)
	}
	if rep.RecoveryCodes.WithCodes != 1 || rep.RecoveryCodes.UnusedTotal != 10 {
		t.Fatalf("recovery codes in the report: %+v", rep.RecoveryCodes)
	}
	if _, err := use(shares[1:4], "5h"); !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("a session longer than the limit gave %v", err)
	}
	e.clock.Add(31 * time.Minute)
	if err := e.svc.SweepBreakGlass(ctx); err != nil {
		t.Fatal(err)
	}
	if ended, _ := e.svc.ListAudit(ctx, e.admin, core.AuditFilter{Action: "breakglass.end"}, 10); len(ended) != 1 {
		t.Fatalf("the sweep wrote %d breakglass.end events, want 1", len(ended))
	}
	if st, _ := e.svc.BreakGlassStatus(ctx, e.admin); st.SessionActive || !st.NeedsRotation {
		t.Fatalf("after the session the status is %+v", st)
	}
	if _, err := e.svc.Authenticate(ctx, sess.Token); !errors.Is(err, core.ErrTokenRevoked) && !errors.Is(err, core.ErrTokenExpired) {
		t.Fatalf("a session past its time gave %v", err)
	}
	// Rotating is two-person, and each holder collects their own share.
	rot := api.BreakGlassRotate{Holders: []string{"root", "second", "victor"}, Threshold: 2}
	req, err := e.svc.RotateBreakGlass(ctx, e.people.Prove(e.admin, "breakglass.rotate", "", rot), rot)
	if err != nil || req.State != api.ApprovalPending {
		t.Fatal(req, err)
	}
	if _, err := e.approve(e.admin2, req.ID); err != nil {
		t.Fatal(err)
	}
	var fresh []string
	for _, holder := range []core.Principal{e.admin, e.admin2} {
		sh, err := e.svc.CollectBreakGlassShare(ctx, e.people.Prove(holder, "breakglass.share", "", nil))
		if err != nil {
			t.Fatal(err)
		}
		fresh = append(fresh, sh.Share)
		if _, err := e.svc.CollectBreakGlassShare(ctx, e.people.Prove(holder, "breakglass.share", "", nil)); !errors.Is(err, core.ErrForbidden) {
			t.Fatalf("collecting a share twice gave %v", err)
		}
	}
	fresh = append([]string{""}, fresh...)
	if _, err := use(shares[:3], ""); !errors.Is(err, core.ErrInvalid) && !errors.Is(err, core.ErrUnauthenticated) {
		t.Fatalf("shares from a rotated set gave %v", err)
	}
	if _, err := use([]string{shares[0], fresh[1], fresh[2]}, ""); !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("mixed sets gave %v", err)
	}
	recs, _ := e.svc.ListAudit(ctx, e.admin, core.AuditFilter{}, 500)
	seen := map[string]bool{}
	for _, r := range recs {
		ev, _ := r.Event()
		seen[ev.Action] = true
		if ev.Action == "factor.revoke" && ev.Extra["breakglass"] != "true" {
			t.Fatal("the break-glass revoke is not marked as break-glass")
		}
	}
	for _, want := range []string{"breakglass.failed", "breakglass.start", "breakglass.end", "breakglass.rotate"} {
		if !seen[want] {
			t.Errorf("no %s event", want)
		}
	}
	e.verifyChain()
}

func TestARecoveryCaseThatCannotOpenLeavesTheLostDeviceAlone(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.principal(e.admin, "owner")
	e.principal(e.admin, "other")
	f := e.enrol("owner", "777")
	head := e.st.AuditHead()
	tests := []struct {
		name string
		in   api.OpenRecovery
	}{
		{"an unknown user", api.OpenRecovery{User: "nobody", Reason: "lost", LostDevice: f.DeviceID}},
		{"another user's device", api.OpenRecovery{User: "other", Reason: "lost", LostDevice: f.DeviceID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := e.svc.OpenRecovery(ctx, e.help, tt.in); err == nil {
				t.Fatal("the case opened")
			}
			if d, _, _ := e.svc.GetDevice(ctx, e.admin, f.DeviceID); d.State != api.DeviceActive || e.st.AuditHead() != head {
				t.Fatalf("the refused case changed the device to %s", d.State)
			}
		})
	}
	c, err := e.svc.OpenRecovery(ctx, e.help, api.OpenRecovery{User: "owner", Reason: "stolen", LostDevice: f.DeviceID})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := e.svc.GetFactor(ctx, e.admin, f.ID); got.State != api.FactorRevoked || len(c.LostFactorIDs) != 0 {
		t.Fatalf("after the case the factor is %s and the case lists %v", got.State, c.LostFactorIDs)
	}
	e.verifyChain()
}

func TestAnOnboardingPassEnrolsAFirstFactorOnly(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.principal(e.admin, "nia")
	if _, _, err := e.svc.IssueOnboardingPass(ctx, e.principal(e.admin, "enr", api.RoleEnroller), "nia", api.IssuePass{}); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("an enroller issuing a pass: %v", err)
	}
	if _, _, err := e.svc.IssueOnboardingPass(ctx, e.help, "nia", api.IssuePass{TTL: "9h"}); !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("a pass of 9h: %v", err)
	}
	pass, _, err := e.svc.IssueOnboardingPass(ctx, e.help, "nia", api.IssuePass{TTL: "2h"})
	if err != nil || pass.Code == "" || pass.Uses != 1 || !pass.ExpiresAt.Equal(e.clock.Now().Add(2*time.Hour)) {
		t.Fatalf("pass = %+v, %v", pass, err)
	}
	f, err := e.redeemAndEnrol("nia", pass.Code)
	if err != nil || f.State != api.FactorActive || len(f.RecoveryCodes) != 10 {
		t.Fatalf("enrolling with the pass: %+v, %v", f, err)
	}
	if _, err := e.redeemAndEnrol("nia", pass.Code); !errors.Is(err, core.ErrUnauthenticated) {
		t.Fatalf("the pass twice: %v", err)
	}
	if refused, _ := e.svc.ListAudit(ctx, e.admin, core.AuditFilter{Action: "pass.redeem_refused"}, 10); len(refused) != 1 || strings.Contains(string(refused[0].Body), pass.Code) {
		t.Fatalf("the refused pass is not audited once, without its code: %v", refused)
	}
	// A suspended factor counts: suspending a user's keys is no way round
	// a recovery case.
	e.principal(e.admin, "ola")
	olas := e.enrol("ola", "")
	if _, err := e.svc.SuspendFactor(ctx, e.help, olas.ID, "key left at home"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.IssueOnboardingPass(ctx, e.help, "ola", api.IssuePass{}); !errors.Is(err, core.ErrIllegalTransition) {
		t.Fatalf("a pass for a user whose only factor is suspended: %v", err)
	}
	// An account with a staff role gets its first pass from an admin only.
	e.keyless("new-desk", api.RoleHelpdesk)
	if _, _, err := e.svc.IssueOnboardingPass(ctx, e.help, "new-desk", api.IssuePass{}); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("the helpdesk issuing a first pass for a helpdesk account: %v", err)
	}
	// An admin asks, with a proof; a second officer approves and is shown
	// the pass (the asker never sees it).
	nd, _ := e.svc.GetUser(ctx, e.admin, "new-desk")
	_, req, err := e.svc.IssueOnboardingPass(ctx, e.people.Prove(e.admin, "pass.issue", nd.ID, api.IssuePass{}), "new-desk", api.IssuePass{})
	if err != nil || req.Action != api.ActionRecoveryPass || req.State != api.ApprovalPending {
		t.Fatalf("an admin asking for it: %+v %v", req, err)
	}
	got, err := e.approve(e.admin2, req.ID)
	if err != nil || got.API(e.clock.Now()).IssuedPass == nil || got.API(e.clock.Now()).IssuedPass.Code == "" {
		t.Fatalf("approving it: %+v %v; want the pass shown to the approver", got, err)
	}
	// Nia has a factor now: another pass needs a recovery case.
	_, _, err = e.svc.IssueOnboardingPass(ctx, e.help, "nia", api.IssuePass{})
	if !errors.Is(err, core.ErrIllegalTransition) || !strings.Contains(err.Error(), "recovery case") {
		t.Fatalf("a second onboarding pass: %v, want a refusal that points to a recovery case", err)
	}
	recs, _ := e.svc.ListAudit(ctx, e.admin, core.AuditFilter{Action: "pass.issue"}, 10)
	if len(recs) != 2 || !strings.Contains(string(recs[0].Body), `"purpose":"onboarding"`) || strings.Contains(string(recs[0].Body), pass.Code) {
		t.Fatalf("pass.issue events: %d %v", len(recs), recs)
	}
	e.verifyChain()
}
