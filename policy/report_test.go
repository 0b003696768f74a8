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
	// Adoption counts factors the policy accepts: dan's stale app is not.
	want := policy.Counts{Users: 5, WithFactor: 2, Compliant: 2, Grace: 1, NonCompliant: 2, Exempt: 1,
		Adoption: 0.4, StaleFactors: 1, VulnerableFactors: 1}
	if c.Counts != want {
		t.Errorf("counts\n%+v\nwant\n%+v", c.Counts, want)
	}
	sales := policy.Counts{Users: 3, WithFactor: 0, Compliant: 1, Grace: 1, NonCompliant: 1, Exempt: 1, Adoption: 0, StaleFactors: 1}
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

func TestAdoptionCountsOnlyFactorsThePolicyAccepts(t *testing.T) {
	d := doc(t, "version: 1\nrules:\n- name: eng\n\tmatch: {groups: [engineering]}\n\trequire: {allowed_kinds: [piv, fido2], enroll_within: 30d}\n")
	subjects := []policy.Subject{
		// An engineer whose only factor is an app the rule refuses has not
		// adopted MFA as the policy means it.
		{User: person("eve", []string{"engineering"}, nil), Factors: []policy.Factor{totp("e1")}},
		// Where no rule restricts kinds, the same app counts.
		{User: person("sam", []string{"sales"}, nil), Factors: []policy.Factor{totp("s1")}},
	}
	c := policy.Report(d, subjects, now)
	if c.ByGroup["engineering"].WithFactor != 0 || c.ByGroup["engineering"].Adoption != 0 {
		t.Errorf("engineering: %+v, want no adoption", c.ByGroup["engineering"])
	}
	if c.ByGroup["sales"].WithFactor != 1 || c.Counts.WithFactor != 1 {
		t.Errorf("sales %+v, overall %+v: the app counts where kinds are not restricted", c.ByGroup["sales"], c.Counts)
	}
	if c.KindsInUse["totp"] != 2 {
		t.Errorf("kinds in use count every active factor: %v", c.KindsInUse)
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
