package policy_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/policy"
)

func TestExamplePoliciesParse(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example policies: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := policy.Parse(f, data); err != nil {
			t.Errorf("%s does not parse:\n%v", f, err)
		}
	}
}

func TestParseReadsEveryField(t *testing.T) {
	data, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := policy.Parse("example.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if d.Version != 1 || d.PrivilegedEnrollWithin != days(14) || len(d.Rules) != 3 {
		t.Fatalf("document = %+v", d)
	}
	admins := d.Rules[2].Require
	checks := []struct {
		name string
		ok   bool
	}{
		{"min_factors", admins.MinFactors == 2},
		{"min_hardware_factors", admins.MinHardwareFactors == 2},
		{"allowed_kinds sorted", strings.Join(admins.AllowedKinds, ",") == "fido2,piv"},
		{"attestation_required", admins.AttestationRequired},
		{"allowed_vendors", strings.Join(admins.AllowedVendors, ",") == "Yubico"},
		{"min_firmware", admins.MinFirmware["YubiKey Bio"].String() == "5.7.2"},
		{"block_advisories", strings.Join(admins.BlockAdvisories, ",") == "YSA-2024-03"},
		{"pin_policies", strings.Join(admins.PINPolicies, ",") == "always,once"},
		{"touch_policies", strings.Join(admins.TouchPolicies, ",") == "always,cached"},
		{"enroll_within", admins.EnrollWithin == days(7)},
		{"max_inactivity", admins.MaxInactivity == days(90)},
		{"verification_kinds", strings.Join(admins.VerificationKinds, ",") == "fido2,piv"},
		{"aaguids.deny", len(d.Rules[1].Require.DeniedAAGUIDs) == 1},
		{"match.roles", strings.Join(d.Rules[2].Match.Roles, ",") == "admin,security_officer"},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s was not read as written", c.name)
		}
	}
}

func TestMinFactorsDefaultsToOne(t *testing.T) {
	d := doc(t, "version: 1\nrules:\n- name: all\n\tmatch: {everyone: true}\n")
	if got := d.Rules[0].Require.MinFactors; got != 1 {
		t.Fatalf("min_factors = %d, want 1", got)
	}
}

func TestDurationsAcceptDaysWeeksAndGoDurations(t *testing.T) {
	for in, want := range map[string]time.Duration{"30d": days(30), "2w": days(14), "72h": 72 * time.Hour, "0d": 0} {
		d := doc(t, "version: 1\nrules:\n- name: all\n\tmatch: {everyone: true}\n\trequire: {enroll_within: "+in+"}\n")
		if got := d.Rules[0].Require.EnrollWithin; got != want {
			t.Errorf("enroll_within %s = %v, want %v", in, got, want)
		}
	}
}

