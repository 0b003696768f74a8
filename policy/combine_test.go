package policy_test

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/attest/attesttest"
	"github.com/keyfleet/keyfleet/policy"
)

// Two rules apply to alice (everyone, engineering); each case shows how
// one requirement combines, by a factor set that passes only the
// strictest combination.
func TestStrictestCombination(t *testing.T) {
	twoRules := func(everyone, engineering string) *policy.Document {
		return doc(t, "version: 1\nrules:\n- name: everyone\n\tmatch: {everyone: true}\n\trequire: {"+everyone+
			"}\n- name: engineering\n\tmatch: {groups: [engineering]}\n\trequire: {"+engineering+"}\n")
	}
	key := func(id string, o attesttest.PIVOptions) policy.Factor { return pivKey(t, id, o) }
	stale := totp("t2")
	stale.LastUsedAt = ago(45)
	tests := []struct {
		name          string
		everyone, eng string
		weak, strong  []policy.Factor // weak meets the laxer rule only; strong meets both
		weakCode      string
	}{
		{"min_factors takes the largest", "min_factors: 1", "min_factors: 3",
			[]policy.Factor{totp("t1"), totp("t2")}, []policy.Factor{totp("t1"), totp("t2"), totp("t3")}, policy.CodeTooFewFactors},
		{"allowed_kinds takes the intersection", "allowed_kinds: [totp, piv]", "allowed_kinds: [piv, fido2]",
			[]policy.Factor{totp("t1")}, []policy.Factor{key("k1", attesttest.PIVOptions{})}, policy.CodeKindNotAllowed},
		{"attestation_required is on if any rule wants it", "attestation_required: false", "attestation_required: true",
			[]policy.Factor{totp("t1")}, []policy.Factor{key("k1", attesttest.PIVOptions{})}, policy.CodeAttestationMissing},
		{"fips_required is on if any rule wants it", "", "fips_required: true",
			[]policy.Factor{key("k1", attesttest.PIVOptions{})}, []policy.Factor{key("k1", attesttest.PIVOptions{FIPS: true})}, policy.CodeFIPSRequired},
		{"allowed AAGUIDs take the intersection", "aaguids: {allow: [" + aaguidYK5 + ", " + aaguidOther + "]}", "aaguids: {allow: [" + aaguidYK5 + "]}",
			[]policy.Factor{fido2Key("k1", aaguidOther, true)}, []policy.Factor{fido2Key("k1", aaguidYK5, true)}, policy.CodeAAGUIDNotAllowed},
		{"denied AAGUIDs take the union", "aaguids: {deny: [" + aaguidOther + "]}", "aaguids: {deny: [" + aaguidYK5 + "]}",
			[]policy.Factor{fido2Key("k1", aaguidYK5, true)}, nil, policy.CodeAAGUIDDenied},
		{"blocking advisories take the union", "block_advisories: [YSA-2017-01]", "block_advisories: [YSA-2024-03]",
			[]policy.Factor{key("k1", attesttest.PIVOptions{Firmware: fwEUCLEAK})}, []policy.Factor{key("k1", attesttest.PIVOptions{})}, policy.CodeAdvisoryBlocked},
		{"min_firmware takes the highest per model line", `min_firmware: {"YubiKey 5": 5.2.0}`, `min_firmware: {"YubiKey 5": 5.7.0}`,
			[]policy.Factor{key("k1", attesttest.PIVOptions{Firmware: [3]byte{5, 4, 3}})}, []policy.Factor{key("k1", attesttest.PIVOptions{})}, policy.CodeFirmwareTooOld},
		{"PIN policies take the intersection", "piv: {pin_policies: [once, always]}", "piv: {pin_policies: [always]}",
			[]policy.Factor{key("k1", attesttest.PIVOptions{PINPolicy: 2})}, []policy.Factor{key("k1", attesttest.PIVOptions{PINPolicy: 3})}, policy.CodePINPolicy},
		{"max_inactivity takes the shortest", "max_inactivity: 90d", "max_inactivity: 30d",
			[]policy.Factor{stale}, []policy.Factor{totp("t1")}, policy.CodeStale},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := twoRules(tt.everyone, tt.eng)
			if dec := evaluate(d, alice, tt.weak...); dec.Status == policy.StatusCompliant || !dec.HasReason(tt.weakCode) {
				t.Errorf("the laxer rule's factors passed: %s %v", dec.Status, codes(dec.Reasons))
			}
			if tt.strong == nil {
				return
			}
			if dec := evaluate(d, alice, tt.strong...); dec.Status != policy.StatusCompliant {
				t.Errorf("factors meeting both rules failed: %v", dec.Reasons)
			}
		})
	}
}

