package core_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/core/coretest"
)

// One admin tries to act alone. Each story below is one path an
// administrator holding their own token and key (root) might take to get a
// request of theirs approved without a second, independent person, or to
// weaken someone's MFA without one. Each ends with the request still
// pending (or never made), and where an attempt reached a decision the
// refusal is in the audit trail. The stories follow docs/security.md's
// threat model.

// aloneEnv has root (the would-be lone admin), so1 (an independent
// security officer), bob (a user with two factors) and root's pending
// request to disable bob.
type aloneEnv struct {
	*env
	so1     core.Principal
	bob     core.Principal
	request core.Approval
}

func newAloneEnv(t *testing.T) *aloneEnv {
	e := newEnv(t)
	ae := &aloneEnv{env: e, so1: e.principal(core.System, "so1", api.RoleSecurityOfficer)}
	ae.bob = e.principal(e.admin, "bob")
	e.enrolSelf(ae.bob)
	e.enrol("bob", "")
	var err error
	ae.request, err = e.svc.RequestUserAction(context.Background(), e.admin, "bob", api.ActionUserDisable, "leaving")
	if err != nil {
		t.Fatal(err)
	}
	return ae
}

// stillPending fails unless root's request is still waiting and bob is
// still active.
func (ae *aloneEnv) stillPending() {
	ae.t.Helper()
	a, err := ae.svc.GetApproval(context.Background(), ae.admin, ae.request.ID)
	if err != nil || a.State != api.ApprovalPending {
		ae.t.Fatalf("root's request is %s (%v); want it still pending", a.State, err)
	}
	u, _ := ae.svc.GetUser(context.Background(), ae.admin, "bob")
	if u.Status != api.UserActive {
		ae.t.Fatalf("bob is %s", u.Status)
	}
}

// refusals lists the audit records of refused decisions and tokens.
func (ae *aloneEnv) refusals() []string {
	ae.t.Helper()
	var out []string
	recs, _ := ae.svc.ListAudit(context.Background(), ae.admin, core.AuditFilter{}, 1000)
	for _, r := range recs {
		ev, _ := r.Event()
		if strings.HasSuffix(ev.Action, ".refused") {
			out = append(out, ev.Action+":"+ev.Extra["refused"])
		}
	}
	return out
}

func TestOneAdminCannotApproveOwnRequestThroughAPuppetAccount(t *testing.T) {
	ae := newAloneEnv(t)
	ctx := context.Background()
	// root makes "sock", a security officer: the user is made, the role
	// waits for someone else.
	sock, req, err := ae.svc.CreateUser(ctx, ae.admin, api.CreateUser{Username: "sock", Roles: []string{api.RoleSecurityOfficer}})
	if err != nil || req.State != api.ApprovalPending || req.Action != api.ActionUserAccess || !slices.Equal(sock.Roles, []string{api.RoleUser}) {
		t.Fatalf("creating an officer: %+v %+v %v; want a user and a pending grant", sock, req, err)
	}
	// root cannot approve the grant…
	if _, err := ae.people.Approve(ae.admin, req.ID, "it is me"); !errors.Is(err, core.ErrSelfApproval) {
		t.Fatalf("approving one's own grant: %v", err)
	}
	// …and sock, holding no role, cannot approve root's request even with
	// a key root gives it.
	ae.people.GiveKey(sock.ID)
	sockP := core.Principal{UserID: sock.ID, Username: "sock", Roles: sock.Roles, Auth: "token"}
	if _, err := ae.svc.Approve(ctx, sockP, ae.request.ID, "ok"); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("sock approving: %v", err)
	}
	// Say so1 is fooled into approving the grant: sock still may not
	// decide root's requests, because root made sock's account.
	if _, err := ae.approve(ae.so1, req.ID); err != nil {
		t.Fatal(err)
	}
	sockP.Roles = []string{api.RoleSecurityOfficer, api.RoleUser}
	if _, err := ae.people.Approve(sockP, ae.request.ID, "ok"); !errors.Is(err, core.ErrNotIndependent) {
		t.Fatalf("the puppet approving its maker's request: %v", err)
	}
	ae.stillPending()
	if r := ae.refusals(); !slices.Contains(r, "approval.refused:self-approval") || !slices.Contains(r, "approval.refused:not-independent") {
		t.Fatalf("refusals audited: %v", r)
	}
}

