package policy

import (
	"slices"
	"time"

	"github.com/keyfleet/keyfleet/attest"
)

// combine merges the requirements of several rules into the strictest
// combination (docs/policy.md, "How rules combine"). The result does not
// depend on the order of rules. conflicts names the list requirements
// whose intersection came out empty: nothing can satisfy them.
//
//   - min_factors, min_hardware_factors: the largest
//   - allowed_kinds, allowed_vendors, aaguids.allow, piv.pin_policies,
//     piv.touch_policies, totp.algorithms, totp.digits, totp.periods,
//     verification_kinds: the intersection of the rules
//     that set them (a rule that leaves one out does not restrict it)
//   - aaguids.deny, block_advisories: the union
//   - attestation_required, fips_required, push.number_matching: true if
//     any rule says true
//   - min_firmware: per model line, the highest version
//   - max_inactivity: the shortest of the rules that set one
//   - enroll_within: the shortest, for display only: each rule keeps its
//     own deadline, counted from when it first applied (see deadline)
func combine(rules []*Rule) (req Requirements, conflicts []string) {
	for i, r := range rules {
		q := &r.Require
		if i == 0 {
			req = *q // slices and maps are shared, never written
			continue
		}
		req.MinFactors = max(req.MinFactors, q.MinFactors)
		req.MinHardwareFactors = max(req.MinHardwareFactors, q.MinHardwareFactors)
		req.AllowedKinds = intersect(req.AllowedKinds, q.AllowedKinds)
		req.AllowedVendors = intersect(req.AllowedVendors, q.AllowedVendors)
		req.AllowedAAGUIDs = intersect(req.AllowedAAGUIDs, q.AllowedAAGUIDs)
		req.PINPolicies = intersect(req.PINPolicies, q.PINPolicies)
		req.TouchPolicies = intersect(req.TouchPolicies, q.TouchPolicies)
		req.TOTPAlgorithms = intersect(req.TOTPAlgorithms, q.TOTPAlgorithms)
		req.TOTPDigits = intersect(req.TOTPDigits, q.TOTPDigits)
		req.TOTPPeriods = intersect(req.TOTPPeriods, q.TOTPPeriods)
		req.VerificationKinds = intersect(req.VerificationKinds, q.VerificationKinds)
		req.DeniedAAGUIDs = union(req.DeniedAAGUIDs, q.DeniedAAGUIDs)
		req.BlockAdvisories = union(req.BlockAdvisories, q.BlockAdvisories)
		req.AttestationRequired = req.AttestationRequired || q.AttestationRequired
		req.FIPSRequired = req.FIPSRequired || q.FIPSRequired
		req.PushNumberMatching = req.PushNumberMatching || q.PushNumberMatching
		req.MaxInactivity = minPositive(req.MaxInactivity, q.MaxInactivity)
		req.EnrollWithin = min(req.EnrollWithin, q.EnrollWithin)
	}
	req.MinFirmware, req.firmwareFrom = nil, rules // see minFirmwareFor
	return req, emptyLists(req)
}

// emptyLists names the combined lists that allow nothing.
func emptyLists(req Requirements) []string {
	var out []string
	for _, l := range []struct {
		name string
		list []string
	}{
		{"allowed_kinds", req.AllowedKinds},
		{"allowed_vendors", req.AllowedVendors},
		{"aaguids.allow", req.AllowedAAGUIDs},
		{"piv.pin_policies", req.PINPolicies},
		{"piv.touch_policies", req.TouchPolicies},
		{"totp.algorithms", req.TOTPAlgorithms},
		{"totp.digits", req.TOTPDigits},
		{"totp.periods", req.TOTPPeriods},
		{"verification_kinds", req.VerificationKinds},
	} {
		if l.list != nil && len(l.list) == 0 {
			out = append(out, l.name)
		}
	}
	return out
}

// intersect of two sorted sets, where nil means "everything". The result
// is sorted, and non-nil (possibly empty) when either input is non-nil.
func intersect(a, b []string) []string {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	out := make([]string, 0, min(len(a), len(b)))
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// union of two sorted sets; the result is sorted.
func union(a, b []string) []string {
	switch {
	case len(a) == 0:
		return b
	case len(b) == 0:
		return a
	}
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}

// minFirmwareFor returns the minimum firmware for a model line: the
// highest of the rules combined, looked up when needed rather than merged
// into a new table at every evaluation.
func (r *Requirements) minFirmwareFor(model string) (attest.Version, bool) {
	v, ok := r.MinFirmware[model]
	for _, rule := range r.firmwareFrom {
		if w, has := rule.Require.MinFirmware[model]; has && (!ok || v.Less(w)) {
			v, ok = w, true
		}
	}
	return v, ok
}

// minPositive is the smaller of two durations where zero means "unset".
func minPositive(a, b time.Duration) time.Duration {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}
