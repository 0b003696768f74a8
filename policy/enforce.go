package policy

import (
	"fmt"
	"slices"
)

// CheckEnrolment decides whether the policy accepts a new factor for the
// user: its kind, attestation, vendor, AAGUID, firmware, advisories, PIV
// PIN and touch policies and FIPS status, against every rule that applies
// to the user combined. f carries the verified evidence (nil when there
// is none); its state is ignored. It needs no clock: the evidence was
// verified at enrolment time, and advisories are matched from it.
//
// It returns nil, or a [*RequirementError] (wrapping ErrRequirement) with
// one reason per failed requirement. Exemptions do not apply: an exempt
// user may enrol only factors the policy accepts.
func CheckEnrolment(doc *Document, u User, f Factor) error {
	if doc == nil {
		doc = &Document{Version: SchemaVersion}
	}
	rules := doc.matching(u)
	if len(rules) == 0 {
		return nil
	}
	req, _ := combine(rules)
	fc := factFor(f)
	reasons := fc.check(&req, false)
	if len(reasons) == 0 {
		return nil
	}
	return &RequirementError{UserID: u.ID, Kind: f.Kind, Reasons: reasons}
}

// CheckVerification decides whether the user may verify with a factor of
// the kind: the kinds acceptable at verification are verification_kinds
// within allowed_kinds, combined over every rule that applies to the user.
// It returns nil, or a [*RequirementError] (wrapping ErrRequirement) with
// code kind_not_acceptable.
func CheckVerification(doc *Document, u User, kind string) error {
	if doc == nil {
		return nil
	}
	rules := doc.matching(u)
	if len(rules) == 0 {
		return nil
	}
	req, _ := combine(rules)
	ok := acceptableKinds(&req)
	if ok == nil || slices.Contains(ok, kind) {
		return nil
	}
	return &RequirementError{UserID: u.ID, Kind: kind, Reasons: []Reason{{Code: CodeKindNotAcceptable,
		Message: fmt.Sprintf("%s may not sign in with a %s factor; the policy accepts only %s", who(u), kind, orNothing(ok))}}}
}

// CanRemove is the built-in invariant the daemon checks before it revokes
// or deletes a factor: every person must keep at least one active factor,
// whatever the policy document says, unless a replacement is planned (an
// approved recovery or replacement that enrols a new factor).
//
// Removing a factor that is not active, or a service account's factor,
// is always allowed. It returns nil, [ErrUnknownFactor] (wrapped) when the
// factor is not among factors, or a [*RemovalError] wrapping ErrLastFactor.
func CanRemove(u User, factors []Factor, factorID string, replacementPlanned bool) error {
	i := slices.IndexFunc(factors, func(f Factor) bool { return f.ID == factorID })
	if i < 0 {
		return fmt.Errorf("policy: factor %q of %s: %w", factorID, who(u), ErrUnknownFactor)
	}
	if factors[i].State != FactorActive || u.Kind == "service" || replacementPlanned {
		return nil
	}
	for _, f := range factors {
		if f.ID != factorID && f.State == FactorActive {
			return nil
		}
	}
	return &RemovalError{UserID: u.ID, FactorID: factorID, Message: fmt.Sprintf(
		"factor %s is the last active factor of %s; removing it needs an approved replacement plan", factorID, who(u))}
}

// pinPreference and touchPreference order PIV policies from the one a
// person finds easiest to live with; EnrolOptions picks the first one
// the policy accepts.
var (
	pinPreference   = []string{"once", "always", "never"}
	touchPreference = []string{"always", "cached", "never"}
)

// EnrolOptions says what a key enrolled for the user must be generated
// with, so that CheckEnrolment will accept it: for PIV the PIN and touch
// policies ("pin_policy", "touch_policy"); nil when the policy asks
// nothing of the kind. The keys match the PIV kind's enrolment options.
func EnrolOptions(doc *Document, u User, kind string) map[string]string {
	if doc == nil || kind != "piv" {
		return nil
	}
	rules := doc.matching(u)
	if len(rules) == 0 {
		return nil
	}
	req, _ := combine(rules)
	out := map[string]string{}
	if p := firstAccepted(pinPreference, req.PINPolicies); p != "" {
		out["pin_policy"] = p
	}
	if t := firstAccepted(touchPreference, req.TouchPolicies); t != "" {
		out["touch_policy"] = t
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// firstAccepted is the first of prefs in accepted (empty: anything goes).
func firstAccepted(prefs, accepted []string) string {
	if len(accepted) == 0 {
		return ""
	}
	for _, p := range prefs {
		if slices.Contains(accepted, p) {
			return p
		}
	}
	return accepted[0]
}