func TestOneAdminCannotMintATokenThatActsAsAnotherPerson(t *testing.T) {
	ae := newAloneEnv(t)
	ctx := context.Background()
	for _, who := range []string{"so1", "bob"} {
		_, _, err := ae.svc.CreateToken(ctx, ae.admin, api.CreateToken{User: who, Name: "borrowed"})
		if !errors.Is(err, core.ErrForbidden) {
			t.Fatalf("a token for %s: %v", who, err)
		}
	}
	// A token of root's own needs root's key.
	if _, _, err := ae.svc.CreateToken(ctx, ae.admin, api.CreateToken{Name: "mine"}); !errors.Is(err, core.ErrProofRequired) {
		t.Fatalf("root's own token without a proof: %v", err)
	}
	// A service account's token is fine, and the service role cannot
	// decide anything.
	ae.svc.CreateUser(ctx, ae.admin, api.CreateUser{Username: "ci", Kind: api.KindService})
	_, secret, err := ae.svc.CreateToken(ctx, ae.admin, api.CreateToken{User: "ci", Name: "deploy", TTL: "24h"})
	if err != nil {
		t.Fatal(err)
	}
	svcP, _ := ae.svc.Authenticate(ctx, secret)
	if _, err := ae.svc.Approve(ctx, svcP, ae.request.ID, "ok"); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("a service account approving: %v", err)
	}
	if _, _, err := ae.svc.UpdateUser(ctx, ae.admin, "ci", api.UpdateUser{Roles: &[]string{api.RoleSecurityOfficer}}); !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("a service account given an approver's role: %v", err)
	}
	ae.stillPending()
	if r := ae.refusals(); !slices.Contains(r, "token.refused:forbidden") {
		t.Fatalf("refusals audited: %v", r)
	}
}

// An application's service token verifies codes. Root tries to use one,
// or a login host made alone, to hand out the first-login pass that
// enrols a factor for a person who has none yet (whoever redeems it owns
// their MFA) or to write sign-ins into the trail.
func TestOneAdminCannotMintFirstLoginPassesThroughAServiceAccount(t *testing.T) {
	ae := newAloneEnv(t)
	ctx := context.Background()
	ae.applyPolicy(ae.admin, minimalPolicy)
	ae.person("newbie") // must enrol, no factor yet
	token := func(account string) core.Principal {
		t.Helper()
		_, secret, err := ae.svc.CreateToken(ctx, ae.admin, api.CreateToken{User: account, Name: "t", TTL: "24h"})
		if err != nil {
			t.Fatal(err)
		}
		p, err := ae.svc.Authenticate(ctx, secret)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	mintsNothing := func(who string, p core.Principal) {
		t.Helper()
		if _, err := ae.svc.IssueFirstLoginPass(ctx, p, "newbie", time.Hour); !errors.Is(err, core.ErrForbidden) {
			t.Fatalf("%s issuing newbie's first-login pass: %v", who, err)
		}
		if err := ae.svc.RecordLogin(ctx, p, core.LoginEvent{User: "newbie", Outcome: core.LoginAllowed, Reason: "grace"}); !errors.Is(err, core.ErrForbidden) {
			t.Fatalf("%s writing a sign-in record: %v", who, err)
		}
	}
	// A plain application's token, and root's own principal.
	if _, _, err := ae.svc.CreateUser(ctx, ae.admin, api.CreateUser{Username: "shop", Kind: api.KindService}); err != nil {
		t.Fatal(err)
	}
	mintsNothing("an application's token", token("shop"))
	mintsNothing("an administrator", ae.admin)
	// A login host root makes alone is a service account whose role waits
	// for a second person, and its token carries only the service role.
	host, req, err := ae.svc.CreateUser(ctx, ae.admin, api.CreateUser{Username: "pam-hosts", Kind: api.KindService, Roles: []string{api.RoleLoginHost}})
	if err != nil || req.State != api.ApprovalPending || !slices.Equal(host.Roles, []string{api.RoleService}) {
		t.Fatalf("making a login host: %+v %+v %v; want a service account and a pending grant", host, req, err)
	}
	if _, err := ae.people.Approve(ae.admin, req.ID, "mine"); !errors.Is(err, core.ErrSelfApproval) {
		t.Fatalf("root approving its own login host: %v", err)
	}
	mintsNothing("a login host waiting for approval", token("pam-hosts"))
	// The same for giving an application the role afterwards.
	if _, req, err := ae.svc.UpdateUser(ctx, ae.admin, "shop", api.UpdateUser{Roles: &[]string{api.RoleService, api.RoleLoginHost}}); err != nil || req.State != api.ApprovalPending {
		t.Fatalf("making an application a login host: %+v %v; want a pending grant", req, err)
	}
	mintsNothing("an application waiting to be a login host", token("shop"))
	// Once so1 approves, the login host's token does what it is for.
	if _, err := ae.approve(ae.so1, req.ID); err != nil {
		t.Fatal(err)
	}
	if pass, err := ae.svc.IssueFirstLoginPass(ctx, token("pam-hosts"), "newbie", time.Hour); err != nil || pass.Code == "" {
		t.Fatalf("an approved login host issuing newbie's first-login pass: %v", err)
	}
	// A person cannot hold the role.
	if _, _, err := ae.svc.CreateUser(ctx, ae.admin, api.CreateUser{Username: "mallory", Roles: []string{api.RoleLoginHost}}); !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("a person with the login_host role: %v", err)
	}
}

