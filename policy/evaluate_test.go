package policy_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/attest"
	"github.com/keyfleet/keyfleet/attest/attesttest"
	"github.com/keyfleet/keyfleet/policy"
)

// oneRule is a document whose single rule applies to every person.
func oneRule(tb testing.TB, require string) *policy.Document {
	return doc(tb, "version: 1\nrules:\n- name: all\n\tmatch: {everyone: true}\n\trequire: {"+require+"}\n")
}

func TestEachRequirement(t *testing.T) {
	pivEC := func(fw [3]byte) policy.Factor { return pivKey(t, "k1", attesttest.PIVOptions{Firmware: fw}) }
	pending := totp("f1")
	pending.State = "pending"
	suspended := totp("f1")
	suspended.State = "suspended"
	unusedLong := totp("f1")
	unusedLong.LastUsedAt = ago(100)
	neverUsed := totp("f1")
	neverUsed.LastUsedAt, neverUsed.ActivatedAt = nil, ago(10)
	strongTOTP := totp("f1")
	strongTOTP.Params = map[string]string{"algorithm": "SHA256", "digits": "8", "period": "60"}
	acme := fido2Key("k1", aaguidYK5, true)
	acme.Evidence.Vendor = "Acme"
	tests := []struct {
		name    string
		require string
		factors []policy.Factor
		want    policy.Status
		codes   []string // reasons that must be present
	}{
		{"a user without factors is non-compliant at once when the rule gives no time", "", nil, policy.StatusNonCompliant, []string{policy.CodeTooFewFactors}},
		{"one active TOTP meets min_factors 1", "", []policy.Factor{totp("f1")}, policy.StatusCompliant, nil},
		{"a pending factor does not count", "", []policy.Factor{pending}, policy.StatusNonCompliant, []string{policy.CodeTooFewFactors}},
		{"a suspended factor does not count", "", []policy.Factor{suspended}, policy.StatusNonCompliant, []string{policy.CodeTooFewFactors}},
		{"min_factors 2 is not met by one factor", "min_factors: 2", []policy.Factor{totp("f1")}, policy.StatusNonCompliant, []string{policy.CodeTooFewFactors}},
		{"min_factors 2 is met by two factors", "min_factors: 2", []policy.Factor{totp("f1"), totp("f2")}, policy.StatusCompliant, nil},
		{"min_hardware_factors is not met by TOTP", "min_hardware_factors: 1", []policy.Factor{totp("f1")}, policy.StatusNonCompliant, []string{policy.CodeTooFewHardware}},
		{"min_hardware_factors is met by a PIV key", "min_hardware_factors: 1", []policy.Factor{pivEC(fwCurrent)}, policy.StatusCompliant, nil},
		{"a kind outside allowed_kinds does not count", "allowed_kinds: [piv, fido2]", []policy.Factor{totp("f1")}, policy.StatusNonCompliant, []string{policy.CodeKindNotAllowed, policy.CodeTooFewFactors}},
		{"a kind inside allowed_kinds counts", "allowed_kinds: [piv, fido2]", []policy.Factor{pivEC(fwCurrent)}, policy.StatusCompliant, nil},
		{"attestation_required refuses self attestation", "attestation_required: true", []policy.Factor{fido2Key("k1", aaguidYK5, false)}, policy.StatusNonCompliant, []string{policy.CodeAttestationMissing}},
		{"attestation_required refuses TOTP", "attestation_required: true", []policy.Factor{totp("f1")}, policy.StatusNonCompliant, []string{policy.CodeAttestationMissing}},
		{"attestation_required accepts an attested key", "attestation_required: true", []policy.Factor{fido2Key("k1", aaguidYK5, true)}, policy.StatusCompliant, nil},
		{"allowed_vendors accepts an attested Yubico key", "allowed_vendors: [Yubico]", []policy.Factor{pivEC(fwCurrent)}, policy.StatusCompliant, nil},
		{"allowed_vendors refuses another maker", "allowed_vendors: [Yubico]", []policy.Factor{acme}, policy.StatusNonCompliant, []string{policy.CodeVendorNotAllowed}},
		{"allowed_vendors refuses a key that does not prove its maker", "allowed_vendors: [Yubico]", []policy.Factor{fido2Key("k1", aaguidYK5, false)}, policy.StatusNonCompliant, []string{policy.CodeVendorNotAllowed}},
		{"allowed_vendors leaves TOTP alone", "allowed_vendors: [Yubico]", []policy.Factor{totp("f1")}, policy.StatusCompliant, nil},
		{"an attested AAGUID on the allow list counts", "aaguids: {allow: [" + aaguidYK5 + "]}", []policy.Factor{fido2Key("k1", aaguidYK5, true)}, policy.StatusCompliant, nil},
		{"an attested AAGUID off the allow list does not count", "aaguids: {allow: [" + aaguidYK5 + "]}", []policy.Factor{fido2Key("k1", aaguidOther, true)}, policy.StatusNonCompliant, []string{policy.CodeAAGUIDNotAllowed}},
		{"an unattested AAGUID cannot pass the allow list even when it claims a listed model", "aaguids: {allow: [" + aaguidYK5 + "]}", []policy.Factor{fido2Key("k1", aaguidYK5, false)}, policy.StatusNonCompliant, []string{policy.CodeAAGUIDUnattested}},
		{"an attested AAGUID on the deny list does not count", "aaguids: {deny: [" + aaguidOther + "]}", []policy.Factor{fido2Key("k1", aaguidOther, true)}, policy.StatusNonCompliant, []string{policy.CodeAAGUIDDenied}},
		{"a claimed AAGUID on the deny list does not count", "aaguids: {deny: [" + aaguidOther + "]}", []policy.Factor{fido2Key("k1", aaguidOther, false)}, policy.StatusNonCompliant, []string{policy.CodeAAGUIDDenied}},
		{"an unattested AAGUID cannot prove it is off the deny list", "aaguids: {deny: [" + aaguidOther + "]}", []policy.Factor{fido2Key("k1", aaguidYK5, false)}, policy.StatusNonCompliant, []string{policy.CodeAAGUIDUnattested}},
		{"an attested AAGUID off the deny list counts", "aaguids: {deny: [" + aaguidOther + "]}", []policy.Factor{fido2Key("k1", aaguidYK5, true)}, policy.StatusCompliant, nil},
		{"firmware below min_firmware of its model line does not count", `min_firmware: {"YubiKey 5": 5.7.0}`, []policy.Factor{pivEC(fwEUCLEAK)}, policy.StatusNonCompliant, []string{policy.CodeFirmwareTooOld}},
		{"firmware at or above min_firmware counts", `min_firmware: {"YubiKey 5": 5.7.0}`, []policy.Factor{pivEC(fwCurrent)}, policy.StatusCompliant, nil},
		{"min_firmware of another model line does not apply", `min_firmware: {"YubiKey 5": 5.7.0}`, []policy.Factor{pivEC([3]byte{4, 3, 5})}, policy.StatusCompliant, nil},
		{"a blocked advisory stops a key counting", "block_advisories: [YSA-2024-03]", []policy.Factor{pivEC(fwEUCLEAK)}, policy.StatusNonCompliant, []string{policy.CodeAdvisoryBlocked}},
		{"a blocked advisory leaves unaffected keys alone", "block_advisories: [YSA-2024-03]", []policy.Factor{pivEC(fwCurrent)}, policy.StatusCompliant, nil},
		{"ROCA blocks an on-device RSA key on affected firmware", "block_advisories: [YSA-2017-01]",
			[]policy.Factor{pivKey(t, "k1", attesttest.PIVOptions{Firmware: fwROCA, KeyAlgorithm: "RSA-2048"})}, policy.StatusNonCompliant, []string{policy.CodeAdvisoryBlocked}},
		{"ROCA leaves an EC key on the same firmware alone", "block_advisories: [YSA-2017-01]", []policy.Factor{pivEC(fwROCA)}, policy.StatusCompliant, nil},
		{"an advisory the policy does not block is reported but counts", "", []policy.Factor{pivEC(fwEUCLEAK)}, policy.StatusCompliant, []string{policy.CodeAdvisory}},
		{"a PIN policy outside pin_policies does not count", "piv: {pin_policies: [always]}", []policy.Factor{pivEC(fwCurrent)}, policy.StatusNonCompliant, []string{policy.CodePINPolicy}},
		{"a PIN policy inside pin_policies counts", "piv: {pin_policies: [always]}", []policy.Factor{pivKey(t, "k1", attesttest.PIVOptions{PINPolicy: 3})}, policy.StatusCompliant, nil},
		{"a touch policy outside touch_policies does not count", "piv: {touch_policies: [always, cached]}", []policy.Factor{pivEC(fwCurrent)}, policy.StatusNonCompliant, []string{policy.CodeTouchPolicy}},
		{"a touch policy inside touch_policies counts", "piv: {touch_policies: [always, cached]}", []policy.Factor{pivKey(t, "k1", attesttest.PIVOptions{TouchPolicy: 3})}, policy.StatusCompliant, nil},
		{"a PIV key without evidence cannot prove its PIN policy", "piv: {pin_policies: [once]}", []policy.Factor{active("k1", "piv", true, nil)}, policy.StatusNonCompliant, []string{policy.CodePINPolicy}},
		{"PIV policies leave FIDO2 keys alone", "piv: {pin_policies: [always]}", []policy.Factor{fido2Key("k1", aaguidYK5, true)}, policy.StatusCompliant, nil},
		{"a TOTP factor of an algorithm outside totp.algorithms does not count", "totp: {algorithms: [SHA256]}", []policy.Factor{totp("f1")}, policy.StatusNonCompliant, []string{policy.CodeTOTPParameters}},
		{"a TOTP factor with the algorithm, digits and period the policy asks counts", "totp: {algorithms: [SHA256, SHA512], digits: [8], periods: [30, 60]}", []policy.Factor{strongTOTP}, policy.StatusCompliant, nil},
		{"a TOTP factor with six digits does not meet digits 8", "totp: {digits: [8]}", []policy.Factor{totp("f1")}, policy.StatusNonCompliant, []string{policy.CodeTOTPParameters}},
		{"TOTP parameters leave PIV keys alone", "totp: {algorithms: [SHA512]}", []policy.Factor{pivEC(fwCurrent)}, policy.StatusCompliant, nil},
		{"fips_required refuses a non-FIPS key", "fips_required: true", []policy.Factor{pivEC(fwCurrent)}, policy.StatusNonCompliant, []string{policy.CodeFIPSRequired}},
		{"fips_required accepts a FIPS key", "fips_required: true", []policy.Factor{pivKey(t, "k1", attesttest.PIVOptions{FIPS: true})}, policy.StatusCompliant, nil},
		{"fips_required refuses TOTP", "fips_required: true", []policy.Factor{totp("f1")}, policy.StatusNonCompliant, []string{policy.CodeFIPSRequired}},
		{"a factor unused longer than max_inactivity is stale and does not count", "max_inactivity: 90d", []policy.Factor{unusedLong}, policy.StatusNonCompliant, []string{policy.CodeStale, policy.CodeTooFewFactors}},
		{"a factor never used counts from its activation", "max_inactivity: 90d", []policy.Factor{neverUsed}, policy.StatusCompliant, nil},
		{"without max_inactivity nothing is stale", "", []policy.Factor{unusedLong}, policy.StatusCompliant, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := evaluate(oneRule(t, tt.require), alice, tt.factors...)
			if d.Status != tt.want {
				t.Errorf("status = %s, want %s; reasons: %v", d.Status, tt.want, d.Reasons)
			}
			for _, c := range tt.codes {
				if !d.HasReason(c) {
					t.Errorf("no %s reason in %v", c, codes(d.Reasons))
				}
			}
			if (d.Status != policy.StatusCompliant) != d.MustEnrol {
				t.Errorf("MustEnrol = %v with status %s", d.MustEnrol, d.Status)
			}
			for _, r := range d.Reasons {
				if r.Message == "" || strings.Contains(r.Message, "%!") {
					t.Errorf("reason %s has a bad message %q", r.Code, r.Message)
				}
			}
		})
	}
}

