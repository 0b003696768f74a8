package policy

import (
	"fmt"
	"slices"
	"time"
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

// CheckVerificationOf is CheckVerificationAt for one factor: its kind
// (grace honoured), and what the policy asks of how a factor of that kind
// verifies (push factors must match numbers when push.number_matching is
// set, from the start: it is how a kind verifies, not which kinds). It
// returns nil or a [*RequirementError].
func CheckVerificationOf(doc *Document, u User, f Factor, firstApplied map[string]time.Time, now time.Time) error {
	if err := CheckVerificationAt(doc, u, f.Kind, firstApplied, now); err != nil || doc == nil || f.Kind != "push" {
		return err
	}
	rules := doc.matching(u)
	if len(rules) == 0 {
		return nil
	}
	req, _ := combine(rules)
	if !req.PushNumberMatching || f.Params["number_matching"] == "true" {
		return nil
	}
	return &RequirementError{UserID: u.ID, Kind: f.Kind, Reasons: []Reason{{Code: CodeNumberMatching, FactorID: f.ID,
		Message: fmt.Sprintf("%s may not sign in with push factor %s: it approves without number matching, which the policy requires; enrol the companion again", who(u), f.ID)}}}
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

// EnrolOptions says what a factor enrolled for the user must be made with,
// so that CheckEnrolment will accept it: for PIV the PIN and touch
// policies ("pin_policy", "touch_policy"), for TOTP the "algorithm",
// "digits" and "period"; nil when the policy asks nothing of the kind.
// The keys match the kinds' enrolment options. Of several accepted
// values it picks the one most apps and people live with best.
func EnrolOptions(doc *Document, u User, kind string) map[string]string {
	if doc == nil {
		return nil
	}
	rules := doc.matching(u)
	if len(rules) == 0 {
		return nil
	}
	req, _ := combine(rules)
	out := map[string]string{}
	for _, o := range enrolOptionLists(&req, kind) {
		if v := firstAccepted(o.preference, o.accepted); v != "" {
			out[o.key] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// enrolOption is one enrolment option a policy constrains: its key, the
// values the policy accepts (nil: any) and the order of preference.
type enrolOption struct {
	key        string
	accepted   []string
	preference []string
}

func enrolOptionLists(req *Requirements, kind string) []enrolOption {
	switch kind {
	case "piv":
		return []enrolOption{{"pin_policy", req.PINPolicies, pinPreference}, {"touch_policy", req.TouchPolicies, touchPreference}}
	case "totp":
		return []enrolOption{{"algorithm", req.TOTPAlgorithms, totpAlgorithmPreference},
			{"digits", req.TOTPDigits, totpDigitsPreference}, {"period", req.TOTPPeriods, totpPeriodPreference}}
	case "push":
		if req.PushNumberMatching {
			return []enrolOption{{"number_matching", []string{"true"}, []string{"true"}}}
		}
	}
	return nil
}

// The TOTP values most authenticator apps handle: SHA-1, six digits, 30 s.
var (
	totpAlgorithmPreference = []string{"SHA1", "SHA256", "SHA512"}
	totpDigitsPreference    = []string{"6", "8"}
	totpPeriodPreference    = []string{"30", "60"}
)

// normalTOTP writes a requested TOTP algorithm or period as the policy
// lists it ("sha-256" → "SHA256", "060" → "60"); a value that does not
// read stays as it is (and is refused).
func normalTOTP(key, v string) string {
	check := totpAlgorithm
	if key == "period" {
		check = totpPeriod
	}
	if n, complaint := check(v); complaint == "" {
		return n
	}
	return v
}

// CheckEnrolOptions refuses enrolment options outside what the policy
// accepts for the user: a TOTP algorithm, code length or time step, a PIV
// PIN or touch policy the matching rules do not list. Options the policy
// does not constrain pass. It returns nil or a *RequirementError.
func CheckEnrolOptions(doc *Document, u User, kind string, opts map[string]string) error {
	if doc == nil || len(opts) == 0 {
		return nil
	}
	rules := doc.matching(u)
	if len(rules) == 0 {
		return nil
	}
	req, _ := combine(rules)
	var reasons []Reason
	for _, o := range enrolOptionLists(&req, kind) {
		v, asked := opts[o.key]
		if o.key == "algorithm" || o.key == "period" {
			v = normalTOTP(o.key, v)
		}
		if asked && o.accepted != nil && !slices.Contains(o.accepted, v) {
			code := CodeTOTPParameters
			switch kind {
			case "piv":
				code = map[string]string{"pin_policy": CodePINPolicy, "touch_policy": CodeTouchPolicy}[o.key]
			case "push":
				code = CodeNumberMatching
			}
			reasons = append(reasons, Reason{Code: code, Message: fmt.Sprintf("%s %s %q is not one the policy accepts for %s (%s)",
				kind, o.key, v, who(u), orNothing(o.accepted))})
		}
	}
	if reasons != nil {
		return &RequirementError{UserID: u.ID, Kind: kind, Reasons: reasons}
	}
	return nil
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