func TestAnApprovalIsAPersonWithAKeyNotAToken(t *testing.T) {
	ae := newAloneEnv(t)
	ctx := context.Background()
	// so1's token alone (stolen by root, say) does not approve.
	if _, err := ae.svc.Approve(ctx, ae.so1, ae.request.ID, "ok"); !errors.Is(err, core.ErrProofRequired) {
		t.Fatalf("approving with a token alone: %v", err)
	}
	// A proof so1 made for another action does not do.
	other := ae.people.Prove(ae.so1, "approval.deny", ae.request.ID, nil)
	if _, err := ae.svc.Approve(ctx, other, ae.request.ID, "ok"); !errors.Is(err, core.ErrProofRequired) {
		t.Fatalf("a deny proof used to approve: %v", err)
	}
	// root's own proof with so1's token does not do: the proof is root's.
	rootProof := ae.people.Prove(ae.admin, "approval.approve", ae.request.ID, nil)
	borrowed := ae.so1
	borrowed.Proof = rootProof.Proof
	if _, err := ae.svc.Approve(ctx, borrowed, ae.request.ID, "ok"); !errors.Is(err, core.ErrProofRequired) {
		t.Fatalf("root's proof with so1's token: %v", err)
	}
	// A proof is used once: a second use of a good one is refused.
	good := ae.people.Prove(ae.so1, "approval.approve", ae.request.ID, nil)
	if _, err := ae.svc.Deny(ctx, good, ae.request.ID, "wrong proof kind"); !errors.Is(err, core.ErrProofRequired) {
		t.Fatalf("an approve proof used to deny: %v", err)
	}
	// A wrong key answer counts towards lockout.
	wrong := ae.so1
	ch, _ := ae.svc.BeginProof(ctx, ae.so1, api.ProofRequest{Action: "approval.approve", Subject: ae.request.ID})
	wrong.Proof = &api.Proof{ID: ch.ID, FactorID: ch.Factors[0].FactorID, Response: coretest.KeyAnswer(ch.Factors[0].Prompt, "not-the-secret")}
	if _, err := ae.svc.Approve(ctx, wrong, ae.request.ID, "ok"); !errors.Is(err, core.ErrProofRequired) {
		t.Fatalf("a wrong answer: %v", err)
	}
	ae.stillPending()
	// The person with their key does approve, and the event names the key.
	if _, err := ae.approve(ae.so1, ae.request.ID); err != nil {
		t.Fatal(err)
	}
	recs, _ := ae.svc.ListAudit(ctx, ae.admin, core.AuditFilter{Action: "approval.approve"}, 10)
	ev, _ := recs[len(recs)-1].Event()
	if ev.Extra["proof_factor_id"] == "" || ev.Extra["proof_kind"] != "testkey" {
		t.Fatalf("the approval does not name the key that proved it: %v", ev.Extra)
	}
	if r := ae.refusals(); len(r) < 4 || !slices.Contains(r, "approval.refused:proof-required") {
		t.Fatalf("refusals audited: %v", r)
	}
}

