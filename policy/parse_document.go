package policy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/keyfleet/keyfleet/attest"
)

func (d *decoder) document(n *yaml.Node) *Document {
	doc := &Document{}
	var rulesNode *yaml.Node
	seen := d.mapping(n, "", []field{
		{"version", func(v *yaml.Node, p string) { doc.Version = d.version(v, p) }},
		{"description", func(v *yaml.Node, p string) { doc.Description = d.text(v, p) }},
		{"privileged_enroll_within", func(v *yaml.Node, p string) {
			doc.PrivilegedEnrollWithin = d.privilegedWithin(v, p)
		}},
		{"self_service", func(v *yaml.Node, p string) { doc.SelfService = d.selfService(v, p) }},
		{"rules", func(v *yaml.Node, p string) { rulesNode = v; doc.Rules = d.rules(v, p) }},
	})
	if seen == nil {
		return doc
	}
	if _, ok := seen["version"]; !ok {
		d.problem(n, "version", "is required; this package reads version: %d", SchemaVersion)
	}
	if _, ok := seen["rules"]; !ok {
		d.problem(n, "rules", "is required (an empty list is allowed)")
	}
	d.uniqueNames(rulesNode, doc.Rules)
	return doc
}

func (d *decoder) selfService(n *yaml.Node, path string) SelfService {
	var s SelfService
	d.mapping(n, path, []field{
		{"app_sign_in", func(v *yaml.Node, p string) { s.AppSignIn, _ = d.list(v, p, oneOf(SecondChecks...)) }},
	})
	return s
}

func (d *decoder) version(n *yaml.Node, path string) int {
	v, ok := d.integer(n, path)
	if ok && v != SchemaVersion {
		d.problem(resolve(n), path, "version %d is not supported; this package reads version %d", v, SchemaVersion)
	}
	return v
}

func (d *decoder) text(n *yaml.Node, path string) string {
	s, ok := d.str(n, path)
	if !ok {
		return ""
	}
	if len(s) > 4096 {
		d.problem(resolve(n), path, "is %d characters; the limit is 4096", len(s))
	}
	return s
}

func (d *decoder) privilegedWithin(n *yaml.Node, path string) time.Duration {
	v, ok := d.duration(n, path)
	if ok && v > MaxPrivilegedEnrollWithin {
		d.problem(resolve(n), path, "must be at most %s (the built-in rule for admins cannot be put off longer), got %s",
			formatDuration(MaxPrivilegedEnrollWithin), formatDuration(v))
	}
	return v
}

func (d *decoder) rules(n *yaml.Node, path string) []Rule {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		d.problem(n, path, "must be a list of rules, got %s", describe(n))
		return nil
	}
	if len(n.Content) > MaxRules {
		d.problem(n, path, "lists %d rules; the limit is %d", len(n.Content), MaxRules)
		return nil
	}
	out := make([]Rule, 0, len(n.Content))
	for i, item := range n.Content {
		out = append(out, d.rule(item, fmt.Sprintf("%s[%d]", path, i)))
	}
	return out
}

// uniqueNames reports rules sharing a name: first-applied times are kept
// by name.
func (d *decoder) uniqueNames(n *yaml.Node, rules []Rule) {
	for i, r := range rules {
		if r.Name == "" {
			continue
		}
		if j := slices.IndexFunc(rules[:i], func(o Rule) bool { return o.Name == r.Name }); j >= 0 {
			d.problem(resolve(n).Content[i], fmt.Sprintf("rules[%d].name", i),
				"%q is already the name of rules[%d]; rule names must be unique", r.Name, j)
		}
	}
}

func (d *decoder) rule(n *yaml.Node, path string) Rule {
	r := Rule{Require: Requirements{MinFactors: 1}}
	seen := d.mapping(n, path, []field{
		{"name", func(v *yaml.Node, p string) {
			if s, ok := d.str(v, p); ok {
				if _, complaint := validName(s); complaint != "" {
					d.problem(resolve(v), p, "%s", complaint)
				}
				r.Name = s
			}
		}},
		{"description", func(v *yaml.Node, p string) { r.Description = d.text(v, p) }},
		{"match", func(v *yaml.Node, p string) { r.Match = d.match(v, p) }},
		{"require", func(v *yaml.Node, p string) { d.require(v, p, &r.Require) }},
	})
	if seen == nil {
		return r
	}
	for _, key := range []string{"name", "match"} {
		if _, ok := seen[key]; !ok {
			d.problem(resolve(n), joinPath(path, key), "is required")
		}
	}
	return r
}

