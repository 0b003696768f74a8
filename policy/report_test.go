package policy_test

import (
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/attest/attesttest"
	"github.com/keyfleet/keyfleet/policy"
)

func TestReportAggregatesDecisions(t *testing.T) {
	d := doc(t, "version: 1\nrules:\n- name: everyone\n\tmatch: {everyone: true}\n\trequire: {enroll_within: 30d, max_inactivity: 90d}\n")
	stale := totp("s")
	stale.LastUsedAt = ago(120)
	long := map[string]time.Time{"everyone": *ago(60), policy.BuiltinPrivileged: *ago(60)}
	subjects := []policy.Subject{
		{User: alice, Factors: []policy.Factor{totp("a1")}, FirstApplied: long}, // compliant
		{User: bob, Factors: nil}, // grace (new)
		{User: person("dan", []string{"sales"}, nil), Factors: []policy.Factor{stale}, FirstApplied: long},                                           // non-compliant, stale
		{User: carol, Factors: []policy.Factor{pivKey(t, "c1", attesttest.PIVOptions{Firmware: fwEUCLEAK})}, FirstApplied: long},                     // privileged short, vulnerable
		{User: person("erin", []string{"sales"}, nil), Exemptions: []policy.Exemption{{UserID: "u-erin", Reason: "leave", Until: now.Add(days(3))}}}, // exempt
	}
	c := policy.Report(d, subjects, now)
	want := policy.Counts{Users: 5, WithFactor: 3, Compliant: 2, Grace: 1, NonCompliant: 2, Exempt: 1,
		Adoption: 0.6, StaleFactors: 1, VulnerableFactors: 1}
	if c.Counts != want {
		t.Errorf("counts\n%+v\nwant\n%+v", c.Counts, want)
	}
	sales := policy.Counts{Users: 3, WithFactor: 1, Compliant: 1, Grace: 1, NonCompliant: 1, Exempt: 1, Adoption: 1.0 / 3, StaleFactors: 1}
	if c.ByGroup["sales"] != sales {
		t.Errorf("sales\n%+v\nwant\n%+v", c.ByGroup["sales"], sales)
	}
	if c.ByGroup["engineering"].Users != 2 || c.ByRole["admin"].NonCompliant != 1 {
		t.Errorf("by group %+v, by role %+v", c.ByGroup, c.ByRole)
	}
	if c.PrivilegedShort != 1 || c.KindsInUse["totp"] != 2 || c.KindsInUse["piv"] != 1 {
		t.Errorf("privileged short %d, kinds %v", c.PrivilegedShort, c.KindsInUse)
	}
}

func TestTalliesMerge(t *testing.T) {
	d := doc(t, "version: 1\nrules:\n- name: everyone\n\tmatch: {everyone: true}\n")
	var a, b, all policy.Tally
	for i, u := range []policy.User{alice, bob, carol} {
		fs := []policy.Factor{totp("f")}
		dec := policy.Evaluate(d, u, fs, nil, nil, now)
		all.Add(u, fs, dec)
		if i%2 == 0 {
			a.Add(u, fs, dec)
		} else {
			b.Add(u, fs, dec)
		}
	}
	a.Merge(&b)
	if got, want := a.Compliance(), all.Compliance(); got.Counts != want.Counts || got.ByGroup["engineering"] != want.ByGroup["engineering"] {
		t.Fatalf("merged %+v, want %+v", got, want)
	}
}

func TestAnEmptyReportHasNoAdoption(t *testing.T) {
	if c := policy.Report(nil, nil, now); c.Users != 0 || c.Adoption != 0 {
		t.Fatalf("%+v", c)
	}
}