// Every problem names the file, the line and the field.
func TestBadDocumentsAreRefusedWithLineAndField(t *testing.T) {
	const head = "version: 1\nrules:\n"
	tests := []struct {
		name string
		doc  string
		want string // one line of the error
	}{
		{"an empty file is refused", "", "policy.yaml: the document is empty; it needs at least version and rules"},
		{"a missing version is refused", "rules: []\n", "policy.yaml:1: version: is required; this package reads version: 1"},
		{"a future version is refused", "version: 2\nrules: []\n", "policy.yaml:1: version: version 2 is not supported; this package reads version 1"},
		{"a version written as text is refused", "version: one\nrules: []\n", `policy.yaml:1: version: must be a whole number, got "one"`},
		{"missing rules are refused", "version: 1\n", "policy.yaml:1: rules: is required (an empty list is allowed)"},
		{"an unknown top-level field is refused", "version: 1\nrule: []\n", "policy.yaml:2: rule: unknown field; known fields are version, description, privileged_enroll_within, self_service, rules"},
		{"a repeated field is refused", "version: 1\nversion: 1\nrules: []\n", "policy.yaml:2: version: appears twice"},
		{"invalid YAML is refused with its line", "version: 1\nrules: [\n", "policy.yaml:2: invalid YAML: did not find expected node content"},
		{"min_factors of zero is refused", head + "- name: all\n\tmatch: {everyone: true}\n\trequire:\n\t\tmin_factors: 0\n",
			"policy.yaml:6: rules[0].require.min_factors: must be at least 1, got 0"},
		{"the second rule's problem names rules[1]", head + "- name: a\n\tmatch: {everyone: true}\n- name: b\n\tmatch: {everyone: true}\n\trequire:\n\t\tmin_factors: 0\n",
			"policy.yaml:8: rules[1].require.min_factors: must be at least 1, got 0"},
		{"an unknown advisory is refused", head + "- name: all\n\tmatch: {everyone: true}\n\trequire:\n\t\tblock_advisories: [YSA-1999-01]\n",
			`policy.yaml:6: rules[0].require.block_advisories[0]: "YSA-1999-01" is not a known advisory; known: YSA-2024-03, YSA-2017-01`},
		{"a bad AAGUID is refused", head + "- name: all\n\tmatch: {everyone: true}\n\trequire:\n\t\taaguids: {allow: [nope]}\n",
			`policy.yaml:6: rules[0].require.aaguids.allow[0]: "nope" is not an AAGUID (8-4-4-4-12 hex digits)`},
		{"an AAGUID both allowed and denied is refused", head + "- name: all\n\tmatch: {everyone: true}\n\trequire:\n\t\taaguids:\n\t\t\tallow: [" + aaguidYK5 + "]\n\t\t\tdeny: [" + aaguidYK5 + "]\n",
			"policy.yaml:7: rules[0].require.aaguids: AAGUID " + aaguidYK5 + " is both allowed and denied"},
		{"a bad firmware version is refused", head + "- name: all\n\tmatch: {everyone: true}\n\trequire:\n\t\tmin_firmware: {\"YubiKey 5\": five}\n",
			`policy.yaml:6: rules[0].require.min_firmware["YubiKey 5"]: "five" is not a firmware version (major.minor.patch)`},
		{"an unknown PIN policy is refused", head + "- name: all\n\tmatch: {everyone: true}\n\trequire:\n\t\tpiv: {pin_policies: [sometimes]}\n",
			`policy.yaml:6: rules[0].require.piv.pin_policies[0]: "sometimes" is not one of never, once, always, match-once, match-always`},
		{"an unknown TOTP algorithm is refused", head + "- name: all\n\tmatch: {everyone: true}\n\trequire:\n\t\ttotp: {algorithms: [MD5]}\n",
			`policy.yaml:6: rules[0].require.totp.algorithms[0]: "MD5" is not SHA1, SHA256 or SHA512`},
		{"seven TOTP digits are refused", head + "- name: all\n\tmatch: {everyone: true}\n\trequire:\n\t\ttotp: {digits: [7]}\n",
			`policy.yaml:6: rules[0].require.totp.digits[0]: "7" is not one of 6, 8`},
		{"a TOTP time step of five seconds is refused", head + "- name: all\n\tmatch: {everyone: true}\n\trequire:\n\t\ttotp: {periods: [5]}\n",
			`policy.yaml:6: rules[0].require.totp.periods[0]: "5" is not a time step of 15 to 120 seconds`},
		{"a bad duration is refused", head + "- name: all\n\tmatch: {everyone: true}\n\trequire:\n\t\tenroll_within: soon\n",
			`policy.yaml:6: rules[0].require.enroll_within: "soon" is not a duration: write it as 30d, 2w or 72h`},
		{"a negative duration is refused", head + "- name: all\n\tmatch: {everyone: true}\n\trequire:\n\t\tenroll_within: -5h\n",
			`policy.yaml:6: rules[0].require.enroll_within: "-5h" is negative`},
		{"a duration beyond ten years is refused", head + "- name: all\n\tmatch: {everyone: true}\n\trequire:\n\t\tenroll_within: 25000w\n",
			`policy.yaml:6: rules[0].require.enroll_within: "25000w" is longer than the limit of 3650 days`},
		{"an inactivity under a day is refused", head + "- name: all\n\tmatch: {everyone: true}\n\trequire:\n\t\tmax_inactivity: 1h\n",
			"policy.yaml:6: rules[0].require.max_inactivity: must be at least 1 day, got 1h0m0s"},
		{"a privileged deadline beyond 90 days is refused", "version: 1\nprivileged_enroll_within: 365d\nrules: []\n",
			"policy.yaml:2: privileged_enroll_within: must be at most 90 days (the built-in rule for admins cannot be put off longer), got 365 days"},
		{"a rule without a name is refused", head + "- match: {everyone: true}\n", "policy.yaml:3: rules[0].name: is required"},
		{"a rule name with a colon is refused", head + "- name: builtin:privileged\n\tmatch: {everyone: true}\n",
			`policy.yaml:3: rules[0].name: "builtin:privileged" is not a valid name: use 1-64 of a-z 0-9 _ . - starting with a letter or digit`},
		{"two rules with one name are refused", head + "- name: a\n\tmatch: {everyone: true}\n- name: a\n\tmatch: {everyone: true}\n",
			`policy.yaml:5: rules[1].name: "a" is already the name of rules[0]; rule names must be unique`},
		{"a rule matching nobody is refused", head + "- name: a\n\tmatch: {everyone: false}\n",
			"policy.yaml:4: rules[0].match: matches nobody: set everyone: true, or list groups or roles"},
		{"everyone with groups is refused", head + "- name: a\n\tmatch: {everyone: true, groups: [x]}\n",
			"policy.yaml:4: rules[0].match: everyone: true matches every user; remove groups and roles, or everyone"},
		{"an empty allow list is refused", head + "- name: a\n\tmatch: {everyone: true}\n\trequire: {allowed_kinds: []}\n",
			"policy.yaml:5: rules[0].require.allowed_kinds: must list at least one entry; leave the field out for no restriction"},
		{"a kind listed twice is refused", head + "- name: a\n\tmatch: {everyone: true}\n\trequire: {allowed_kinds: [piv, piv]}\n",
			`policy.yaml:5: rules[0].require.allowed_kinds[1]: "piv" is listed twice`},
		{"min_factors below min_hardware_factors is refused", head + "- name: a\n\tmatch: {everyone: true}\n\trequire: {min_factors: 1, min_hardware_factors: 2}\n",
			"policy.yaml:5: rules[0].require.min_factors: is 1, below min_hardware_factors (2); hardware factors are factors"},
		{"a misspelt requirement is refused", head + "- name: a\n\tmatch: {everyone: true}\n\trequire: {min_factor: 2}\n",
			"policy.yaml:5: rules[0].require.min_factor: unknown field; known fields are min_factors, min_hardware_factors"},
		{"a boolean written as text is refused", head + "- name: a\n\tmatch: {everyone: true}\n\trequire: {fips_required: \"yes\"}\n",
			`policy.yaml:5: rules[0].require.fips_required: must be true or false, got "yes"`},
		{"rules written as a mapping are refused", "version: 1\nrules: {a: b}\n", "policy.yaml:2: rules: must be a list of rules, got a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policy.Parse("policy.yaml", []byte(untab(tt.doc)))
			if !errors.Is(err, policy.ErrInvalidDocument) {
				t.Fatalf("err = %v, want ErrInvalidDocument", err)
			}
			var pe *policy.ParseError
			if !errors.As(err, &pe) || len(pe.Problems) == 0 {
				t.Fatalf("err = %T, want *ParseError with problems", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant a line containing:\n%s", err, tt.want)
			}
		})
	}
}