func TestTheApproverIsADifferentPersonInFact(t *testing.T) {
	clauses := []struct {
		name   string
		handle func(ae *aloneEnv)
	}{
		{"not an account the requester recovered", func(ae *aloneEnv) {
			ctx := context.Background()
			c, err := ae.svc.OpenRecovery(ctx, ae.admin, api.OpenRecovery{User: "so1", Reason: "lost key"})
			if err != nil {
				ae.t.Fatal(err)
			}
			if _, err := ae.svc.CancelRecovery(ctx, ae.admin, c.ID, "found it"); err != nil {
				ae.t.Fatal(err)
			}
			// Opening a case is not recovering; issuing its pass is. Make
			// root issue one through an approved onboarding-like path:
			ae.handle("recovered")
		}},
		{"not an account the requester enrolled a factor for", func(ae *aloneEnv) {
			ctx := context.Background()
			en, _, err := ae.svc.CreateEnrolment(ctx, ae.admin, api.CreateEnrolment{User: "so1", Kind: "test"})
			if err != nil {
				ae.t.Fatal(err)
			}
			if en.Code() != "" {
				ae.t.Fatal("root got an enrolment code for so1's staff account")
			}
			f, err := ae.svc.CompleteEnrolment(ctx, ae.admin, en.ID, api.CompleteEnrolment{Payload: coretest.EnrolPayload(en.Challenge, "root-holds-this", "")})
			if err != nil {
				ae.t.Fatal(err)
			}
			if f.State != api.FactorPending {
				ae.t.Fatalf("a key root enrolled on so1's account is %s; want pending until so1 activates it", f.State)
			}
			if _, err := ae.svc.BeginActivation(ctx, ae.admin, f.ID); !errors.Is(err, core.ErrForbidden) {
				ae.t.Fatalf("root activating so1's key: %v", err)
			}
		}},
		{"not an account the requester asked a role for", func(ae *aloneEnv) {
			ctx := context.Background()
			_, req, err := ae.svc.UpdateUser(ctx, ae.admin, "so1", api.UpdateUser{Roles: &[]string{api.RoleSecurityOfficer, api.RoleHelpdesk}})
			if err != nil {
				ae.t.Fatal(err)
			}
			third := ae.principal(core.System, "third", api.RoleAdmin)
			if _, err := ae.approve(third, req.ID); err != nil {
				ae.t.Fatal(err)
			}
		}},
	}
	for _, c := range clauses {
		t.Run(c.name, func(t *testing.T) {
			ae := newAloneEnv(t)
			c.handle(ae)
			if _, err := ae.people.Approve(ae.so1, ae.request.ID, "ok"); !errors.Is(err, core.ErrNotIndependent) {
				t.Fatalf("so1 approving root's request: %v", err)
			}
			ae.stillPending()
			// After the independence window the two are independent again.
			ae.clock.Add(8 * 24 * time.Hour)
			fresh, err := ae.svc.RequestUserAction(context.Background(), ae.admin, "bob", api.ActionUserResetMFA, "again")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ae.approve(ae.so1, fresh.ID); err != nil {
				t.Fatalf("after the window: %v", err)
			}
		})
	}
}

// handle makes root "recover" so1 for the clause table: root issues so1 a
// pass through a confirmed case, approved by a third admin.
func (ae *aloneEnv) handle(string) {
	ctx := context.Background()
	third := ae.principal(core.System, "third", api.RoleAdmin)
	rc, _ := ae.svc.RegenerateRecoveryCodes(ctx, ae.people.Prove(ae.so1, "recovery_codes.regenerate", "", nil), "")
	c, err := ae.svc.OpenRecovery(ctx, third, api.OpenRecovery{User: "so1", Reason: "lost key"})
	if err != nil {
		ae.t.Fatal(err)
	}
	if _, err := ae.svc.ConfirmWithRecoveryCode(ctx, third, c.ID, rc[0]); err != nil {
		ae.t.Fatal(err)
	}
	_, req, err := ae.svc.IssuePass(ctx, ae.people.Prove(third, "pass.issue", c.ID, api.IssuePass{}), c.ID, api.IssuePass{})
	if err != nil {
		ae.t.Fatal(err)
	}
	// root approves and is shown the pass: root now "issued a pass to" so1.
	if a, err := ae.approve(ae.admin, req.ID); err != nil || a.API(ae.clock.Now()).IssuedPass == nil {
		ae.t.Fatal(a, err)
	}
}

