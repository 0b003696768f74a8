package policy_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/attest/attesttest"
	"github.com/keyfleet/keyfleet/policy"
)

// benchDoc has 20 rules: a baseline, 17 group rules (the user is in 3 of
// them), and 2 role rules (the user holds 1).
func benchDoc(tb testing.TB) *policy.Document {
	var b strings.Builder
	b.WriteString("version: 1\nrules:\n- name: everyone\n  match: {everyone: true}\n  require: {allowed_kinds: [piv, fido2, totp], max_inactivity: 180d, enroll_within: 30d}\n")
	for i := range 17 {
		fmt.Fprintf(&b, "- name: group-%d\n  match: {groups: [g%d, g%d]}\n  require: {min_factors: %d, block_advisories: [YSA-2024-03], min_firmware: {\"YubiKey 5\": 5.%d.0}, enroll_within: %dd}\n",
			i, i, i+20, 1+i%3, i%8, 10+i)
	}
	b.WriteString("- name: admins\n  match: {roles: [admin]}\n  require: {attestation_required: true, allowed_vendors: [Yubico], piv: {pin_policies: [once, always]}, verification_kinds: [piv, fido2]}\n")
	b.WriteString("- name: officers\n  match: {roles: [security_officer]}\n  require: {fips_required: true}\n")
	return policy.MustParse("bench.yaml", []byte(b.String()))
}

func benchUser(tb testing.TB) (policy.User, []policy.Factor, map[string]time.Time) {
	u := person("bench", []string{"g1", "g5", "g9", "other"}, []string{"admin"})
	fs := []policy.Factor{
		pivKey(tb, "k1", attesttest.PIVOptions{}),
		pivKey(tb, "k2", attesttest.PIVOptions{Firmware: fwEUCLEAK}),
		fido2Key("k3", aaguidYK5, true),
		totp("t1"),
		totp("t2"),
	}
	first := map[string]time.Time{"everyone": *ago(100), "group-1": *ago(10), "group-5": *ago(10),
		"group-9": *ago(10), "admins": *ago(5), policy.BuiltinPrivileged: *ago(5)}
	return u, fs, first
}

// BenchmarkEvaluate: one user with 5 factors under a 20-rule document.
func BenchmarkEvaluate(b *testing.B) {
	d := benchDoc(b)
	u, fs, first := benchUser(b)
	b.ReportAllocs()
	for b.Loop() {
		policy.Evaluate(d, u, fs, first, nil, now)
	}
}

// BenchmarkEvaluateCompliant: the common case, a user who complies.
func BenchmarkEvaluateCompliant(b *testing.B) {
	d := benchDoc(b)
	u, fs, first := benchUser(b)
	u.Roles = nil
	fs = []policy.Factor{fs[0], fs[2], fs[3], fs[4], pivKey(b, "k5", attesttest.PIVOptions{})}
	if dec := policy.Evaluate(d, u, fs, first, nil, now); dec.Status != policy.StatusCompliant {
		b.Fatalf("benchmark user is %s: %v", dec.Status, dec.Reasons)
	}
	b.ReportAllocs()
	for b.Loop() {
		policy.Evaluate(d, u, fs, first, nil, now)
	}
}

func BenchmarkParse(b *testing.B) {
	var sb strings.Builder
	for i := range 20 {
		fmt.Fprintf(&sb, "- name: r%d\n  match: {groups: [g%d]}\n  require: {min_factors: 2, allowed_kinds: [piv, fido2], enroll_within: 30d}\n", i, i)
	}
	data := []byte("version: 1\nrules:\n" + sb.String())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := policy.Parse("bench.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}