func TestEveryProblemIsReportedNotJustTheFirst(t *testing.T) {
	_, err := policy.Parse("p.yaml", []byte(untab("version: 3\nrules:\n- name: a\n\tmatch: {everyone: true}\n\trequire: {min_factors: 0, fips_required: 1}\n")))
	var pe *policy.ParseError
	if !errors.As(err, &pe) || len(pe.Problems) != 3 {
		t.Fatalf("err = %v, want 3 problems", err)
	}
}

func TestOversizedDocumentsAreRefused(t *testing.T) {
	big := make([]byte, policy.MaxDocumentSize+1)
	if _, err := policy.Parse("big.yaml", big); !errors.Is(err, policy.ErrInvalidDocument) {
		t.Fatalf("err = %v", err)
	}
}

// FuzzParse: Parse never panics, and any document it accepts evaluates
// without panicking and diffs against itself to no change.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("version: 1\nrules: []\n"))
	f.Add([]byte("version: 1\nrules:\n- &a {name: x, match: {everyone: true}}\n- *a\n"))
	f.Add([]byte("version: 1\nrules: [{name: x, match: {roles: [admin]}, require: {min_firmware: {a: 1.2.3}}}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := policy.Parse("fuzz.yaml", data)
		if err != nil {
			if !errors.Is(err, policy.ErrInvalidDocument) {
				t.Fatalf("error does not wrap ErrInvalidDocument: %v", err)
			}
			return
		}
		policy.Evaluate(d, carol, []policy.Factor{totp("f1")}, nil, nil, now)
		if c := policy.Diff(d, d); len(c) != 0 {
			t.Fatalf("a document differs from itself: %v", c)
		}
	})
}