// Property: the decision does not depend on the order of rules.
func TestCombinationIsOrderIndependent(t *testing.T) {
	pool := doc(t, `version: 1
rules:
- name: a
	match: {everyone: true}
	require: {allowed_kinds: [piv, fido2, totp], max_inactivity: 90d, enroll_within: 30d}
- name: b
	match: {groups: [engineering]}
	require: {min_factors: 2, allowed_kinds: [piv, fido2], block_advisories: [YSA-2024-03], enroll_within: 14d}
- name: c
	match: {roles: [admin]}
	require: {attestation_required: true, min_firmware: {"YubiKey 5": 5.7.0}, piv: {pin_policies: [once]}, max_inactivity: 30d}
- name: d
	match: {groups: [engineering, sales]}
	require: {aaguids: {deny: [`+aaguidOther+`]}, verification_kinds: [piv, totp], enroll_within: 60d}
- name: e
	match: {everyone: true}
	require: {min_hardware_factors: 1, allowed_vendors: [Yubico], fips_required: false}
`)
	stale := totp("t")
	stale.LastUsedAt = ago(60)
	factorSets := [][]policy.Factor{
		nil,
		{totp("t1"), stale},
		{pivKey(t, "k1", attesttest.PIVOptions{Firmware: fwEUCLEAK}), fido2Key("k2", aaguidYK5, true)},
		{pivKey(t, "k1", attesttest.PIVOptions{}), pivKey(t, "k2", attesttest.PIVOptions{}), fido2Key("k3", aaguidOther, false)},
	}
	first := map[string]time.Time{"a": *ago(40), "b": *ago(3), policy.BuiltinPrivileged: *ago(20)}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		rules := slices.Clone(pool.Rules)
		rng.Shuffle(len(rules), func(i, j int) { rules[i], rules[j] = rules[j], rules[i] })
		shuffled := &policy.Document{Version: 1, Rules: rules[:1+rng.IntN(len(rules))]}
		sorted := &policy.Document{Version: 1, Rules: slices.Clone(shuffled.Rules)}
		slices.SortFunc(sorted.Rules, func(x, y policy.Rule) int { return cmp(x.Name, y.Name) })
		for _, u := range []policy.User{alice, bob, carol} {
			for _, fs := range factorSets {
				want := policy.Evaluate(sorted, u, fs, first, nil, now)
				got := policy.Evaluate(shuffled, u, fs, first, nil, now)
				if !reflect.DeepEqual(normal(got), normal(want)) {
					t.Fatalf("order changed the decision for %s:\n%+v\nvs\n%+v", u.Username, got, want)
				}
			}
		}
	}
}

// normal sorts what may legitimately come in rule order (reason and
// step order) so decisions compare by content.
func normal(d policy.Decision) policy.Decision {
	d.Reasons = slices.Clone(d.Reasons)
	slices.SortFunc(d.Reasons, func(a, b policy.Reason) int { return cmp(a.Code+a.FactorID+a.Message, b.Code+b.FactorID+b.Message) })
	d.NextSteps = slices.Sorted(slices.Values(d.NextSteps))
	return d
}

func cmp(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
