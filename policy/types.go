package policy

import (
	"slices"
	"time"

	"github.com/keyfleet/keyfleet/attest"
)

// User is what the policy needs to know about a user. The daemon maps its
// own user record into it.
type User struct {
	ID        string
	Username  string
	Groups    []string
	Roles     []string
	Kind      string // "person" or "service"; empty means person
	CreatedAt time.Time
}

// Factor is what the policy needs to know about a factor.
type Factor struct {
	ID          string
	Kind        string // "piv", "fido2", "totp" or a plugin's kind
	State       string // "pending", "active", "suspended", "revoked"
	CreatedAt   time.Time
	ActivatedAt *time.Time
	LastUsedAt  *time.Time
	// Evidence is the verified attestation kept with the factor; nil when
	// the factor has none (TOTP, a key enrolled without attestation).
	Evidence *attest.Evidence
	// Hardware is true for a factor whose secret lives in a hardware token
	// (PIV, a FIDO2 security key). The daemon decides it per kind.
	Hardware bool
	// Params are a software factor's public parameters (a TOTP factor's
	// "algorithm", "digits", "period"); nil when it has none.
	Params map[string]string
}

// Factor states, as the daemon names them.
const (
	FactorActive  = "active"
	FactorRevoked = "revoked"
)

// Exemption excuses one user from the policy until a time. The daemon
// approves it (two people) and stores it; the policy only reads it.
type Exemption struct {
	UserID string
	Reason string
	Until  time.Time
}

// Status is the verdict of an evaluation.
type Status string

// Statuses.
const (
	// StatusCompliant: the user meets every requirement, is exempt, or no
	// rule applies.
	StatusCompliant Status = "compliant"
	// StatusGrace: the user falls short but the deadline has not passed.
	StatusGrace Status = "grace"
	// StatusNonCompliant: the user falls short and the deadline has passed.
	StatusNonCompliant Status = "non_compliant"
)

// Reason explains one part of a decision. FactorID is set when the reason
// is about one factor. docs/policy.md lists every code.
type Reason struct {
	Code     string `json:"code"`
	Message  string `json:"message"`
	FactorID string `json:"factor_id,omitempty"`
}

// Reason codes.
const (
	CodeExempt             = "exempt"
	CodeNotRequired        = "not_required"
	CodeTooFewFactors      = "too_few_factors"
	CodeTooFewHardware     = "too_few_hardware"
	CodePrivilegedHardware = "privileged_hardware"
	CodeConflictingRules   = "conflicting_rules"
	CodeStale              = "stale"
	CodeKindNotAllowed     = "kind_not_allowed"
	CodeAttestationMissing = "attestation_missing"
	CodeVendorNotAllowed   = "vendor_not_allowed"
	CodeAAGUIDNotAllowed   = "aaguid_not_allowed"
	CodeAAGUIDDenied       = "aaguid_denied"
	CodeAAGUIDUnattested   = "aaguid_unattested"
	CodeFirmwareTooOld     = "firmware_too_old"
	CodeAdvisoryBlocked    = "advisory_blocked"
	CodeAdvisory           = "advisory"
	CodePINPolicy          = "pin_policy"
	CodeTouchPolicy        = "touch_policy"
	CodeTOTPParameters     = "totp_parameters"
	CodeNumberMatching     = "number_matching"
	CodeFIPSRequired       = "fips_required"
	CodeKindNotAcceptable  = "kind_not_acceptable"
	CodeLastFactor         = "last_factor"
)

// Decision is the outcome of Evaluate.
type Decision struct {
	Status Status `json:"status"`
	// GraceUntil is the deadline while Status is StatusGrace; zero otherwise.
	GraceUntil time.Time `json:"grace_until,omitzero"`
	// Deadline is when the requirements the user falls short of are (or
	// were) due; zero when the user meets them.
	Deadline time.Time `json:"deadline,omitzero"`
	// ExemptUntil is set when an exemption makes the user compliant.
	ExemptUntil time.Time `json:"exempt_until,omitzero"`
	// Reasons explain the status, and every active factor that does not
	// count (stale, refused by a requirement) or has a known advisory.
	Reasons []Reason `json:"reasons"`
	// NextSteps say, in words for the user, what to do.
	NextSteps []string `json:"next_steps,omitempty"`
	// MustEnrol is true when the user must enrol another factor.
	MustEnrol bool `json:"must_enrol"`
	// AcceptableKinds are the factor kinds the user may verify with now,
	// sorted; nil means any kind. A rule in grace does not narrow them yet
	// (VerificationKinds); NextSteps then say from when it will.
	AcceptableKinds []string `json:"acceptable_kinds,omitempty"`
	// Stale and Vulnerable list factor IDs: active factors unused for
	// longer than the policy allows, and factors on hardware with a known
	// advisory (blocking or not).
	Stale      []string `json:"stale,omitempty"`
	Vulnerable []string `json:"vulnerable,omitempty"`
	// Counted is the number of active factors that satisfy every
	// requirement; CountedHardware those of them that are hardware.
	Counted         int `json:"counted"`
	CountedHardware int `json:"counted_hardware"`
	// Rules names every rule that applies to the user, built-in ones
	// included, sorted. Keep first-applied times only for these.
	Rules []string `json:"rules,omitempty"`
	// NewlyApplied holds the rules applying to the user for the first
	// time (absent from the caller's firstApplied map), at now. The daemon
	// persists them; deadlines count from them.
	NewlyApplied map[string]time.Time `json:"newly_applied,omitempty"`
}

// Exempt reports whether an exemption made the user compliant.
func (d Decision) Exempt() bool { return !d.ExemptUntil.IsZero() }

// HasReason reports whether the decision carries a reason with the code.
func (d Decision) HasReason(code string) bool {
	return slices.ContainsFunc(d.Reasons, func(r Reason) bool { return r.Code == code })
}