func (d *decoder) match(n *yaml.Node, path string) Match {
	var m Match
	seen := d.mapping(n, path, []field{
		{"everyone", func(v *yaml.Node, p string) { m.Everyone, _ = d.boolean(v, p) }},
		{"groups", func(v *yaml.Node, p string) { m.Groups, _ = d.list(v, p, validText) }},
		{"roles", func(v *yaml.Node, p string) { m.Roles, _ = d.list(v, p, validText) }},
		{"user_kinds", func(v *yaml.Node, p string) { m.UserKinds, _ = d.list(v, p, oneOf("person", "service")) }},
	})
	if seen == nil {
		return m
	}
	narrowed := m.Groups != nil || m.Roles != nil
	switch {
	case m.Everyone && narrowed:
		d.problem(resolve(n), path, "everyone: true matches every user; remove groups and roles, or everyone")
	case !m.Everyone && seen["groups"] == nil && seen["roles"] == nil:
		d.problem(resolve(n), path, "matches nobody: set everyone: true, or list groups or roles")
	}
	return m
}

// requirement fields and their readers; see docs/policy.md.
func (d *decoder) require(n *yaml.Node, path string, r *Requirements) {
	seen := d.mapping(n, path, []field{
		{"min_factors", func(v *yaml.Node, p string) { r.MinFactors = d.count(v, p, 1) }},
		{"min_hardware_factors", func(v *yaml.Node, p string) { r.MinHardwareFactors = d.count(v, p, 0) }},
		{"allowed_kinds", func(v *yaml.Node, p string) { r.AllowedKinds, _ = d.list(v, p, validKind) }},
		{"attestation_required", func(v *yaml.Node, p string) { r.AttestationRequired, _ = d.boolean(v, p) }},
		{"allowed_vendors", func(v *yaml.Node, p string) { r.AllowedVendors, _ = d.list(v, p, validText) }},
		{"aaguids", func(v *yaml.Node, p string) { d.aaguids(v, p, r) }},
		{"min_firmware", func(v *yaml.Node, p string) { r.MinFirmware = d.minFirmware(v, p) }},
		{"block_advisories", func(v *yaml.Node, p string) { r.BlockAdvisories, _ = d.list(v, p, validAdvisory) }},
		{"piv", func(v *yaml.Node, p string) { d.piv(v, p, r) }},
		{"totp", func(v *yaml.Node, p string) { d.totp(v, p, r) }},
		{"push", func(v *yaml.Node, p string) {
			d.mapping(v, p, []field{{"number_matching", func(v *yaml.Node, p string) { r.PushNumberMatching, _ = d.boolean(v, p) }}})
		}},
		{"fips_required", func(v *yaml.Node, p string) { r.FIPSRequired, _ = d.boolean(v, p) }},
		{"enroll_within", func(v *yaml.Node, p string) { r.EnrollWithin, _ = d.duration(v, p) }},
		{"max_inactivity", func(v *yaml.Node, p string) { r.MaxInactivity = d.inactivity(v, p) }},
		{"verification_kinds", func(v *yaml.Node, p string) { r.VerificationKinds, _ = d.list(v, p, validKind) }},
	})
	if r.MinHardwareFactors > r.MinFactors {
		if v := seen["min_factors"]; v != nil {
			d.problem(resolve(v), joinPath(path, "min_factors"),
				"is %d, below min_hardware_factors (%d); hardware factors are factors", r.MinFactors, r.MinHardwareFactors)
		}
		r.MinFactors = r.MinHardwareFactors
	}
}

func (d *decoder) count(n *yaml.Node, path string, least int) int {
	v, ok := d.integer(n, path)
	switch {
	case !ok:
		return least
	case v < least:
		d.problem(resolve(n), path, "must be at least %d, got %d", least, v)
	case v > 16:
		d.problem(resolve(n), path, "must be at most 16, got %d", v)
	}
	return v
}

func (d *decoder) inactivity(n *yaml.Node, path string) time.Duration {
	v, ok := d.duration(n, path)
	if ok && v < 24*time.Hour {
		d.problem(resolve(n), path, "must be at least 1 day, got %s", formatDuration(v))
	}
	return v
}