func TestAdminsCannotShrinkTheApproversOrTakeUsersOutOfStricterRulesAlone(t *testing.T) {
	e := newPolicyEnv(t)
	ctx := context.Background()
	// root (admin) and second (security officer) are the only approvers.
	e.applyPolicy(e.admin, `version: 1
rules:
  - name: finance-keys
    match:
      groups: [finance]
    require:
      allowed_kinds: [hwkey]
`)
	fin := e.person("fin", "finance")
	// Demoting the other approver would leave one: it waits.
	u, req, err := e.svc.UpdateUser(ctx, e.admin, "second", api.UpdateUser{Roles: &[]string{api.RoleUser}})
	if err != nil || req.State != api.ApprovalPending || !slices.Contains(u.Roles, api.RoleSecurityOfficer) {
		t.Fatalf("demoting the other approver: %+v %+v %v", u, req, err)
	}
	// Taking fin out of finance drops a rule: it waits.
	u, req2, err := e.svc.UpdateUser(ctx, e.admin, "fin", api.UpdateUser{Groups: &[]string{}})
	if err != nil || req2.State != api.ApprovalPending || !slices.Equal(u.Groups, []string{"finance"}) {
		t.Fatalf("taking fin out of finance: %+v %+v %v", u, req2, err)
	}
	if _, err := e.people.Approve(e.admin, req2.ID, "me"); !errors.Is(err, core.ErrSelfApproval) {
		t.Fatalf("root approving it: %v", err)
	}
	// Adding a group only adds requirements: at once.
	if u, req3, err := e.svc.UpdateUser(ctx, e.admin, "fin", api.UpdateUser{Groups: &[]string{"finance", "ops"}}); err != nil || req3.ID != "" || !slices.Contains(u.Groups, "ops") {
		t.Fatalf("adding a group: %+v %+v %v", u, req3, err)
	}
	// With a third approver, removing a role that no rule names is at
	// once, and a high-severity event.
	e.principal(core.System, "third", api.RoleSecurityOfficer)
	e.keyless("helper", api.RoleHelpdesk)
	if u, req4, err := e.svc.UpdateUser(ctx, e.admin, "helper", api.UpdateUser{Roles: &[]string{api.RoleUser}}); err != nil || req4.ID != "" || slices.Contains(u.Roles, api.RoleHelpdesk) {
		t.Fatalf("removing a helpdesk role: %+v %+v %v", u, req4, err)
	}
	recs, _ := e.svc.ListAudit(ctx, e.admin, core.AuditFilter{Action: "user.update"}, 50)
	ev, _ := recs[len(recs)-1].Event()
	if ev.Extra["privilege"] != "true" {
		t.Fatalf("a role removal is not marked as a change of privilege: %+v", ev)
	}
	_ = fin
}

func TestPolicyWeakeningExemptionAndRollbackStayTwoPerson(t *testing.T) {
	e := newPolicyEnv(t)
	ctx := context.Background()
	e.applyPolicy(e.admin, strictPolicy)
	e.applyPolicy(e.admin, stricterPolicy)
	// Rolling back to the weaker version is a request, not a change.
	out, err := e.svc.RollbackPolicy(ctx, e.rollbackProof(1), api.PolicyRollback{Version: 1})
	if err != nil || out.Approval == nil || out.Version != nil {
		t.Fatalf("rollback: %+v %v", out, err)
	}
	if _, err := e.people.Approve(e.admin, out.Approval.ID, "me"); !errors.Is(err, core.ErrSelfApproval) {
		t.Fatalf("approving one's own rollback: %v", err)
	}
	// Without a proof, applying anything is refused.
	if _, err := e.svc.ApplyPolicy(ctx, e.admin, api.PolicyDocument{Document: strictPolicy}); !errors.Is(err, core.ErrProofRequired) {
		t.Fatalf("applying without a proof: %v", err)
	}
	// An exemption is a request too.
	e.person("exa")
	x, err := e.svc.RequestExemption(ctx, e.admin, "exa", api.CreateExemption{Until: e.clock.Now().Add(24 * time.Hour), Reason: "travel"})
	if err != nil || x.State != api.ApprovalPending {
		t.Fatalf("exemption: %+v %v", x, err)
	}
	if _, err := e.people.Approve(e.admin, x.ID, "me"); !errors.Is(err, core.ErrSelfApproval) {
		t.Fatalf("approving one's own exemption: %v", err)
	}
}