func TestStaleAndVulnerableFactorsAreListed(t *testing.T) {
	old := pivKey(t, "old", attesttest.PIVOptions{Firmware: fwEUCLEAK})
	stale := totp("stale")
	stale.LastUsedAt = ago(200)
	revoked := pivKey(t, "revoked", attesttest.PIVOptions{Firmware: fwEUCLEAK})
	revoked.State = policy.FactorRevoked
	d := evaluate(oneRule(t, "max_inactivity: 180d"), alice, old, stale, revoked, totp("fresh"))
	if !slices.Equal(d.Stale, []string{"stale"}) {
		t.Errorf("Stale = %v, want [stale]", d.Stale)
	}
	if !slices.Equal(d.Vulnerable, []string{"old"}) {
		t.Errorf("Vulnerable = %v, want [old] (revoked factors are not listed)", d.Vulnerable)
	}
	if d.Counted != 2 {
		t.Errorf("Counted = %d, want 2 (the vulnerable key is not blocked)", d.Counted)
	}
}

// Evidence stored before an advisory was in attest's table is matched
// again at evaluation: the advisory list recorded at enrolment is not
// the only source.
func TestAdvisoriesAreMatchedAgainstStoredEvidence(t *testing.T) {
	k := pivKey(t, "k1", attesttest.PIVOptions{Firmware: fwEUCLEAK})
	k.Evidence.Advisories = nil // as if enrolled before YSA-2024-03 was known
	d := evaluate(oneRule(t, "block_advisories: [YSA-2024-03]"), alice, k)
	if !d.HasReason(policy.CodeAdvisoryBlocked) || !slices.Equal(d.Vulnerable, []string{"k1"}) {
		t.Fatalf("a key with stale evidence escaped the advisory: %v", d.Reasons)
	}
}

