package policy

import (
	"slices"
	"time"

	"github.com/keyfleet/keyfleet/attest"
)

// SchemaVersion is the only document version this package reads.
const SchemaVersion = 1

// BuiltinPrivileged names the built-in rule that holds privileged users
// (admin, security_officer) to two hardware factors. It appears in
// Decision.Rules and first-applied maps like any rule; document rule names
// cannot contain ':' so it never collides.
const BuiltinPrivileged = "builtin:privileged"

// DefaultPrivilegedEnrollWithin is the built-in privileged rule's deadline
// when the document does not set privileged_enroll_within.
const DefaultPrivilegedEnrollWithin = 14 * 24 * time.Hour

// MaxPrivilegedEnrollWithin bounds privileged_enroll_within: a document
// can delay the invariant, never switch it off.
const MaxPrivilegedEnrollWithin = 90 * 24 * time.Hour

// privilegedRoles need two hardware factors whatever the document says.
var privilegedRoles = []string{"admin", "security_officer"}

// Privileged reports whether the user holds a privileged role.
func Privileged(u User) bool {
	return slices.ContainsFunc(u.Roles, func(r string) bool { return slices.Contains(privilegedRoles, r) })
}

// Document is a parsed, valid policy document. Build one with Parse.
type Document struct {
	Version     int
	Description string
	// PrivilegedEnrollWithin is the deadline of the built-in privileged
	// rule (default DefaultPrivilegedEnrollWithin).
	PrivilegedEnrollWithin time.Duration
	// SelfService holds how people without a security key reach their
	// own pages (selfservice.go).
	SelfService SelfService
	Rules       []Rule
}

// Rule applies requirements to the users it matches.
type Rule struct {
	Name        string
	Description string
	Match       Match
	Require     Requirements
}

// Match selects users: users of one of UserKinds (default person) who are
// in one of Groups or hold one of Roles, or all of them with Everyone.
type Match struct {
	Everyone  bool
	Groups    []string
	Roles     []string
	UserKinds []string
}

// Requirements of one rule, or the combination of several. A nil list
// means "no restriction"; an empty, non-nil list (only ever the result of
// combining rules) means nothing is acceptable.
type Requirements struct {
	MinFactors          int
	MinHardwareFactors  int
	AllowedKinds        []string
	AttestationRequired bool
	AllowedVendors      []string
	AllowedAAGUIDs      []string
	DeniedAAGUIDs       []string
	MinFirmware         map[string]attest.Version // model line → minimum
	BlockAdvisories     []string
	PINPolicies         []string // acceptable PIV PIN policies
	TouchPolicies       []string // acceptable PIV touch policies
	// TOTP parameters an authenticator-app factor may have: algorithm
	// ("SHA1", "SHA256", "SHA512"), code length ("6", "8") and time step
	// in seconds ("15" to "120"), as decimal strings.
	TOTPAlgorithms []string
	TOTPDigits     []string
	TOTPPeriods    []string
	FIPSRequired   bool
	// PushNumberMatching requires push factors to use number matching
	// (the user picks the number the sign-in shows from three on the
	// device), not a bare approve button.
	PushNumberMatching bool
	// EnrollWithin is how long after the rule first applies the user has
	// to comply; zero means at once.
	EnrollWithin time.Duration
	// MaxInactivity is how long an active factor may go unused before it
	// is stale and stops counting; zero means never.
	MaxInactivity     time.Duration
	VerificationKinds []string

	// firmwareFrom, set only on a combination, holds the rules whose
	// MinFirmware tables apply (MinFirmware is then nil).
	firmwareFrom []*Rule
}

// matches reports whether the rule selects the user.
func (m Match) matches(u User) bool {
	kind := u.Kind
	if kind == "" {
		kind = "person"
	}
	kinds := m.UserKinds
	if kinds == nil {
		kinds = defaultUserKinds
	}
	if !slices.Contains(kinds, kind) {
		return false
	}
	if m.Everyone {
		return true
	}
	return intersects(m.Groups, u.Groups) || intersects(m.Roles, u.Roles)
}

var defaultUserKinds = []string{"person"}

func intersects(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// privilegedRule is the built-in invariant as a rule.
func (d *Document) privilegedRule() Rule {
	within := d.PrivilegedEnrollWithin
	if within == 0 {
		within = DefaultPrivilegedEnrollWithin
	}
	return Rule{
		Name:        BuiltinPrivileged,
		Description: "admins and security officers need two hardware factors",
		Match:       Match{Roles: privilegedRoles, UserKinds: []string{"person", "service"}},
		Require:     Requirements{MinFactors: 2, MinHardwareFactors: 2, EnrollWithin: within},
	}
}

// matching returns the rules that apply to the user, the built-in
// privileged rule last.
func (d *Document) matching(u User) []*Rule {
	out := make([]*Rule, 0, 8)
	for i := range d.Rules {
		if d.Rules[i].Match.matches(u) {
			out = append(out, &d.Rules[i])
		}
	}
	if Privileged(u) {
		r := d.privilegedRule()
		out = append(out, &r)
	}
	return out
}

// RulesLeft names the document's rules that select before but not after:
// moving a user from before to after (out of a group, or a role) takes
// those rules' requirements off them, which is a weakening. The built-in
// privileged rule is not listed: it follows the privilege itself, and
// leaving it means the privilege is gone too. doc may be nil (no rules).
func RulesLeft(doc *Document, before, after User) []string {
	if doc == nil {
		return nil
	}
	var out []string
	for _, r := range doc.Rules {
		if r.Match.matches(before) && !r.Match.matches(after) {
			out = append(out, r.Name)
		}
	}
	return out
}