// Each keyless way into the self-service pages (an app's code, then also
// a push) lets people without a key in: turning one on waits for a second
// person, and the proposer cannot be that person.
func TestKeylessSignInWaysStayTwoPerson(t *testing.T) {
	e := newPolicyEnv(t)
	ctx := context.Background()
	for _, doc := range []string{appSignInPolicy, "version: 1\nself_service:\n  app_sign_in: [recovery_code]\n  push_sign_in: [recovery_code]\nrules: []\n"} {
		in := api.PolicyDocument{Document: doc, Comment: "keyless sign-in"}
		out, err := e.svc.ApplyPolicy(ctx, e.people.Prove(e.admin, "policy.apply", "", in), in)
		if err != nil || out.Approval == nil || out.Version != nil {
			t.Fatalf("turning on %q: %+v %v; want a request", doc, out, err)
		}
		if _, err := e.people.Approve(e.admin, out.Approval.ID, "me"); !errors.Is(err, core.ErrSelfApproval) {
			t.Fatalf("approving one's own keyless sign-in: %v", err)
		}
		if checks, _ := e.svc.PushSignInChecks(ctx); len(checks) != 0 {
			t.Fatalf("push sign-in is on (%v) with its request pending", checks)
		}
		if _, err := e.approve(e.admin2, out.Approval.ID); err != nil {
			t.Fatalf("the second approver: %v", err)
		}
	}
	if checks, _ := e.svc.PushSignInChecks(ctx); !slices.Equal(checks, []string{"recovery_code"}) {
		t.Fatalf("after the second person approved, push sign-in takes %v", checks)
	}
}

func TestBreakGlassRotationNeverPutsAQuorumInOneHand(t *testing.T) {
	ae := newAloneEnv(t)
	ctx := context.Background()
	if _, _, err := ae.svc.InitBreakGlass(ctx, 3, 2); err != nil {
		t.Fatal(err)
	}
	rot := api.BreakGlassRotate{Holders: []string{"root", "so1", "bob"}, Threshold: 2}
	if _, err := ae.svc.RotateBreakGlass(ctx, ae.admin, rot); !errors.Is(err, core.ErrProofRequired) {
		t.Fatalf("rotating without a proof: %v", err)
	}
	req, err := ae.svc.RotateBreakGlass(ctx, ae.people.Prove(ae.admin, "breakglass.rotate", "", rot), rot)
	if err != nil || req.State != api.ApprovalPending {
		t.Fatalf("rotating: %+v %v", req, err)
	}
	if _, err := ae.people.Approve(ae.admin, req.ID, "me"); !errors.Is(err, core.ErrSelfApproval) {
		t.Fatalf("approving one's own rotation: %v", err)
	}
	// so1 is not an admin; a second admin approves.
	second := ae.principal(core.System, "second-admin", api.RoleAdmin)
	if _, err := ae.approve(second, req.ID); err != nil {
		t.Fatal(err)
	}
	// root collects root's share and nobody else's.
	sh, err := ae.svc.CollectBreakGlassShare(ctx, ae.people.Prove(ae.admin, "breakglass.share", "", nil))
	if err != nil || sh.Share == "" {
		t.Fatal(sh, err)
	}
	if _, err := ae.svc.CollectBreakGlassShare(ctx, ae.people.Prove(ae.admin, "breakglass.share", "", nil)); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("root collecting a second share: %v", err)
	}
	if _, err := ae.svc.UseBreakGlass(ctx, api.BreakGlassUse{Shares: []string{sh.Share}, Reason: "alone"}); !errors.Is(err, core.ErrUnauthenticated) {
		t.Fatalf("one share opened a session: %v", err)
	}
	st, _ := ae.svc.BreakGlassStatus(ctx, ae.admin)
	if !slices.Equal(st.Uncollected, []string{"so1", "bob"}) {
		t.Fatalf("uncollected shares: %v", st.Uncollected)
	}
}

