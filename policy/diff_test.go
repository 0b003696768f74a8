package policy_test

import (
	"os"
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/policy"
)

func TestDiff(t *testing.T) {
	base := "version: 1\nrules:\n- name: r\n\tmatch: {groups: [eng]}\n\trequire: {%s}\n"
	withReq := func(req string) *policy.Document { return doc(t, strings.Replace(base, "%s", req, 1)) }
	tests := []struct {
		name     string
		old, new *policy.Document
		want     []string // "field effect", in order
	}{
		{"the same document makes no change", withReq("min_factors: 2"), withReq("min_factors: 2"), nil},
		{"raising min_factors is stricter", withReq("min_factors: 1"), withReq("min_factors: 2"), []string{"require.min_factors stricter"}},
		{"lowering min_hardware_factors is weaker", withReq("min_hardware_factors: 2"), withReq("min_hardware_factors: 1"),
			[]string{"require.min_factors weaker", "require.min_hardware_factors weaker"}},
		{"limiting kinds is stricter", withReq(""), withReq("allowed_kinds: [piv]"), []string{"require.allowed_kinds stricter"}},
		{"dropping the kind limit is weaker", withReq("allowed_kinds: [piv]"), withReq(""), []string{"require.allowed_kinds weaker"}},
		{"swapping an allowed kind is both", withReq("allowed_kinds: [piv]"), withReq("allowed_kinds: [fido2]"),
			[]string{"require.allowed_kinds weaker", "require.allowed_kinds stricter"}},
		{"turning attestation off is weaker", withReq("attestation_required: true"), withReq(""), []string{"require.attestation_required weaker"}},
		{"turning FIPS on is stricter", withReq(""), withReq("fips_required: true"), []string{"require.fips_required stricter"}},
		{"allowing another vendor is weaker", withReq("allowed_vendors: [Yubico]"), withReq("allowed_vendors: [Yubico, Feitian]"), []string{"require.allowed_vendors weaker"}},
		{"denying an AAGUID is stricter", withReq(""), withReq("aaguids: {deny: [" + aaguidOther + "]}"), []string{"require.aaguids.deny stricter"}},
		{"allowing another AAGUID is weaker", withReq("aaguids: {allow: [" + aaguidYK5 + "]}"), withReq("aaguids: {allow: [" + aaguidYK5 + ", " + aaguidOther + "]}"), []string{"require.aaguids.allow weaker"}},
		{"raising min_firmware is stricter", withReq(`min_firmware: {"YubiKey 5": 5.2.0}`), withReq(`min_firmware: {"YubiKey 5": 5.7.0}`), []string{"require.min_firmware stricter"}},
		{"dropping a model's min_firmware is weaker", withReq(`min_firmware: {"YubiKey 5": 5.2.0}`), withReq(""), []string{"require.min_firmware weaker"}},
		{"unblocking an advisory is weaker", withReq("block_advisories: [YSA-2024-03]"), withReq(""), []string{"require.block_advisories weaker"}},
		{"allowing touch never is weaker", withReq("piv: {touch_policies: [always]}"), withReq("piv: {touch_policies: [always, never]}"), []string{"require.piv.touch_policies weaker"}},
		{"narrowing PIN policies is stricter", withReq("piv: {pin_policies: [once, always]}"), withReq("piv: {pin_policies: [always]}"), []string{"require.piv.pin_policies stricter"}},
		{"accepting SHA-1 TOTP again is weaker", withReq("totp: {algorithms: [SHA256]}"), withReq("totp: {algorithms: [SHA1, SHA256]}"), []string{"require.totp.algorithms weaker"}},
		{"asking eight-digit TOTP codes is stricter", withReq(""), withReq("totp: {digits: [8]}"), []string{"require.totp.digits stricter"}},
		{"dropping the TOTP time step list is weaker", withReq("totp: {periods: [30]}"), withReq(""), []string{"require.totp.periods weaker"}},
		{"a longer enroll_within is weaker", withReq("enroll_within: 7d"), withReq("enroll_within: 30d"), []string{"require.enroll_within weaker"}},
		{"a shorter enroll_within is stricter", withReq("enroll_within: 30d"), withReq(""), []string{"require.enroll_within stricter"}},
		{"setting max_inactivity is stricter", withReq(""), withReq("max_inactivity: 90d"), []string{"require.max_inactivity stricter"}},
		{"removing max_inactivity is weaker", withReq("max_inactivity: 90d"), withReq(""), []string{"require.max_inactivity weaker"}},
		{"a longer max_inactivity is weaker", withReq("max_inactivity: 30d"), withReq("max_inactivity: 90d"), []string{"require.max_inactivity weaker"}},
		{"limiting verification kinds is stricter", withReq(""), withReq("verification_kinds: [piv]"), []string{"require.verification_kinds stricter"}},
		{"matching more groups is stricter", withReq(""), doc(t, "version: 1\nrules:\n- name: r\n\tmatch: {groups: [eng, ops]}\n"), []string{"match.groups stricter"}},
		{"matching everyone is stricter", withReq(""), doc(t, "version: 1\nrules:\n- name: r\n\tmatch: {everyone: true}\n"), []string{"match.everyone stricter", "match.groups weaker"}},
		{"adding a rule is stricter", doc(t, "version: 1\nrules: []\n"), withReq(""), []string{"rule stricter"}},
		{"removing a rule is weaker", withReq(""), doc(t, "version: 1\nrules: []\n"), []string{"rule weaker"}},
		{"renaming a rule is a removal and an addition", withReq(""), doc(t, "version: 1\nrules:\n- name: s\n\tmatch: {groups: [eng]}\n"), []string{"rule stricter", "rule weaker"}},
		{"delaying the privileged deadline is weaker", doc(t, "version: 1\nrules: []\n"), doc(t, "version: 1\nprivileged_enroll_within: 30d\nrules: []\n"), []string{"privileged_enroll_within weaker"}},
		{"descriptions make no change", withReq(""), doc(t, "version: 1\ndescription: new words\nrules:\n- name: r\n\tdescription: x\n\tmatch: {groups: [eng]}\n"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changes := policy.Diff(tt.old, tt.new)
			var got []string
			weakens := false
			for _, c := range changes {
				got = append(got, c.Field+" "+string(c.Effect))
				weakens = weakens || c.Effect == policy.Weaker
				if c.Message == "" {
					t.Errorf("change %+v has no message", c)
				}
			}
			if strings.Join(got, "; ") != strings.Join(tt.want, "; ") {
				t.Errorf("changes %v, want %v", got, tt.want)
			}
			if policy.Weakens(tt.old, tt.new) != weakens {
				t.Errorf("Weakens = %v, want %v", !weakens, weakens)
			}
		})
	}
}

func TestDiffMessagesReadWell(t *testing.T) {
	data, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	old := policy.MustParse("example.yaml", data)
	lax := strings.Replace(string(data), "min_hardware_factors: 2", "min_hardware_factors: 1", 1)
	changes := policy.Diff(old, policy.MustParse("lax.yaml", []byte(lax)))
	want := "rule admins: require.min_hardware_factors lowered from 2 to 1 (weaker)"
	if len(changes) != 1 || changes[0].Message != want {
		t.Fatalf("changes %+v, want one: %q", changes, want)
	}
}
