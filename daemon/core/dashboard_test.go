package core_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// A decision without a reason is refused before anything happens: the
// requester and the audit trail are owed the approver's reasons.
func TestADecisionNeedsAReason(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.principal(e.admin, "bob")
	a, err := e.svc.RequestUserAction(ctx, e.help, "bob", api.ActionUserResetMFA, "lost everything")
	if err != nil {
		t.Fatal(err)
	}
	head := e.st.AuditHead()
	for _, reason := range []string{"", "   "} {
		for _, decide := range []func(context.Context, core.Principal, string, string) (core.Approval, error){e.svc.Approve, e.svc.Deny} {
			if _, err := decide(ctx, e.admin, a.ID, reason); !errors.Is(err, core.ErrInvalid) || !strings.Contains(err.Error(), "reason: is required") {
				t.Fatalf("a decision with reason %q gave %v", reason, err)
			}
		}
	}
	if got, _ := e.svc.GetApproval(ctx, e.admin, a.ID); got.State != api.ApprovalPending || e.st.AuditHead() != head {
		t.Fatalf("a refused decision changed something: %s", got.State)
	}
}

// The approvals page says who may still decide a request: people with a
// role that may approve it, never the requester, nobody who handled the
// requester's account, no service account, and whether each holds a key.
func TestApproversAreWhoMayStillDecide(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.principal(e.admin, "bob")
	so := e.principal(core.System, "sol", api.RoleSecurityOfficer)
	e.keyless("kim", api.RoleAdmin)
	e.principal(core.System, "aud", api.RoleAuditor)
	// pal opened an enrolment for the requester's account: not
	// independent of them.
	pal := e.principal(core.System, "pal", api.RoleAdmin)
	if _, _, err := e.svc.CreateEnrolment(ctx, pal, api.CreateEnrolment{User: "desk", Kind: "test"}); err != nil {
		t.Fatal(err)
	}
	a, err := e.svc.RequestUserAction(ctx, e.help, "bob", api.ActionUserResetMFA, "lost everything")
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.svc.Approvers(ctx, e.help, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	keys := map[string]bool{}
	for _, ap := range got {
		names = append(names, ap.User.Name)
		keys[ap.User.Name] = ap.HasKey
	}
	if want := []string{"kim", "root", "second", "sol"}; !slices.Equal(names, want) {
		t.Fatalf("approvers %v, want %v (not the requester desk, not pal who enrolled for desk, not the auditor)", names, want)
	}
	if keys["kim"] || !keys["sol"] {
		t.Fatalf("keys %v: kim has none, sol has one", keys)
	}
	if _, err := e.svc.Approvers(ctx, e.principal(e.admin, "carl"), a.ID); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("a plain user listing approvers gave %v", err)
	}
	if _, err := e.approve(so, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Approvers(ctx, e.help, a.ID); !errors.Is(err, core.ErrApprovalClosed) {
		t.Fatalf("approvers of a decided request gave %v", err)
	}
}

// The audit page reads newest first, a page at a time, with filters on
// time and anything else the page asks (a severity).
func TestAuditPagesGoBackFromTheNewest(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var made []string
	for i := range 30 {
		e.principal(e.admin, fmt.Sprintf("u%02d", i))
		made = append(made, fmt.Sprintf("u%02d", i))
		e.clock.Add(time.Minute)
	}
	page, err := e.svc.ListAuditNewest(ctx, e.admin, core.AuditQuery{AuditFilter: core.AuditFilter{Action: "user.create"}}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 10 || page.Events[0].Target.Name != "u29" || page.Events[9].Target.Name != "u20" || page.Next == 0 {
		t.Fatalf("first page: %d events, %s..%s, next %d", len(page.Events), page.Events[0].Target.Name, page.Events[9].Target.Name, page.Next)
	}
	var all []string
	q := core.AuditQuery{AuditFilter: core.AuditFilter{Action: "user.create"}}
	for {
		page, err := e.svc.ListAuditNewest(ctx, e.admin, q, 7)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range page.Events {
			all = append(all, ev.Target.Name)
		}
		if page.Next == 0 {
			break
		}
		q.Before = page.Next
	}
	slices.Reverse(all)
	if !slices.Equal(all[len(all)-30:], made) {
		t.Fatalf("paging back read %v", all)
	}
	// Since stops the read; Match narrows it further.
	since := e.clock.Now().Add(-5*time.Minute - time.Second)
	page, err = e.svc.ListAuditNewest(ctx, e.admin, core.AuditQuery{Since: since, Match: func(ev audit.Event) bool { return ev.Action == "user.create" }}, 100)
	if err != nil || len(page.Events) != 5 || page.Next != 0 {
		t.Fatalf("the last five minutes: %d events, next %d, %v", len(page.Events), page.Next, err)
	}
	// A target goes through its index, newest first.
	u, _ := e.svc.GetUser(ctx, e.admin, "u03")
	e.svc.UpdateUser(ctx, e.admin, "u03", api.UpdateUser{DisplayName: ptr("Three")})
	page, err = e.svc.ListAuditNewest(ctx, e.admin, core.AuditQuery{AuditFilter: core.AuditFilter{TargetID: u.ID}}, 10)
	if err != nil || len(page.Events) != 2 || page.Events[0].Action != "user.update" || page.Events[1].Action != "user.create" {
		t.Fatalf("u03's events: %+v %v", page.Events, err)
	}
	if _, err := e.svc.ListAuditNewest(ctx, e.principal(e.admin, "carl"), core.AuditQuery{}, 10); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("a plain user reading the audit log gave %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

// Applying the example policy must not silently shut out the only admin:
// the dry run counts who could still sign in and warns when nobody could.
func TestTheDryRunWarnsWhenNoAdministratorCouldSignIn(t *testing.T) {
	e := newPolicyEnv(t)
	ctx := context.Background()
	tests := []struct {
		name, doc string
		warn      string
		after     int
	}{
		{"a rule that lets admins sign in only with a kind none holds, at once",
			"version: 1\nrules:\n  - name: admins\n    match: {roles: [admin]}\n    require: {verification_kinds: [hwkey]}\n",
			"No administrator could sign in under this policy", 0},
		{"the same rule with time to comply warns of the day it bites",
			"version: 1\nrules:\n  - name: admins\n    match: {roles: [admin]}\n    require: {verification_kinds: [hwkey], enroll_within: 14d}\n",
			"From 2026-12-11 no administrator could sign in", 1},
		{"a rule that keeps their keys says nothing",
			"version: 1\nrules:\n  - name: admins\n    match: {roles: [admin]}\n    require: {verification_kinds: [hwkey, testkey]}\n",
			"", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dr, err := e.svc.DryRunPolicy(ctx, e.admin, api.PolicyDocument{Document: tt.doc})
			if err != nil {
				t.Fatal(err)
			}
			if dr.AdminsSignIn.Admins != 1 || dr.AdminsSignIn.Before != 1 || dr.AdminsSignIn.After != tt.after {
				t.Fatalf("admins signing in: %+v", dr.AdminsSignIn)
			}
			got := strings.Join(dr.Warnings, "\n")
			if (tt.warn == "") != (got == "") || !strings.Contains(got, tt.warn) {
				t.Fatalf("warnings %q, want %q", got, tt.warn)
			}
		})
	}
}

// pages is the web pages' principal: it verifies users for sign-in.
var pages = core.Principal{UserID: "keyfleetd-web", Username: "keyfleetd-web", Roles: []string{api.RoleService}, Auth: "system"}

// Tina has only an authenticator app. With the policy's permission she
// signs in to her own pages with its code and a recovery code, which is
// used up; without it, with a used code, or once she holds a key, the
// answer is the same refusal and the trail says why.
func TestAPersonWithOnlyAnAppSignsInWithItsCodeAndTheSecondCheck(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tina := e.principal(e.admin, "tina")
	app := e.enrol("tina", "")
	tina = e.people.ProveWith(tina, "recovery_codes.regenerate", "", nil, func(api.VerificationFactor) json.RawMessage { return answer("SEED-tina") })
	codes, err := e.svc.RegenerateRecoveryCodes(ctx, tina, "")
	if err != nil {
		t.Fatal(err)
	}
	app2 := e.enrol("tina", "") // a second app: either one's code signs her in
	signIn := func(secret, code string) (core.User, int, error) {
		return e.svc.AppSignIn(ctx, pages, core.AppSignInRequest{User: "tina", Kinds: []string{"test"}, Response: answer(secret),
			Check: "recovery_code", Code: code})
	}
	if _, _, err := signIn("SEED-tina", codes[0]); !errors.Is(err, core.ErrUnauthenticated) {
		t.Fatalf("without the policy's permission: %v", err)
	}
	// Turning app sign-in on weakens the policy: a second person approves.
	in := api.PolicyDocument{Document: appSignInPolicy}
	if _, err := e.svc.ApplyPolicy(ctx, e.people.Prove(e.admin, "policy.apply", "", in), in); err != nil {
		t.Fatal(err)
	}
	as, _, _ := e.svc.ListApprovals(ctx, e.admin, api.ApprovalPending, core.PageReq{})
	if len(as) != 1 || as[0].Action != api.ActionPolicyApply {
		t.Fatalf("turning app sign-in on did not wait for a second person: %+v", as)
	}
	if _, err := e.approve(e.admin2, as[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := signIn("wrong", codes[0]); !errors.Is(err, core.ErrUnauthenticated) {
		t.Fatalf("a wrong app code: %v", err)
	}
	if n, _ := e.svc.RecoveryCodesRemaining(ctx, tina.UserID); n != 10 {
		t.Fatalf("a wrong app code used a recovery code: %d left", n)
	}
	f1, _ := e.svc.GetFactor(ctx, e.admin, app.ID)
	f2, _ := e.svc.GetFactor(ctx, e.admin, app2.ID)
	if f1.Failures+f2.Failures != 1 {
		t.Fatalf("a wrong app code counts once: %d and %d failures", f1.Failures, f2.Failures)
	}
	u, left, err := signIn("SEED-tina", codes[0])
	if err != nil || u.ID != tina.UserID || left != 9 {
		t.Fatalf("app sign-in: %v, %d codes left, %v", u.Username, left, err)
	}
	if _, _, err := signIn("SEED-tina", codes[0]); !errors.Is(err, core.ErrUnauthenticated) {
		t.Fatalf("the same recovery code twice: %v", err)
	}
	if got, _ := e.svc.GetUser(ctx, e.admin, "tina"); got.RecoveryFailures != 1 {
		t.Fatalf("a used code counts towards the recovery lock: %d", got.RecoveryFailures)
	}
	e.people.GiveKey(tina.UserID)
	if _, _, err := signIn("SEED-tina", codes[1]); !errors.Is(err, core.ErrUnauthenticated) {
		t.Fatalf("a person with a key signing in with the app: %v", err)
	}
	if n, _ := e.svc.RecoveryCodesRemaining(ctx, tina.UserID); n != 9 {
		t.Fatalf("a refused sign-in used a code: %d left", n)
	}
	var why []string
	recs, _ := e.svc.ListAudit(ctx, e.admin, core.AuditFilter{Action: "user.app_sign_in_refused"}, 10)
	for _, r := range recs {
		ev, _ := r.Event()
		why = append(why, ev.Extra["refused"])
	}
	want := []string{"the policy does not allow app sign-in with recovery_code", "wrong or used recovery code", "they hold a security key"}
	if !slices.Equal(why, want) {
		t.Fatalf("refusals in the trail: %q, want %q", why, want)
	}
	if _, _, err := e.svc.AppSignIn(ctx, tina, core.AppSignInRequest{}); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("a user calling AppSignIn: %v", err)
	}
}

const appSignInPolicy = "version: 1\nself_service:\n  app_sign_in: [recovery_code]\nrules: []\n"