func (d *decoder) aaguids(n *yaml.Node, path string, r *Requirements) {
	d.mapping(n, path, []field{
		{"allow", func(v *yaml.Node, p string) { r.AllowedAAGUIDs, _ = d.list(v, p, validAAGUID) }},
		{"deny", func(v *yaml.Node, p string) { r.DeniedAAGUIDs, _ = d.list(v, p, validAAGUID) }},
	})
	for _, a := range r.AllowedAAGUIDs {
		if slices.Contains(r.DeniedAAGUIDs, a) {
			d.problem(resolve(n), path, "AAGUID %s is both allowed and denied", a)
		}
	}
}

func (d *decoder) piv(n *yaml.Node, path string, r *Requirements) {
	d.mapping(n, path, []field{
		{"pin_policies", func(v *yaml.Node, p string) { r.PINPolicies, _ = d.list(v, p, oneOf(pinPolicies...)) }},
		{"touch_policies", func(v *yaml.Node, p string) { r.TouchPolicies, _ = d.list(v, p, oneOf(touchPolicies...)) }},
	})
}

// totp reads the TOTP parameters an authenticator app factor may have.
func (d *decoder) totp(n *yaml.Node, path string, r *Requirements) {
	d.mapping(n, path, []field{
		{"algorithms", func(v *yaml.Node, p string) { r.TOTPAlgorithms, _ = d.list(v, p, totpAlgorithm) }},
		{"digits", func(v *yaml.Node, p string) { r.TOTPDigits, _ = d.list(v, p, oneOf("6", "8")) }},
		{"periods", func(v *yaml.Node, p string) { r.TOTPPeriods, _ = d.list(v, p, totpPeriod) }},
	})
}

// totpAlgorithm accepts SHA1, SHA256 and SHA512, in any case and with a
// dash ("sha-256"), and names them as the TOTP kind does.
func totpAlgorithm(s string) (string, string) {
	v := strings.ToUpper(strings.ReplaceAll(s, "-", ""))
	if !slices.Contains([]string{"SHA1", "SHA256", "SHA512"}, v) {
		return s, fmt.Sprintf("%q is not SHA1, SHA256 or SHA512", s)
	}
	return v, ""
}

// totpPeriod accepts a time step of 15 to 120 seconds, written as a
// whole number.
func totpPeriod(s string) (string, string) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 15 || n > 120 {
		return s, fmt.Sprintf("%q is not a time step of 15 to 120 seconds", s)
	}
	return strconv.Itoa(n), ""
}

// PIV policy names, as attest.Evidence spells them.
var (
	pinPolicies   = []string{"never", "once", "always", "match-once", "match-always"}
	touchPolicies = []string{"never", "always", "cached"}
)

func (d *decoder) minFirmware(n *yaml.Node, path string) map[string]attest.Version {
	n = resolve(n)
	if n.Kind != yaml.MappingNode || len(n.Content) == 0 {
		d.problem(n, path, `must map model lines to versions, like "YubiKey 5": 5.7.0; got %s`, describe(n))
		return nil
	}
	out := make(map[string]attest.Version, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		key := resolve(n.Content[i])
		sub := fmt.Sprintf("%s[%q]", path, key.Value)
		model, ok := d.str(key, sub)
		if !ok {
			continue
		}
		if _, dup := out[model]; dup {
			d.problem(key, sub, "appears twice")
			continue
		}
		if _, complaint := validText(model); complaint != "" {
			d.problem(key, sub, "model line %s", complaint)
			continue
		}
		s, ok := d.str(n.Content[i+1], sub)
		if !ok {
			continue
		}
		v, err := attest.ParseVersion(s)
		if err != nil {
			d.problem(resolve(n.Content[i+1]), sub, "%q is not a firmware version (major.minor.patch)", s)
			continue
		}
		out[model] = v
	}
	return out
}

// knownAdvisories is attest's table, read once: it is fixed at build time.
var knownAdvisories = attest.KnownAdvisories()

func validAdvisory(s string) (string, string) {
	ids := make([]string, len(knownAdvisories))
	for i, a := range knownAdvisories {
		if a.ID == s {
			return s, ""
		}
		ids[i] = a.ID
	}
	return s, fmt.Sprintf("%q is not a known advisory; known: %s", s, joinList(ids))
}