func TestBioKeysUseTheirOwnEUCLEAKThreshold(t *testing.T) {
	bio := pivKey(t, "bio", attesttest.PIVOptions{Firmware: [3]byte{5, 7, 1}, FormFactor: 0x07})
	if d := evaluate(oneRule(t, "block_advisories: [YSA-2024-03]"), alice, bio); !d.HasReason(policy.CodeAdvisoryBlocked) {
		t.Fatalf("a YubiKey Bio on 5.7.1 is affected by YSA-2024-03: %v", d.Reasons)
	}
}

func TestNoRuleMeansMFAIsNotRequired(t *testing.T) {
	d := evaluate(doc(t, "version: 1\nrules:\n- name: eng\n\tmatch: {groups: [engineering]}\n"), bob)
	if d.Status != policy.StatusCompliant || !d.HasReason(policy.CodeNotRequired) || d.MustEnrol || d.Rules != nil {
		t.Fatalf("decision = %+v", d)
	}
}

func TestServiceAccountsAreMatchedOnlyWhenARuleSaysSo(t *testing.T) {
	svc := policy.User{ID: "u-ci", Username: "ci", Kind: "service", Roles: []string{"service"}}
	if d := evaluate(oneRule(t, ""), svc); !d.HasReason(policy.CodeNotRequired) {
		t.Errorf("everyone matched a service account: %v", d.Reasons)
	}
	d := evaluate(doc(t, "version: 1\nrules:\n- name: svc\n\tmatch: {everyone: true, user_kinds: [service]}\n"), svc)
	if d.Status != policy.StatusNonCompliant {
		t.Errorf("user_kinds: [service] did not match: %v", d.Reasons)
	}
}

