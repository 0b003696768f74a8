package policy

import (
	"fmt"
	"slices"
	"time"
)

// Grace holds at sign-in as it holds for compliance: a rule's
// allowed_kinds and verification_kinds restrict the kinds a user may
// verify with from the rule's deadline on (first applied +
// enroll_within; at once when enroll_within is absent). Before it the
// user is in grace for that rule and still signs in with what they have,
// so that they can sign in and enrol what the rule asks for. Evaluate
// reports the same kinds (Decision.AcceptableKinds), so the MFA status
// and verification agree.

// VerificationKinds says which factor kinds the user may verify with at
// now: the acceptable kinds of the rules whose deadline has passed (nil:
// any kind). When rules still in grace will narrow them, later holds the
// kinds acceptable once every deadline has passed and from the earliest
// of those deadlines; otherwise from is zero.
func VerificationKinds(doc *Document, u User, firstApplied map[string]time.Time, now time.Time) (kinds, later []string, from time.Time) {
	if doc == nil {
		return nil, nil, time.Time{}
	}
	rules := doc.matching(u)
	var inForce []*Rule
	for _, r := range rules {
		due, ok := ruleDeadline(r, firstApplied, now)
		if !ok || !now.Before(due) {
			inForce = append(inForce, r)
			continue
		}
		if restrictsKinds(r) && (from.IsZero() || due.Before(from)) {
			from = due
		}
	}
	kinds = kindsOf(inForce)
	if from.IsZero() {
		return kinds, nil, time.Time{}
	}
	later = kindsOf(rules)
	if slices.Equal(later, kinds) {
		return kinds, nil, time.Time{}
	}
	return kinds, later, from
}

// ruleDeadline is first applied + enroll_within; ok is false when the
// rule asks for compliance at once.
func ruleDeadline(r *Rule, firstApplied map[string]time.Time, now time.Time) (time.Time, bool) {
	if r.Require.EnrollWithin <= 0 {
		return time.Time{}, false
	}
	t, seen := firstApplied[r.Name]
	if !seen || t.IsZero() {
		t = now // applies from now: its grace starts now
	}
	return t.Add(r.Require.EnrollWithin), true
}

func restrictsKinds(r *Rule) bool {
	return r.Require.AllowedKinds != nil || r.Require.VerificationKinds != nil
}

// kindsOf is the acceptable kinds of rules combined, sorted; nil: any.
func kindsOf(rules []*Rule) []string {
	if len(rules) == 0 {
		return nil
	}
	req, _ := combine(rules)
	out := acceptableKinds(&req)
	if out != nil {
		slices.Sort(out)
	}
	return out
}

// CheckVerificationAt is CheckVerification honouring grace (see
// VerificationKinds): it returns nil, or a [*RequirementError] (wrapping
// ErrRequirement) with code kind_not_acceptable.
func CheckVerificationAt(doc *Document, u User, kind string, firstApplied map[string]time.Time, now time.Time) error {
	ok, _, _ := VerificationKinds(doc, u, firstApplied, now)
	if ok == nil || slices.Contains(ok, kind) {
		return nil
	}
	return &RequirementError{UserID: u.ID, Kind: kind, Reasons: []Reason{{Code: CodeKindNotAcceptable,
		Message: fmt.Sprintf("%s may not sign in with a %s factor; the policy accepts only %s", who(u), kind, orNothing(ok))}}}
}

// holdsKind reports whether an active factor has a kind in kinds.
func holdsKind(fs []Factor, kinds []string) bool {
	return slices.ContainsFunc(fs, func(f Factor) bool { return f.State == FactorActive && slices.Contains(kinds, f.Kind) })
}

// narrowingStep tells the user, while they may still sign in with kinds
// that a rule in grace will stop accepting, when that ends (Evaluate says
// it only to a user who holds no factor of the kinds accepted then).
func narrowingStep(kinds, later []string, from time.Time) string {
	if from.IsZero() {
		return ""
	}
	was := "any factor"
	if kinds != nil {
		was = orList(kinds)
	}
	return fmt.Sprintf("Until %s you may sign in with %s; from then on only with %s: enrol one before.",
		formatTime(from), was, orNothing(later))
}
