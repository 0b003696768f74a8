package core_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/attest"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/core/coretest"
	"github.com/keyfleet/keyfleet/daemon/seal"
	"github.com/keyfleet/keyfleet/daemon/store"
	"github.com/keyfleet/keyfleet/plugins/sdk"
	"github.com/keyfleet/keyfleet/policy"
)

const minimalPolicy = "version: 1\nrules:\n  - name: everyone\n    match: {everyone: true}\n"

// strictPolicy: everyone needs one factor within 30 days; engineers sign
// in with hardware keys only, on current firmware.
const strictPolicy = `version: 1
rules:
  - name: everyone
    match: {everyone: true}
    require:
      min_factors: 1
      enroll_within: 30d
  - name: engineering
    match: {groups: [eng]}
    require:
      min_factors: 1
      allowed_kinds: [hwkey, test]
      verification_kinds: [hwkey]
      min_firmware: {"YubiKey 5": 5.7.0}
      enroll_within: 14d
`

// stricterPolicy adds a second factor for engineers.
var stricterPolicy = strings.Replace(strictPolicy, "      min_factors: 1\n      allowed_kinds", "      min_factors: 2\n      allowed_kinds", 1)

// hwKind is the test kind under another name, as hardware, storing PIV
// evidence whose firmware is the enrolment's serial ("5.4.3").
type hwKind struct{ coretest.Kind }

func (hwKind) Describe(context.Context) (sdk.Info, error) {
	return sdk.Info{Kind: "hwkey", DisplayName: "Hardware test key", Hardware: true}, nil
}

func (k hwKind) FinishEnrol(ctx context.Context, req sdk.FinishEnrolRequest) (sdk.FinishEnrolResponse, error) {
	out, err := k.Kind.FinishEnrol(ctx, req)
	if err != nil || out.Device == nil {
		return out, err
	}
	ev := attest.Evidence{Format: "piv", Vendor: "Yubico", Model: "YubiKey 5", Serial: 7, Firmware: out.Device.Serial,
		KeyAlgorithm: "EC-P256", PINPolicy: "once", TouchPolicy: "always", AttestationType: attest.AttestationBasic}
	out.Evidence, _ = json.Marshal(ev)
	out.Device.Serial = "sn-" + req.EnrolmentID
	return out, nil
}