func TestOneAdminCannotRecoverAStaffAccountIntoTheirOwnHands(t *testing.T) {
	ae := newAloneEnv(t)
	ctx := context.Background()
	codes, err := ae.svc.RegenerateRecoveryCodes(ctx, ae.people.Prove(ae.so1, "recovery_codes.regenerate", "", nil), "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ae.svc.OpenRecovery(ctx, ae.admin, api.OpenRecovery{User: "so1", Reason: "says they lost their key"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ae.svc.ConfirmWithRecoveryCode(ctx, ae.admin, c.ID, codes[0]); err != nil {
		t.Fatal(err)
	}
	// No pass comes back to root: a request for a second officer.
	pass, req, err := ae.svc.IssuePass(ctx, ae.people.Prove(ae.admin, "pass.issue", c.ID, api.IssuePass{}), c.ID, api.IssuePass{})
	if err != nil || pass.Code != "" || req.Action != api.ActionRecoveryPass {
		t.Fatalf("issuing a staff pass: %+v %+v %v", pass, req, err)
	}
	if _, err := ae.people.Approve(ae.admin, req.ID, "me"); !errors.Is(err, core.ErrSelfApproval) {
		t.Fatalf("root approving: %v", err)
	}
	// Nor an onboarding pass for a new staff account root makes.
	_, grant, _ := ae.svc.CreateUser(ctx, ae.admin, api.CreateUser{Username: "new-admin", Roles: []string{api.RoleAdmin}})
	third := ae.principal(core.System, "third", api.RoleAdmin)
	if _, err := ae.approve(third, grant.ID); err != nil {
		t.Fatal(err)
	}
	nu, _ := ae.svc.GetUser(ctx, ae.admin, "new-admin")
	op, oreq, err := ae.svc.IssueOnboardingPass(ctx, ae.people.Prove(ae.admin, "pass.issue", nu.ID, api.IssuePass{}), "new-admin", api.IssuePass{})
	if err != nil || op.Code != "" || oreq.State != api.ApprovalPending {
		t.Fatalf("an onboarding pass for a new admin: %+v %+v %v", op, oreq, err)
	}
}

func TestSensitiveSelfServiceNeedsAFreshProof(t *testing.T) {
	ae := newAloneEnv(t)
	ctx := context.Background()
	bobs, _, _ := ae.svc.ListFactors(ctx, ae.admin, core.FactorFilter{UserID: ae.bob.UserID}, core.PageReq{})
	steps := []struct {
		name string
		do   func() error
	}{
		{"adding a factor to an account that has one", func() error {
			_, _, err := ae.svc.CreateEnrolment(ctx, ae.bob, api.CreateEnrolment{User: "bob", Kind: "test"})
			return err
		}},
		{"removing a factor", func() error {
			_, _, err := ae.svc.RemoveOwnFactor(ctx, ae.bob, bobs[0].ID, "")
			return err
		}},
		{"regenerating recovery codes", func() error {
			_, err := ae.svc.RegenerateRecoveryCodes(ctx, ae.bob, "")
			return err
		}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if err := s.do(); !errors.Is(err, core.ErrProofRequired) {
				t.Fatalf("with a token alone: %v", err)
			}
		})
	}
	// bob has only "test" factors (an authenticator app, say): a proof
	// with one of them does.
	p := ae.people.ProveWith(ae.bob, "recovery_codes.regenerate", "", nil, coretest.SecretAnswer("SEED-bob"))
	if codes, err := ae.svc.RegenerateRecoveryCodes(ctx, p, ""); err != nil || len(codes) != 10 {
		t.Fatalf("with a proof: %d codes, %v", len(codes), err)
	}
}