func TestMatchByGroupOrRole(t *testing.T) {
	d := doc(t, "version: 1\nrules:\n- name: r\n\tmatch: {groups: [sales], roles: [helpdesk]}\n")
	tests := []struct {
		name string
		u    policy.User
		want bool
	}{
		{"a member of a listed group is matched", bob, true},
		{"a holder of a listed role is matched", person("hd", nil, []string{"helpdesk"}), true},
		{"anyone else is not", alice, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := slices.Contains(evaluate(d, tt.u).Rules, "r")
			if got != tt.want {
				t.Errorf("matched = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDeadlinesAndGrace(t *testing.T) {
	d := oneRule(t, "enroll_within: 30d")
	tests := []struct {
		name      string
		applied   *time.Time
		want      policy.Status
		wantUntil time.Time
	}{
		{"a rule applying for the first time starts its clock now", nil, policy.StatusGrace, now.Add(days(30))},
		{"a rule applied 10 days ago leaves 20 days of grace", ago(10), policy.StatusGrace, now.Add(days(20))},
		{"a rule applied 30 days ago is due now", ago(30), policy.StatusNonCompliant, time.Time{}},
		{"a rule applied 40 days ago is overdue", ago(40), policy.StatusNonCompliant, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := map[string]time.Time{}
			if tt.applied != nil {
				first["all"] = *tt.applied
			}
			dec := policy.Evaluate(d, alice, nil, first, nil, now)
			if dec.Status != tt.want || !dec.GraceUntil.Equal(tt.wantUntil) {
				t.Errorf("status %s until %v, want %s until %v", dec.Status, dec.GraceUntil, tt.want, tt.wantUntil)
			}
			_, newly := dec.NewlyApplied["all"]
			if newly != (tt.applied == nil) {
				t.Errorf("NewlyApplied = %v", dec.NewlyApplied)
			}
			if !dec.MustEnrol || len(dec.NextSteps) == 0 {
				t.Errorf("no next steps for a user who must enrol: %+v", dec)
			}
		})
	}
}

// A user promoted into a stricter rule gets that rule's own time to
// comply, even when an older rule's deadline has long passed.
func TestEachRuleKeepsItsOwnDeadline(t *testing.T) {
	d := doc(t, `version: 1
rules:
- name: everyone
	match: {everyone: true}
	require: {enroll_within: 30d}
- name: engineering
	match: {groups: [engineering]}
	require: {min_factors: 2, allowed_kinds: [piv, fido2], enroll_within: 7d}
`)
	first := map[string]time.Time{"everyone": *ago(365)}
	dec := policy.Evaluate(d, alice, []policy.Factor{totp("f1")}, first, nil, now)
	if dec.Status != policy.StatusGrace || !dec.GraceUntil.Equal(now.Add(days(7))) {
		t.Fatalf("status %s until %v, want grace for the new rule's 7 days; %v", dec.Status, dec.GraceUntil, dec.Reasons)
	}
	if _, ok := dec.NewlyApplied["engineering"]; !ok || len(dec.NewlyApplied) != 1 {
		t.Errorf("NewlyApplied = %v, want engineering only", dec.NewlyApplied)
	}
	// Without any factor the old rule fails on its own: its deadline passed.
	if dec := policy.Evaluate(d, alice, nil, first, nil, now); dec.Status != policy.StatusNonCompliant {
		t.Errorf("status %s, want non_compliant: everyone's deadline has passed", dec.Status)
	}
}

func TestHelpdeskCanReadTheReasons(t *testing.T) {
	d := doc(t, "version: 1\nrules:\n- name: everyone\n\tmatch: {everyone: true}\n\trequire: {enroll_within: 30d}\n")
	dec := policy.Evaluate(d, carol, []policy.Factor{pivKey(t, "k1", attesttest.PIVOptions{})}, map[string]time.Time{"everyone": *ago(300)}, nil, now)
	want := "carol has 1 active hardware factor; admins and security officers need 2 by 2026-06-15"
	if dec.Status != policy.StatusGrace || dec.Reasons[0].Message != want {
		t.Fatalf("status %s, reasons %v\nwant first reason %q", dec.Status, dec.Reasons, want)
	}
	if step := dec.NextSteps[0]; step != "Enrol 1 more hardware key by 2026-06-15." {
		t.Errorf("next step = %q", step)
	}
}

func TestPrivilegedRolesNeedTwoHardwareFactors(t *testing.T) {
	empty := doc(t, "version: 1\nrules: []\n")
	lenient := doc(t, "version: 1\nprivileged_enroll_within: 90d\nrules:\n- name: admins\n\tmatch: {roles: [admin]}\n\trequire: {min_factors: 1, enroll_within: 365d}\n")
	key := func(id string) policy.Factor { return pivKey(t, id, attesttest.PIVOptions{}) }
	tests := []struct {
		name    string
		doc     *policy.Document
		applied time.Duration // how long ago the built-in rule first applied
		factors []policy.Factor
		want    policy.Status
	}{
		{"an admin with two hardware keys complies", empty, days(100), []policy.Factor{key("a"), key("b")}, policy.StatusCompliant},
		{"an admin with one key is in grace for 14 days", empty, days(1), []policy.Factor{key("a")}, policy.StatusGrace},
		{"an admin with one key is non-compliant after 14 days", empty, days(14), []policy.Factor{key("a")}, policy.StatusNonCompliant},
		{"TOTP does not make up the second hardware factor", empty, days(100), []policy.Factor{key("a"), totp("t")}, policy.StatusNonCompliant},
		{"a policy can delay the invariant up to 90 days", lenient, days(60), []policy.Factor{key("a")}, policy.StatusGrace},
		{"a policy cannot switch the invariant off", lenient, days(90), []policy.Factor{key("a")}, policy.StatusNonCompliant},
		{"a nil document still applies the invariant", nil, days(100), []policy.Factor{key("a")}, policy.StatusNonCompliant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := map[string]time.Time{policy.BuiltinPrivileged: now.Add(-tt.applied), "admins": now}
			dec := policy.Evaluate(tt.doc, carol, tt.factors, first, nil, now)
			if dec.Status != tt.want {
				t.Errorf("status = %s, want %s: %v", dec.Status, tt.want, dec.Reasons)
			}
			if tt.want != policy.StatusCompliant && !dec.HasReason(policy.CodePrivilegedHardware) {
				t.Errorf("no privileged_hardware reason: %v", codes(dec.Reasons))
			}
		})
	}
}

func TestExemptions(t *testing.T) {
	d := oneRule(t, "")
	tests := []struct {
		name       string
		exemptions []policy.Exemption
		exempt     bool
	}{
		{"an active exemption makes the user compliant", []policy.Exemption{{UserID: alice.ID, Reason: "on leave", Until: now.Add(days(5))}}, true},
		{"an expired exemption is ignored", []policy.Exemption{{UserID: alice.ID, Reason: "on leave", Until: now.Add(-time.Second)}}, false},
		{"an exemption ending now is over", []policy.Exemption{{UserID: alice.ID, Reason: "on leave", Until: now}}, false},
		{"another user's exemption is ignored", []policy.Exemption{{UserID: bob.ID, Reason: "on leave", Until: now.Add(days(5))}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dec := policy.Evaluate(d, alice, nil, nil, tt.exemptions, now)
			if dec.Exempt() != tt.exempt || (dec.Status == policy.StatusCompliant) != tt.exempt {
				t.Fatalf("exempt %v, status %s", dec.Exempt(), dec.Status)
			}
			if tt.exempt && (!dec.HasReason(policy.CodeExempt) || !strings.Contains(dec.Reasons[0].Message, "on leave") || dec.MustEnrol) {
				t.Errorf("reasons %v, MustEnrol %v", dec.Reasons, dec.MustEnrol)
			}
		})
	}
	long := []policy.Exemption{{UserID: alice.ID, Reason: "a", Until: now.Add(days(2))}, {UserID: alice.ID, Reason: "b", Until: now.Add(days(9))}}
	if dec := policy.Evaluate(d, alice, nil, nil, long, now); !dec.ExemptUntil.Equal(now.Add(days(9))) {
		t.Errorf("ExemptUntil = %v, want the latest exemption's end", dec.ExemptUntil)
	}
}

func TestConflictingRulesAreExplained(t *testing.T) {
	d := doc(t, `version: 1
rules:
- name: a
	match: {everyone: true}
	require: {allowed_kinds: [piv]}
- name: b
	match: {groups: [engineering]}
	require: {allowed_kinds: [totp]}
`)
	dec := evaluate(d, alice, totp("f1"), pivKey(t, "k1", attesttest.PIVOptions{}))
	if dec.Status != policy.StatusNonCompliant || !dec.HasReason(policy.CodeConflictingRules) {
		t.Fatalf("status %s, reasons %v", dec.Status, codes(dec.Reasons))
	}
	if !strings.Contains(dec.NextSteps[0], "policy administrator") {
		t.Errorf("next steps %v", dec.NextSteps)
	}
}

// evidenceOf is a shorthand for tests that need evidence literals.
func evidenceOf(model, fw string) *attest.Evidence {
	return &attest.Evidence{Format: "piv", Vendor: "Yubico", Model: model, Firmware: fw,
		AttestationType: attest.AttestationCA, KeyAlgorithm: "EC-P256", PINPolicy: "once", TouchPolicy: "always"}
}
