package core

import (
	"fmt"
	"slices"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/policy"
)

// A policy can shut every administrator out: a rule that lets admins sign
// in only with a kind none of them holds leaves nobody to sign in to the
// dashboard or make a token, and so nobody to undo it but the break-glass
// quorum. The dry run counts the administrators who could sign in with a
// security key (an active hardware factor of a kind the policy accepts
// for them at sign-in) under the current document and under the new one,
// at once and once every rule's grace has run out, and warns when the new
// one leaves none.

// adminSignIn counts administrators who can sign in.
type adminSignIn struct {
	admins            int
	before, now, last int
	from              time.Time // when the new document's grace runs out for the last one
}

// add counts one user (admins only).
func (a *adminSignIn) add(cur, next *policy.Document, u policy.User, fs []policy.Factor, fa map[string]time.Time, now time.Time) {
	if u.Kind == api.KindService || !slices.Contains(u.Roles, api.RoleAdmin) {
		return
	}
	a.admins++
	if k, _, _ := policy.VerificationKinds(cur, u, fa, now); signsInWith(k, fs) {
		a.before++
	}
	kinds, later, from := policy.VerificationKinds(next, u, fa, now)
	if signsInWith(kinds, fs) {
		a.now++
		if from.IsZero() || signsInWith(later, fs) {
			a.last++
		} else if a.from.IsZero() || from.After(a.from) {
			a.from = from
		}
	}
}

// signsInWith reports whether an active hardware factor has a kind in
// kinds (nil: any kind).
func signsInWith(kinds []string, fs []policy.Factor) bool {
	return slices.ContainsFunc(fs, func(f policy.Factor) bool {
		return f.State == policy.FactorActive && f.Hardware && (kinds == nil || slices.Contains(kinds, f.Kind))
	})
}

// warnings says what the dry run found about administrators signing in.
func (a adminSignIn) warnings() []string {
	switch {
	case a.admins == 0 || a.before == 0:
		return nil
	case a.now == 0:
		return []string{fmt.Sprintf("No administrator could sign in under this policy: none of the %d who can today holds an active security key of a kind it accepts for them at sign-in. Nobody could then sign in to the dashboard or make a token, and only the break-glass quorum could undo it. Change the rule, or enrol such keys first.", a.before)}
	case a.last == 0:
		return []string{fmt.Sprintf("From %s no administrator could sign in under this policy: when its grace runs out, none of them holds an active security key of a kind it accepts at sign-in. Enrol such keys before then, or change the rule.", a.from.UTC().Format(time.DateOnly))}
	}
	return nil
}
