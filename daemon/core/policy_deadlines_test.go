package core_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

func TestAPassedDeadlineIsAuditedOncePerDeadline(t *testing.T) {
	e := newPolicyEnv(t)
	ctx := context.Background()
	cid, dee := e.person("cid", "eng"), e.person("dee", "eng")
	e.applyPolicy(e.admin, strictPolicy)
	start := e.clock.Now()
	events := func(u core.User) []string {
		recs, err := e.svc.ListAudit(ctx, e.admin, core.AuditFilter{TargetID: u.ID, Action: "policy.deadline_passed"}, 10)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range recs {
			out = append(out, string(r.Body))
		}
		return out
	}
	if n, err := e.svc.SweepDeadlines(ctx); err != nil || n != 0 {
		t.Fatalf("a sweep in the grace period recorded %d (%v), want 0", n, err)
	}
	if _, err := e.enrolKind("dee", "hwkey", "5.7.4"); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(15 * 24 * time.Hour)
	n, err := e.svc.SweepDeadlines(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// cid, and the admins whose built-in 14 days passed too; not dee.
	if n != 3 || len(events(cid)) != 1 || len(events(dee)) != 0 {
		t.Fatalf("the first sweep after the deadline recorded %d, cid %d events, dee %d", n, len(events(cid)), len(events(dee)))
	}
	body := events(cid)[0]
	for _, want := range []string{`"deadline":"` + start.Add(14*24*time.Hour).Format(time.RFC3339), "engineering", "reasons"} {
		if !strings.Contains(body, want) {
			t.Errorf("the event lacks %s: %s", want, body)
		}
	}
	if n, _ := e.svc.SweepDeadlines(ctx); n != 0 || len(events(cid)) != 1 {
		t.Fatalf("a second sweep recorded %d more; a deadline is audited once", n)
	}
	// The marker does not disturb the policy: cid is still non-compliant
	// from the same deadline, and enrolling makes them compliant.
	st, _ := e.svc.MFAStatus(ctx, e.help, "cid")
	if st.Status != "non_compliant" || !st.Deadline.Equal(start.Add(14*24*time.Hour)) {
		t.Fatalf("status after the sweep = %+v", st)
	}
	if _, err := e.enrolKind("cid", "hwkey", "5.7.4"); err != nil {
		t.Fatal(err)
	}
	if st, _ = e.svc.MFAStatus(ctx, e.help, "cid"); st.Status != "compliant" {
		t.Fatalf("after enrolling: %+v", st)
	}
	if n, _ := e.svc.SweepDeadlines(ctx); n != 0 {
		t.Fatalf("a sweep after cid enrolled recorded %d", n)
	}
	e.verifyChain()
}

func TestAVerificationStartsTheDeadlinesOfRulesThatNewlyApply(t *testing.T) {
	e := newPolicyEnv(t)
	ctx := context.Background()
	app := e.principal(e.admin, "app", api.RoleAdmin)
	kim := e.person("kim")
	if _, err := e.enrolKind("kim", "hwkey", "5.7.4"); err != nil {
		t.Fatal(err)
	}
	e.applyPolicy(e.admin, strictPolicy)
	rulesApplied := func() []string {
		recs, _ := e.svc.ListAudit(ctx, e.admin, core.AuditFilter{TargetID: kim.ID, Action: "policy.rules_applied"}, 10)
		var out []string
		for _, r := range recs {
			out = append(out, string(r.Body))
		}
		return out
	}
	verify := func() {
		t.Helper()
		v, err := e.svc.BeginVerify(ctx, app, api.BeginVerify{User: "kim"})
		if err != nil {
			t.Fatal(err)
		}
		if res, err := e.svc.FinishVerify(ctx, app, api.FinishVerify{ID: v.ID, FactorID: v.Factors[0].FactorID, Response: answer("SEED-kim")}); err != nil || !res.OK {
			t.Fatalf("finish = %+v, %v", res, err)
		}
	}
	verify()
	verify()
	if got := rulesApplied(); len(got) != 1 || strings.Contains(got[0], "engineering") {
		t.Fatalf("before kim joins eng: %d rules_applied events %v", len(got), got)
	}
	eng := []string{"eng"}
	if _, _, err := e.svc.UpdateUser(ctx, e.admin, "kim", api.UpdateUser{Groups: &eng}); err != nil {
		t.Fatal(err)
	}
	verify()
	got := rulesApplied()
	if len(got) != 2 || !strings.Contains(got[1], "engineering") {
		t.Fatalf("after kim joined eng, a verification did not start the engineering rule: %v", got)
	}
}

func TestTheComplianceSweepReportsAndAuditsPassedDeadlinesInOnePass(t *testing.T) {
	e := newPolicyEnv(t)
	ctx := context.Background()
	e.person("cid", "eng")
	e.applyPolicy(e.admin, strictPolicy)
	e.clock.Add(15 * 24 * time.Hour)
	rep, n, err := e.svc.ComplianceSweep(ctx, 14*24*time.Hour)
	if err != nil || n != 3 || rep.Overall.Users == 0 || len(rep.NonCompliant) != 3 {
		t.Fatalf("sweep: %d recorded, report %+v, %v; want cid and the two admins", n, rep.Overall, err)
	}
	if _, n, _ := e.svc.ComplianceSweep(ctx, 14*24*time.Hour); n != 0 {
		t.Fatalf("a second sweep recorded %d", n)
	}
	if n, _ := e.svc.SweepDeadlines(ctx); n != 0 {
		t.Fatalf("SweepDeadlines after the compliance sweep recorded %d", n)
	}
}