// newPolicyEnv is newEnv with the hardware kind too.
func newPolicyEnv(t *testing.T) *env {
	t.Helper()
	st, err := store.Open(store.Options{InMemory: true, EncryptionKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return policyEnvOn(t, st)
}

func policyEnvOn(tb testing.TB, st *store.Store) *env {
	tb.Helper()
	sl, _ := seal.New(make([]byte, 32))
	c := &clock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	svc, err := core.New(core.Config{Store: st, Sealer: sl, Kinds: []sdk.Factor{coretest.Kind{}, hwKind{}, coretest.Key{}}, Now: c.Now})
	if err != nil {
		tb.Fatal(err)
	}
	e := &env{t: tb, svc: svc, st: st, clock: c, people: coretest.NewPeople(tb, svc)}
	e.admin = e.principal(core.System, "root", api.RoleAdmin)
	e.admin2 = e.principal(e.admin, "second", api.RoleSecurityOfficer)
	e.help = e.keyless("desk", api.RoleHelpdesk) // its compliance is under test
	return e
}

// rollbackProof is the admin with a proof for rolling back to version n.
func (e *env) rollbackProof(n int) core.Principal {
	return e.people.Prove(e.admin, "policy.apply", "", api.PolicyRollback{Version: n})
}

func (e *env) applyPolicy(p core.Principal, doc string) core.PolicyOutcome {
	e.t.Helper()
	in := api.PolicyDocument{Document: doc, Comment: "test"}
	out, err := e.svc.ApplyPolicy(context.Background(), e.people.Prove(p, "policy.apply", "", in), in)
	if err != nil {
		e.t.Fatalf("applying policy: %v", err)
	}
	return out
}

// enrolKind enrols a factor of a kind; firmware goes in as the serial.
func (e *env) enrolKind(user, kind, firmware string) (core.Factor, error) {
	ctx := context.Background()
	en, _, err := e.svc.CreateEnrolment(ctx, e.admin, api.CreateEnrolment{User: user, Kind: kind})
	if err != nil {
		e.t.Fatal(err)
	}
	payload := coretest.EnrolPayload(en.Challenge, "SEED-"+user, firmware)
	return e.svc.CompleteEnrolment(ctx, e.admin, en.ID, api.CompleteEnrolment{Label: kind, Payload: payload})
}

func (e *env) person(name string, groups ...string) core.User {
	e.t.Helper()
	u, _, err := e.svc.CreateUser(context.Background(), e.admin, api.CreateUser{Username: name, Groups: groups})
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

func TestApplyingAPolicyKeepsEveryVersion(t *testing.T) {
	e := newPolicyEnv(t)
	ctx := context.Background()
	if v, err := e.svc.CurrentPolicy(ctx, e.help); err != nil || v.Version != 0 {
		t.Fatalf("a new store has policy %d, %v; want none", v.Version, err)
	}
	first := e.applyPolicy(e.admin, strictPolicy)
	second := e.applyPolicy(e.admin, stricterPolicy)
	if first.Version == nil || first.Version.Version != 1 || second.Version == nil || second.Version.Version != 2 {
		t.Fatalf("versions %+v %+v, want 1 and 2 applied at once", first, second)
	}
	vs, _, err := e.svc.ListPolicyVersions(ctx, e.help, core.PageReq{})
	if err != nil || len(vs) != 2 || vs[0].Document != strictPolicy || vs[1].AppliedBy.ID != e.admin.UserID {
		t.Fatalf("history = %+v, %v", vs, err)
	}
	if _, err := e.svc.ApplyPolicy(ctx, e.admin, api.PolicyDocument{Document: stricterPolicy}); !errors.Is(err, core.ErrAlreadyExists) {
		t.Fatalf("applying the current document again gave %v", err)
	}
	recs, _ := e.svc.ListAudit(ctx, e.admin, core.AuditFilter{TargetID: "policy", Action: "policy.apply"}, 10)
	if len(recs) != 2 {
		t.Fatalf("%d policy.apply events, want 2", len(recs))
	}
	ev, _ := recs[1].Event()
	if ev.After["version"] != float64(2) || ev.After["sha256"] != second.Version.SHA256 || !strings.Contains(ev.Extra["changes"], "stricter") {
		t.Fatalf("policy.apply event = %+v", ev)
	}
	if strings.Contains(string(recs[1].Body), "engineering") && strings.Contains(string(recs[1].Body), "enroll_within: 14d") {
		t.Fatal("the audit event holds the whole document")
	}
	d, err := e.svc.DiffPolicy(ctx, e.help, -1, 0)
	if err != nil || d.From != 1 || d.To != 2 || d.Weakens || len(d.Changes) != 1 {
		t.Fatalf("diff = %+v, %v", d, err)
	}
	e.verifyChain()
}

func TestABadDocumentIsRefusedWithLineNumbersAndChangesNothing(t *testing.T) {
	e := newPolicyEnv(t)
	head := e.st.AuditHead()
	bad := "version: 1\nrules:\n  - name: everyone\n    match: {everyone: true}\n    require:\n      min_factors: 0\n"
	_, err := e.svc.ApplyPolicy(context.Background(), e.admin, api.PolicyDocument{Document: bad})
	var pe *policy.ParseError
	if !errors.Is(err, core.ErrInvalid) || !errors.As(err, &pe) || pe.Problems[0].Line != 6 {
		t.Fatalf("got %v, want ErrInvalid with a problem on line 6", err)
	}
	if e.st.AuditHead() != head {
		t.Fatal("a refused document changed the store")
	}
	for _, p := range []core.Principal{e.help, e.principal(e.admin, "aud", api.RoleAuditor)} {
		if _, err := e.svc.ApplyPolicy(context.Background(), p, api.PolicyDocument{Document: minimalPolicy}); !errors.Is(err, core.ErrForbidden) {
			t.Fatalf("%s applying a policy gave %v", p.Username, err)
		}
	}
}

func TestWeakeningThePolicyNeedsASecondApprover(t *testing.T) {
	e := newPolicyEnv(t)
	ctx := context.Background()
	e.applyPolicy(e.admin, stricterPolicy)
	out := e.applyPolicy(e.admin, strictPolicy)
	if out.Approval == nil || out.Version != nil {
		t.Fatalf("a weakening change applied at once: %+v", out)
	}
	a := *out.Approval
	if a.Action != api.ActionPolicyApply || a.Params["weaker_changes"] != "1" || a.Params["base_version"] != "1" {
		t.Fatalf("approval = %+v", a)
	}
	if v, _ := e.svc.CurrentPolicy(ctx, e.admin); v.Version != 1 {
		t.Fatalf("policy is at version %d before approval", v.Version)
	}
	if _, err := e.svc.Approve(ctx, e.admin, a.ID, "checked"); !errors.Is(err, core.ErrSelfApproval) {
		t.Fatalf("the requester approving gave %v", err)
	}
	if _, err := e.svc.Approve(ctx, e.help, a.ID, "checked"); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("helpdesk approving gave %v", err)
	}
	if got, err := e.people.Approve(e.admin2, a.ID, "ok"); err != nil || got.State != api.ApprovalApproved {
		t.Fatalf("approve = %+v, %v", got, err)
	}
	v, _ := e.svc.CurrentPolicy(ctx, e.admin)
	if v.Version != 2 || v.Document != strictPolicy || v.ApprovalID != a.ID || v.ApprovedBy.ID != e.admin2.UserID || v.AppliedBy.ID != e.admin.UserID {
		t.Fatalf("after approval the policy is %+v", v)
	}
	e.verifyChain()
}

func TestAnApprovalForAnOutdatedPolicyFails(t *testing.T) {
	e := newPolicyEnv(t)
	ctx := context.Background()
	e.applyPolicy(e.admin, stricterPolicy)
	a := e.applyPolicy(e.admin, strictPolicy).Approval
	e.applyPolicy(e.admin2, stricterPolicy+"  - name: extra\n    match: {groups: [ops]}\n")
	got, err := e.approve(e.admin2, a.ID)
	if !errors.Is(err, core.ErrIllegalTransition) || got.State != api.ApprovalFailed {
		t.Fatalf("approving a request made against version 1 at version 2 gave %+v, %v", got, err)
	}
	if v, _ := e.svc.CurrentPolicy(ctx, e.admin); v.Version != 2 {
		t.Fatalf("policy moved to %d", v.Version)
	}
}

func TestRollbackMakesANewVersionUnderTheSameRule(t *testing.T) {
	e := newPolicyEnv(t)
	ctx := context.Background()
	e.applyPolicy(e.admin, strictPolicy)
	e.applyPolicy(e.admin, stricterPolicy)
	out, err := e.svc.RollbackPolicy(ctx, e.rollbackProof(1), api.PolicyRollback{Version: 1, Comment: "too strict"})
	if err != nil || out.Approval == nil || out.Approval.Params["rollback_of"] != "1" {
		t.Fatalf("rolling back to a weaker version gave %+v, %v", out, err)
	}
	if _, err := e.approve(e.admin2, out.Approval.ID); err != nil {
		t.Fatal(err)
	}
	v, _ := e.svc.CurrentPolicy(ctx, e.admin)
	if v.Version != 3 || v.RollbackOf != 1 || v.Document != strictPolicy {
		t.Fatalf("after rollback: %+v", v)
	}
	out, err = e.svc.RollbackPolicy(ctx, e.rollbackProof(2), api.PolicyRollback{Version: 2})
	if err != nil || out.Version == nil || out.Version.Version != 4 {
		t.Fatalf("rolling back to a stricter version gave %+v, %v", out, err)
	}
	if _, err := e.svc.RollbackPolicy(ctx, e.admin, api.PolicyRollback{Version: 9}); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("rolling back to an unknown version gave %v", err)
	}
}

func TestADryRunSaysWhoChangesAndChangesNothing(t *testing.T) {
	e := newPolicyEnv(t)
	ctx := context.Background()
	e.person("ann", "eng")
	e.person("ben")
	if _, err := e.enrolKind("ben", "test", ""); err != nil {
		t.Fatal(err)
	}
	head := e.st.AuditHead()
	dr, err := e.svc.DryRunPolicy(ctx, e.admin, api.PolicyDocument{Document: strictPolicy})
	if err != nil {
		t.Fatal(err)
	}
	if e.st.AuditHead() != head {
		t.Fatal("a dry run wrote to the store")
	}
	// ann and desk are newly in grace; ben has a factor; the admins stay
	// in grace under the built-in rule.
	if dr.BaseVersion != 0 || dr.Weakens || dr.Users != 5 || dr.Changed != 2 || dr.Transitions["compliant->grace"] != 2 || dr.After.Grace != 4 {
		t.Fatalf("dry run = %+v", dr)
	}
	i := slices.IndexFunc(dr.ChangedUsers, func(c api.PolicyUserChange) bool { return c.Username == "ann" })
	if i < 0 {
		t.Fatalf("ann is not among %+v", dr.ChangedUsers)
	}
	c := dr.ChangedUsers[i]
	if c.To != "grace" || c.Deadline == nil || !c.Deadline.Equal(e.clock.Now().Add(14*24*time.Hour)) || len(c.Reasons) == 0 {
		t.Fatalf("changed user = %+v", c)
	}
	err = e.st.View(ctx, func(tx core.ReadTx) error {
		u, _ := tx.UserByName("ann")
		m, err := tx.FirstApplied(u.ID)
		if len(m) != 0 {
			t.Errorf("a dry run persisted first-applied times %v", m)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestMFAStatusAnswersFromThePolicyAndStartsDeadlinesOnce(t *testing.T) {
	e := newPolicyEnv(t)
	ctx := context.Background()
	e.person("cid", "eng")
	e.applyPolicy(e.admin, strictPolicy)
	start := e.clock.Now()
	st, err := e.svc.MFAStatus(ctx, e.help, "cid")
	if err != nil || st.Status != "grace" || !st.MustEnrol || st.GraceUntil == nil || !st.GraceUntil.Equal(start.Add(14*24*time.Hour)) {
		t.Fatalf("status = %+v, %v", st, err)
	}
	// In grace cid may still sign in with any kind; the next steps say
	// until when.
	if !slices.Contains(st.AllowedKinds, "test") || st.PolicyVersion != 1 || len(st.ReasonDetails) == 0 || len(st.NextSteps) != 2 {
		t.Fatalf("status = %+v", st)
	}
	e.clock.Add(15 * 24 * time.Hour)
	st, _ = e.svc.MFAStatus(ctx, e.help, "cid")
	if st.Status != "non_compliant" || !st.Deadline.Equal(start.Add(14*24*time.Hour)) || !slices.Equal(st.AllowedKinds, []string{"hwkey"}) {
		t.Fatalf("after the deadline: %+v (the deadline must not restart)", st)
	}
	if _, err := e.enrolKind("cid", "hwkey", "5.7.4"); err != nil {
		t.Fatal(err)
	}
	if st, _ = e.svc.MFAStatus(ctx, e.help, "cid"); st.Status != "compliant" || st.MustEnrol || len(st.ActiveFactors) != 1 {
		t.Fatalf("after enrolling: %+v", st)
	}
	u, _ := e.svc.GetUser(ctx, e.admin, "cid")
	recs, _ := e.svc.ListAudit(ctx, e.admin, core.AuditFilter{TargetID: u.ID, Action: "policy.rules_applied"}, 10)
	if len(recs) != 1 {
		t.Fatalf("%d policy.rules_applied events for cid, want 1 (the re-evaluation after apply)", len(recs))
	}
}

func TestEnrolmentRefusesAKeyThatFailsARequirement(t *testing.T) {
	e := newPolicyEnv(t)
	e.person("dora", "eng")
	e.applyPolicy(e.admin, strings.Replace(strictPolicy, "allowed_kinds: [hwkey, test]", "allowed_kinds: [hwkey]", 1))
	tests := []struct {
		name, kind, firmware, code string
	}{
		{"a key on old firmware is refused", "hwkey", "5.4.3", policy.CodeFirmwareTooOld},
		{"a kind the policy does not allow is refused", "test", "", policy.CodeKindNotAllowed},
		{"a current key is accepted", "hwkey", "5.7.4", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _, _ := e.svc.ListFactors(context.Background(), e.admin, core.FactorFilter{UserID: "dora"}, core.PageReq{})
			f, err := e.enrolKind("dora", tt.kind, tt.firmware)
			if tt.code == "" {
				if err != nil || f.State != api.FactorActive {
					t.Fatalf("enrol = %+v, %v", f, err)
				}
				return
			}
			var re *policy.RequirementError
			if !errors.Is(err, core.ErrPolicyViolation) || !errors.As(err, &re) || re.Reasons[0].Code != tt.code {
				t.Fatalf("got %v, want a policy violation %s", err, tt.code)
			}
			after, _, _ := e.svc.ListFactors(context.Background(), e.admin, core.FactorFilter{UserID: "dora"}, core.PageReq{})
			if len(after) != len(before) {
				t.Fatal("a refused enrolment stored a factor")
			}
		})
	}
}

func TestVerificationRefusesAKindTheRoleMayNotUse(t *testing.T) {
	e := newPolicyEnv(t)
	ctx := context.Background()
	app := e.principal(e.admin, "app", api.RoleAdmin)
	e.person("eve", "eng")
	e.person("fred", "ops")
	soft, _ := e.enrolKind("eve", "test", "")
	fredSoft, _ := e.enrolKind("fred", "test", "")
	e.applyPolicy(e.admin, strictPolicy)
	// For the rule's 14 days eve still signs in with what she has, as her
	// MFA status says (with until when).
	if st, _ := e.svc.MFAStatus(ctx, e.help, "eve"); !slices.Contains(st.AllowedKinds, "test") || len(st.NextSteps) != 1 {
		t.Fatalf("eve in grace: %+v", st)
	}
	v, err := e.svc.BeginVerify(ctx, app, api.BeginVerify{User: "eve"})
	if err != nil {
		t.Fatalf("eve in grace cannot begin a verification: %v", err)
	}
	if res, err := e.svc.FinishVerify(ctx, app, api.FinishVerify{ID: v.ID, FactorID: soft.ID, Response: answer("SEED-eve")}); err != nil || !res.OK {
		t.Fatalf("eve in grace verifying with her app: %+v, %v", res, err)
	}
	// From the deadline on, the rule's kinds apply at sign-in too.
	e.clock.Add(15 * 24 * time.Hour)
	if st, _ := e.svc.MFAStatus(ctx, e.help, "eve"); !slices.Equal(st.AllowedKinds, []string{"hwkey"}) || len(st.NextSteps) != 0 {
		t.Fatalf("eve after the deadline: %+v", st)
	}
	if _, err := e.svc.BeginVerify(ctx, app, api.BeginVerify{User: "eve"}); !errors.Is(err, core.ErrPolicyViolation) {
		t.Fatalf("beginning with only a refused kind gave %v", err)
	}
	// A rule that applies at once (no enroll_within) is checked again when
	// a verification begun before it finishes.
	v, err = e.svc.BeginVerify(ctx, app, api.BeginVerify{User: "fred"})
	if err != nil {
		t.Fatal(err)
	}
	e.applyPolicy(e.admin, strictPolicy+"  - name: ops\n    match: {groups: [ops]}\n    require: {verification_kinds: [hwkey]}\n")
	if _, err := e.svc.FinishVerify(ctx, app, api.FinishVerify{ID: v.ID, FactorID: fredSoft.ID, Response: answer("SEED-fred")}); !errors.Is(err, core.ErrPolicyViolation) {
		t.Fatalf("finishing with a kind the policy now refuses gave %v", err)
	}
	hw, err := e.enrolKind("eve", "hwkey", "5.7.4")
	if err != nil {
		t.Fatal(err)
	}
	v, err = e.svc.BeginVerify(ctx, app, api.BeginVerify{User: "eve"})
	if err != nil || len(v.Factors) != 1 || v.Factors[0].FactorID != hw.ID {
		t.Fatalf("begin offered %+v, %v; want only the hardware key", v.Factors, err)
	}
	if res, err := e.svc.FinishVerify(ctx, app, api.FinishVerify{ID: v.ID, FactorID: hw.ID, Response: answer("SEED-eve")}); err != nil || !res.OK {
		t.Fatalf("finish = %+v, %v", res, err)
	}
}

func TestTheLastActiveFactorGoesOnlyWithAPlannedReplacement(t *testing.T) {
	e := newPolicyEnv(t)
	ctx := context.Background()
	e.person("fay")
	only, _ := e.enrolKind("fay", "test", "")
	head := e.st.AuditHead()
	var re *policy.RemovalError
	if _, err := e.svc.RequestFactorRevoke(ctx, e.help, only.ID, ""); !errors.Is(err, core.ErrPolicyViolation) || !errors.As(err, &re) {
		t.Fatalf("revoking the last factor gave %v", err)
	}
	if e.st.AuditHead() != head {
		t.Fatal("the refused request changed the store")
	}
	a, err := e.svc.RequestFactorRemoval(ctx, e.help, only.ID, api.ActionFactorRevoke, "new key on its way", true)
	if err != nil || a.Params["replacement_planned"] != "true" {
		t.Fatalf("with a planned replacement: %+v, %v", a, err)
	}
	if _, err := e.approve(e.admin, a.ID); err != nil {
		t.Fatal(err)
	}
	// Two requests, each fine alone: the second approval finds the last one.
	x, _ := e.enrolKind("fay", "test", "")
	y, _ := e.enrolKind("fay", "test", "")
	ax, _ := e.svc.RequestFactorRevoke(ctx, e.help, x.ID, "")
	ay, _ := e.svc.RequestFactorRevoke(ctx, e.help, y.ID, "")
	if _, err := e.approve(e.admin, ax.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.approve(e.admin, ay.ID); !errors.Is(err, core.ErrPolicyViolation) {
		t.Fatalf("approving the removal of what became the last factor gave %v", err)
	}
	if got, _ := e.svc.GetFactor(ctx, e.admin, y.ID); got.State != api.FactorActive {
		t.Fatalf("the last factor is %s", got.State)
	}
}

func TestExemptionsNeedASecondApprover(t *testing.T) {
	e := newPolicyEnv(t)
	ctx := context.Background()
	e.person("gus")
	e.applyPolicy(e.admin, minimalPolicy)
	until := e.clock.Now().Add(30 * 24 * time.Hour)
	for name, in := range map[string]api.CreateExemption{
		"no reason":      {Until: until},
		"an end passed":  {Until: e.clock.Now().Add(-time.Hour), Reason: "x"},
		"over a year":    {Until: e.clock.Now().Add(400 * 24 * time.Hour), Reason: "x"},
		"no end at all":  {Reason: "x"},
		"a control char": {Until: until, Reason: "a\x00b"},
	} {
		if _, err := e.svc.RequestExemption(ctx, e.help, "gus", in); !errors.Is(err, core.ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
	a, err := e.svc.RequestExemption(ctx, e.help, "gus", api.CreateExemption{Until: until, Reason: "parental leave"})
	if err != nil || a.Action != api.ActionUserExempt {
		t.Fatalf("request = %+v, %v", a, err)
	}
	if st, _ := e.svc.MFAStatus(ctx, e.help, "gus"); st.Status != "non_compliant" {
		t.Fatalf("before approval gus is %s", st.Status)
	}
	if _, err := e.svc.Approve(ctx, e.help, a.ID, "checked"); !errors.Is(err, core.ErrSelfApproval) && !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("the requester approving gave %v", err)
	}
	if _, err := e.approve(e.admin2, a.ID); err != nil {
		t.Fatal(err)
	}
	st, _ := e.svc.MFAStatus(ctx, e.help, "gus")
	if st.Status != "compliant" || st.ExemptUntil == nil || !st.ExemptUntil.Equal(until) || !strings.Contains(st.Reasons[0], "parental leave") {
		t.Fatalf("after approval: %+v", st)
	}
	xs, err := e.svc.ListExemptions(ctx, e.help, "gus")
	if err != nil || len(xs) != 1 || xs[0].Reason != "parental leave" || !xs[0].Until.Equal(until) || xs[0].ApprovedBy == nil {
		t.Fatalf("gus's exemptions = %+v, %v", xs, err)
	}
	if _, err := e.svc.ListExemptions(ctx, e.principal(e.admin, "enr", api.RoleEnroller), "gus"); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("an enroller listing exemptions gave %v", err)
	}
	e.clock.Add(31 * 24 * time.Hour)
	if st, _ := e.svc.MFAStatus(ctx, e.help, "gus"); st.Status != "non_compliant" {
		t.Fatalf("after the exemption ended gus is %s", st.Status)
	}
}

func TestBulkReevaluationAndTheComplianceReport(t *testing.T) {
	e := newPolicyEnv(t)
	ctx := context.Background()
	for _, n := range []string{"h1", "h2", "h3"} {
		e.person(n, "eng")
	}
	e.person("i1", "sales")
	e.person("i2", "sales")
	e.enrolKind("h1", "hwkey", "5.7.4")
	e.enrolKind("h2", "hwkey", "5.4.3") // enrolled before the policy; too old now
	e.enrolKind("i1", "test", "")
	out := e.applyPolicy(e.admin, strictPolicy)
	// 8 users: root, second, desk and the five above.
	if r := out.Reevaluation; r.Users != 8 || r.Started != 8 || r.Error != "" {
		t.Fatalf("re-evaluation = %+v", r)
	}
	e.clock.Add(20 * 24 * time.Hour)
	rep, err := e.svc.ComplianceReport(ctx, e.keyless("aud", api.RoleAuditor), "", 14*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	eng := rep.ByGroup["eng"]
	// h2's key on old firmware does not count: only h1 has adopted a
	// factor the policy accepts.
	if rep.PolicyVersion != 1 || eng.Users != 3 || eng.Compliant != 1 || eng.NonCompliant != 2 || eng.WithFactor != 1 {
		t.Fatalf("eng = %+v", eng)
	}
	if sales := rep.ByGroup["sales"]; sales.Compliant != 1 || sales.Grace != 1 {
		t.Fatalf("sales = %+v", sales)
	}
	if near := usernames(rep.NearDeadline); !slices.Equal(near, []string{"desk", "i2"}) || rep.KindsInUse["hwkey"] != 2 {
		t.Fatalf("near deadline %v, kinds %v", near, rep.KindsInUse)
	}
	// The admins' 14 days under the built-in rule have passed too.
	if names := usernames(rep.NonCompliant); !slices.Equal(names, []string{"h2", "h3", "root", "second"}) || rep.PrivilegedShort != 2 {
		t.Fatalf("non-compliant %v, privileged short %d", names, rep.PrivilegedShort)
	}
	if rep.Overall.Users != 9 || rep.Overall.Compliant != 2 || rep.Overall.VulnerableFactors != 1 {
		t.Fatalf("overall = %+v", rep.Overall)
	}
	aud := core.Principal{UserID: "aud", Username: "aud", Roles: []string{api.RoleAuditor}}
	vuln, err := e.svc.FactorReport(ctx, aud, core.ReportVulnerable, "")
	if err != nil || len(vuln) != 1 || vuln[0].Username != "h2" || vuln[0].Firmware != "5.4.3" || vuln[0].Why == "" {
		t.Fatalf("vulnerable factors = %+v, %v", vuln, err)
	}
	if none, _ := e.svc.FactorReport(ctx, aud, core.ReportVulnerable, "sales"); len(none) != 0 {
		t.Fatalf("vulnerable factors in sales = %+v", none)
	}
	if _, err := e.svc.FactorReport(ctx, aud, "broken", ""); !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("an unknown report gave %v", err)
	}
	if _, err := e.svc.ComplianceReport(ctx, e.principal(e.admin, "enr", api.RoleEnroller), "", 0); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("an enroller reading the report gave %v", err)
	}
	e.verifyChain()
}

func usernames(us []api.ReportUser) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.Username)
	}
	slices.Sort(out)
	return out
}

func TestAPersonRemovesTheirOwnFactorAtOnceOnlyWhileStillCompliant(t *testing.T) {
	e := newPolicyEnv(t)
	ctx := context.Background()
	oli := e.person("oli", "sales")
	p := core.Principal{UserID: oli.ID, Username: "oli", Roles: []string{api.RoleUser}, Auth: "token"}
	// Removing one's own factor needs a fresh proof with another factor.
	proven := func(id string) core.Principal {
		return e.people.ProveWith(p, "factor.remove", id, nil, coretest.SecretAnswer("SEED-oli"))
	}
	e.applyPolicy(e.admin, strictPolicy) // everyone: one factor
	first, _ := e.enrolKind("oli", "test", "")
	second, _ := e.enrolKind("oli", "test", "")
	third, _ := e.enrolKind("oli", "test", "")
	// Three factors, one needed: the first goes at once.
	if f, a, err := e.svc.RemoveOwnFactor(ctx, proven(first.ID), first.ID, ""); err != nil || a.ID != "" || f.State != api.FactorRevoked {
		t.Fatalf("removing a spare factor: approval %+v, %v; want it revoked at once", a, err)
	}
	if f, _ := e.svc.GetFactor(ctx, e.admin, first.ID); f.State != api.FactorRevoked {
		t.Fatalf("the spare factor is %s", f.State)
	}
	// Someone else's factor is refused.
	e.person("pam")
	pams, _ := e.enrolKind("pam", "test", "")
	if _, _, err := e.svc.RemoveOwnFactor(ctx, proven(pams.ID), pams.ID, ""); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("removing another user's factor: %v", err)
	}
	// Make the policy need two: removing one of the two left would make
	// oli short, so it waits for an approval.
	e.applyPolicy(e.admin, strings.Replace(strictPolicy, "      min_factors: 1\n      enroll_within: 30d", "      min_factors: 2\n      enroll_within: 30d", 1))
	_, a, err := e.svc.RemoveOwnFactor(ctx, proven(second.ID), second.ID, "lost it")
	if err != nil || a.ID == "" || a.Action != api.ActionFactorRevoke || a.State != api.ApprovalPending {
		t.Fatalf("removing a needed factor: %+v, %v; want a pending revoke request", a, err)
	}
	if f, _ := e.svc.GetFactor(ctx, e.admin, second.ID); f.State != api.FactorActive {
		t.Fatalf("a needed factor went before approval: %s", f.State)
	}
	if _, err := e.approve(e.admin2, a.ID); err != nil {
		t.Fatal(err)
	}
	if f, _ := e.svc.GetFactor(ctx, e.admin, second.ID); f.State != api.FactorRevoked {
		t.Fatalf("after approval the factor is %s", f.State)
	}
	// The last one needs a replacement plan, which an administrator files.
	if _, _, err := e.svc.RemoveOwnFactor(ctx, proven(third.ID), third.ID, ""); !errors.Is(err, core.ErrPolicyViolation) {
		t.Fatalf("removing the last factor: %v", err)
	}
	e.verifyChain()
}