func TestSecretsGoOnlyToTheirHolder(t *testing.T) {
	ae := newAloneEnv(t)
	ctx := context.Background()
	enr := ae.principal(core.System, "desk-enroller", api.RoleEnroller)
	// An enroller completing a staff member's first enrolment at the desk
	// gets no recovery codes.
	staff := ae.keyless("newso", api.RoleSecurityOfficer)
	en, _, err := ae.svc.CreateEnrolment(ctx, enr, api.CreateEnrolment{User: "newso", Kind: "test"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := ae.svc.CompleteEnrolment(ctx, enr, en.ID, api.CompleteEnrolment{Payload: coretest.EnrolPayload(en.Challenge, "s", "")})
	if err != nil || len(f.RecoveryCodes) != 0 {
		t.Fatalf("the enroller got %d recovery codes (%v)", len(f.RecoveryCodes), err)
	}
	// The holder completing their own first enrolment does.
	own := ae.principal(ae.admin, "carla")
	mine := ae.enrolSelf(own)
	if len(mine.RecoveryCodes) != 10 {
		t.Fatalf("carla got %d codes", len(mine.RecoveryCodes))
	}
	// What an enrolment shows its holder (a TOTP seed) is not shown to
	// the helpdesk that made it for carla, only to carla herself…
	hd := ae.keyless("hd", api.RoleHelpdesk)
	en2, shown, err := ae.svc.CreateEnrolment(ctx, hd, api.CreateEnrolment{User: "carla", Kind: "test"})
	if err != nil || len(shown) != 0 {
		t.Fatalf("the helpdesk was shown %v (%v)", shown, err)
	}
	if got, _ := ae.svc.GetEnrolment(ctx, hd, en2.ID); ae.svc.UserDisplay(got) != nil {
		t.Fatal("the helpdesk reads the seed back")
	}
	if got, _ := ae.svc.GetEnrolment(ctx, own, en2.ID); ae.svc.UserDisplay(got)["secret_uri"] == "" {
		t.Fatal("carla cannot read her own seed")
	}
	// …or to whoever redeems carla's enrolment code.
	en3, shown3, _ := ae.svc.CreateEnrolment(ctx, enr, api.CreateEnrolment{User: "carla", Kind: "test"})
	if len(shown3) != 0 || en3.Code() == "" {
		t.Fatalf("the enroller was shown %v; code %q", shown3, en3.Code())
	}
	red, err := ae.svc.RedeemEnrolmentCode(ctx, en3.Code())
	if err != nil || red.Enrolment.Display["secret_uri"] == "" {
		t.Fatalf("the code's redeemer was not shown the seed: %+v %v", red.Enrolment.Display, err)
	}
	// Her own enrolment shows it to her at once.
	p := ae.people.ProveWith(own, "factor.add", own.UserID, api.CreateEnrolment{User: "carla", Kind: "test"}, coretest.SecretAnswer("SEED-carla"))
	if _, shown4, err := ae.svc.CreateEnrolment(ctx, p, api.CreateEnrolment{User: "carla", Kind: "test"}); err != nil || shown4["secret_uri"] == "" {
		t.Fatalf("carla's own enrolment: %v %v", shown4, err)
	}
	_ = staff
}

func TestOneAdminCannotRevokeSomeonesKeysAndReEnrolThemAlone(t *testing.T) {
	ae := newAloneEnv(t)
	ctx := context.Background()
	ae.principal(ae.admin, "cleo")
	f := ae.enrol("cleo", "SN-CLEO")
	// root marks cleo's only key lost (allowed at once: it only takes
	// access away)…
	if _, _, err := ae.svc.MarkDeviceLost(ctx, ae.admin, f.DeviceID, "says it was stolen"); err != nil {
		t.Fatal(err)
	}
	// …but cannot then hand themselves a first-key pass for cleo: a user
	// who ever had a factor proves who they are through a recovery case.
	if _, _, err := ae.svc.IssueOnboardingPass(ctx, ae.admin, "cleo", api.IssuePass{}); !errors.Is(err, core.ErrIllegalTransition) {
		t.Fatalf("an onboarding pass for a user whose keys root revoked: %v", err)
	}
}

func TestTheTokenlessSignInTellsNoNamesApart(t *testing.T) {
	ae := newAloneEnv(t)
	ctx := context.Background()
	ae.keyless("nokey", api.RoleUser)
	locked := ae.principal(core.System, "lockedout", api.RoleSecurityOfficer)
	ae.svc.UpdateUser(ctx, core.System, "lockedout", api.UpdateUser{})
	for range 5 { // five wrong answers lock the user
		ch, err := ae.svc.BeginLogin(ctx, api.LoginBegin{Username: "lockedout"})
		if err != nil {
			t.Fatal(err)
		}
		ae.svc.Login(ctx, api.LoginBegin{Username: "lockedout"}, &api.Proof{ID: ch.ID, FactorID: ch.Factors[0].FactorID, Response: coretest.KeyAnswer(ch.Factors[0].Prompt, "wrong")})
	}
	var answers []string
	for _, name := range []string{"nobody-at-all", "nokey", "lockedout"} {
		_, err := ae.svc.BeginLogin(ctx, api.LoginBegin{Username: name})
		answers = append(answers, fmt.Sprint(err))
	}
	if answers[0] != answers[1] || answers[1] != answers[2] || answers[0] == "<nil>" {
		t.Fatalf("begin answers differ by name: %q", answers)
	}
	_, _, e1 := ae.svc.Login(ctx, api.LoginBegin{Username: "nobody-at-all"}, &api.Proof{ID: "ver_x", FactorID: "fac_x"})
	_, _, e2 := ae.svc.Login(ctx, api.LoginBegin{Username: "so1"}, &api.Proof{ID: "ver_x", FactorID: "fac_x"})
	if fmt.Sprint(e1) != fmt.Sprint(e2) || !errors.Is(e1, core.ErrProofRequired) {
		t.Fatalf("finish answers differ by name: %v / %v", e1, e2)
	}
	_ = locked
}
