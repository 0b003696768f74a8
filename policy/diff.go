package policy

import (
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Effect says which way a change moves the policy.
type Effect string

// Effects.
const (
	Stricter Effect = "stricter"
	Weaker   Effect = "weaker"
)

// Change is one requirement that differs between two documents.
type Change struct {
	Rule    string `json:"rule,omitempty"` // empty for document-level fields
	Field   string `json:"field"`          // "require.min_factors", "match.groups", "rule"
	Effect  Effect `json:"effect"`
	Old     string `json:"old,omitempty"`
	New     string `json:"new,omitempty"`
	Message string `json:"message"`
}

// Diff lists every requirement that got stricter or weaker from old to
// new. Rules are matched by name: a renamed rule is one rule removed
// (weaker) and one added (stricter). A list whose entries were both added
// and removed gives one change each way. Order of rules, descriptions and
// comments make no change. Either document may be nil (no rules).
func Diff(old, new *Document) []Change {
	if old == nil {
		old = &Document{}
	}
	if new == nil {
		new = &Document{}
	}
	var c changes
	oldP, newP := old.privilegedRule().Require.EnrollWithin, new.privilegedRule().Require.EnrollWithin
	c.window("", "privileged_enroll_within", oldP, newP, false)
	c.selfService(old.SelfService, new.SelfService)
	for _, nr := range new.Rules {
		i := slices.IndexFunc(old.Rules, func(r Rule) bool { return r.Name == nr.Name })
		if i < 0 {
			c.add(nr.Name, "rule", Stricter, "", nr.Name, "rule %s added", nr.Name)
			continue
		}
		c.match(nr.Name, old.Rules[i].Match, nr.Match)
		c.require(nr.Name, &old.Rules[i].Require, &nr.Require)
	}
	for _, or := range old.Rules {
		if !slices.ContainsFunc(new.Rules, func(r Rule) bool { return r.Name == or.Name }) {
			c.add(or.Name, "rule", Weaker, or.Name, "", "rule %s removed", or.Name)
		}
	}
	return c
}

// Weakens reports whether any change from old to new is weaker: such a
// change needs a second approver.
func Weakens(old, new *Document) bool {
	return slices.ContainsFunc(Diff(old, new), func(c Change) bool { return c.Effect == Weaker })
}

type changes []Change

func (c *changes) add(rule, field string, eff Effect, oldV, newV, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if rule != "" && field != "rule" {
		msg = "rule " + rule + ": " + msg
	}
	*c = append(*c, Change{Rule: rule, Field: field, Effect: eff, Old: oldV, New: newV, Message: msg + " (" + string(eff) + ")"})
}

func (c *changes) match(rule string, o, n Match) {
	if o.Everyone != n.Everyone {
		c.flag(rule, "match.everyone", o.Everyone, n.Everyone)
	}
	c.coverage(rule, "match.groups", o.Groups, n.Groups)
	c.coverage(rule, "match.roles", o.Roles, n.Roles)
	ok, nk := o.UserKinds, n.UserKinds
	if ok == nil {
		ok = defaultUserKinds
	}
	if nk == nil {
		nk = defaultUserKinds
	}
	c.coverage(rule, "match.user_kinds", ok, nk)
}

func (c *changes) require(rule string, o, n *Requirements) {
	c.minimum(rule, "require.min_factors", o.MinFactors, n.MinFactors)
	c.minimum(rule, "require.min_hardware_factors", o.MinHardwareFactors, n.MinHardwareFactors)
	c.allow(rule, "require.allowed_kinds", o.AllowedKinds, n.AllowedKinds)
	c.flag(rule, "require.attestation_required", o.AttestationRequired, n.AttestationRequired)
	c.allow(rule, "require.allowed_vendors", o.AllowedVendors, n.AllowedVendors)
	c.allow(rule, "require.aaguids.allow", o.AllowedAAGUIDs, n.AllowedAAGUIDs)
	c.coverage(rule, "require.aaguids.deny", o.DeniedAAGUIDs, n.DeniedAAGUIDs)
	c.firmware(rule, o, n)
	c.coverage(rule, "require.block_advisories", o.BlockAdvisories, n.BlockAdvisories)
	c.allow(rule, "require.piv.pin_policies", o.PINPolicies, n.PINPolicies)
	c.allow(rule, "require.piv.touch_policies", o.TouchPolicies, n.TouchPolicies)
	c.allow(rule, "require.totp.algorithms", o.TOTPAlgorithms, n.TOTPAlgorithms)
	c.allow(rule, "require.totp.digits", o.TOTPDigits, n.TOTPDigits)
	c.allow(rule, "require.totp.periods", o.TOTPPeriods, n.TOTPPeriods)
	c.flag(rule, "require.fips_required", o.FIPSRequired, n.FIPSRequired)
	c.flag(rule, "require.push.number_matching", o.PushNumberMatching, n.PushNumberMatching)
	c.window(rule, "require.enroll_within", o.EnrollWithin, n.EnrollWithin, false)
	c.window(rule, "require.max_inactivity", o.MaxInactivity, n.MaxInactivity, true)
	c.allow(rule, "require.verification_kinds", o.VerificationKinds, n.VerificationKinds)
}

func (c *changes) minimum(rule, field string, o, n int) {
	switch {
	case n > o:
		c.add(rule, field, Stricter, strconv.Itoa(o), strconv.Itoa(n), "%s raised from %d to %d", field, o, n)
	case n < o:
		c.add(rule, field, Weaker, strconv.Itoa(o), strconv.Itoa(n), "%s lowered from %d to %d", field, o, n)
	}
}

func (c *changes) flag(rule, field string, o, n bool) {
	switch {
	case n && !o:
		c.add(rule, field, Stricter, "false", "true", "%s turned on", field)
	case o && !n:
		c.add(rule, field, Weaker, "true", "false", "%s turned off", field)
	}
}

// allow compares allow lists, where nil allows everything.
func (c *changes) allow(rule, field string, o, n []string) {
	switch {
	case o == nil && n == nil:
	case o == nil:
		c.add(rule, field, Stricter, "any", joinList(n), "%s now limited to %s", field, joinList(n))
	case n == nil:
		c.add(rule, field, Weaker, joinList(o), "any", "%s no longer limited (was %s)", field, joinList(o))
	default:
		if added := minus(n, o); len(added) > 0 {
			c.add(rule, field, Weaker, joinList(o), joinList(n), "%s now also allows %s", field, joinList(added))
		}
		if removed := minus(o, n); len(removed) > 0 {
			c.add(rule, field, Stricter, joinList(o), joinList(n), "%s no longer allows %s", field, joinList(removed))
		}
	}
}

// coverage compares lists where more entries is stricter: deny lists,
// blocked advisories, and the groups and roles a rule covers.
func (c *changes) coverage(rule, field string, o, n []string) {
	if added := minus(n, o); len(added) > 0 {
		c.add(rule, field, Stricter, joinList(o), joinList(n), "%s adds %s", field, joinList(added))
	}
	if removed := minus(o, n); len(removed) > 0 {
		c.add(rule, field, Weaker, joinList(o), joinList(n), "%s drops %s", field, joinList(removed))
	}
}

func (c *changes) firmware(rule string, o, n *Requirements) {
	const field = "require.min_firmware"
	models := make([]string, 0, len(o.MinFirmware)+len(n.MinFirmware))
	for m := range o.MinFirmware {
		models = append(models, m)
	}
	for m := range n.MinFirmware {
		if _, ok := o.MinFirmware[m]; !ok {
			models = append(models, m)
		}
	}
	slices.Sort(models)
	for _, m := range models {
		ov, oOK := o.MinFirmware[m]
		nv, nOK := n.MinFirmware[m]
		switch {
		case !oOK || (nOK && ov.Less(nv)):
			c.add(rule, field, Stricter, versionOr(ov, oOK), nv.String(), "%s for %s raised to %s", field, m, nv)
		case !nOK || nv.Less(ov):
			c.add(rule, field, Weaker, ov.String(), versionOr(nv, nOK), "%s for %s lowered from %s", field, m, ov)
		}
	}
}

// window compares durations where shorter is stricter. When zeroIsNever,
// zero means "no limit" (the loosest); otherwise it means "at once".
func (c *changes) window(rule, field string, o, n time.Duration, zeroIsNever bool) {
	if o == n {
		return
	}
	shorter := n < o
	if zeroIsNever && (o == 0 || n == 0) {
		shorter = o == 0
	}
	ov, nv := durationOr(o, zeroIsNever), durationOr(n, zeroIsNever)
	if shorter {
		c.add(rule, field, Stricter, ov, nv, "%s shortened from %s to %s", field, ov, nv)
	} else {
		c.add(rule, field, Weaker, ov, nv, "%s lengthened from %s to %s", field, ov, nv)
	}
}

func durationOr(v time.Duration, zeroIsNever bool) string {
	switch {
	case v == 0 && zeroIsNever:
		return "no limit"
	case v == 0:
		return "none"
	}
	return formatDuration(v)
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
