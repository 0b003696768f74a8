package api

import "time"

// Actions of the policy engine that need a second approver.
const (
	// ActionPolicyApply applies a policy version that weakens a
	// requirement (an apply or a rollback).
	ActionPolicyApply = "policy.apply"
	// ActionUserExempt exempts a user from the policy until a time.
	ActionUserExempt = "user.exempt"
)

// PolicyDocument is the JSON body of POST /v1/policy and
// POST /v1/policy/dry-run. Both routes also take the YAML document itself
// as the body (Content-Type application/yaml), with the comment in
// ?comment=.
type PolicyDocument struct {
	// Document is the policy YAML (see docs/policy.md).
	Document string `json:"document"`
	// Comment says why, for the approver and the audit log.
	Comment string `json:"comment,omitempty"`
}

// PolicyRollback is the body of POST /v1/policy/rollback: make an earlier
// version's document current again, as a new version.
type PolicyRollback struct {
	Version int    `json:"version"`
	Comment string `json:"comment,omitempty"`
}

// PolicyVersion is one applied policy document. Versions count from 1 and
// are never changed or deleted; a rollback makes a new version.
type PolicyVersion struct {
	Version     int    `json:"version"`
	SHA256      string `json:"sha256"`
	Size        int    `json:"size"`
	Rules       int    `json:"rules"`
	Description string `json:"description,omitempty"`
	AppliedBy   Actor  `json:"applied_by"`
	// ApprovedBy and ApprovalID are set when the version weakened the
	// policy and a second person approved it.
	ApprovedBy *Actor    `json:"approved_by,omitempty"`
	ApprovalID string    `json:"approval_id,omitempty"`
	AppliedAt  time.Time `json:"applied_at"`
	Comment    string    `json:"comment,omitempty"`
	RollbackOf int       `json:"rollback_of,omitempty"`
	// Document is the YAML; only single-version answers carry it.
	Document string `json:"document,omitempty"`
}

// CurrentPolicy is the answer to GET /v1/policy. Version is 0 and Current
// absent when no document was ever applied: then only the built-in
// invariants apply.
type CurrentPolicy struct {
	Version int            `json:"version"`
	Current *PolicyVersion `json:"current,omitempty"`
}

// PolicyChange is one requirement that differs between two documents.
type PolicyChange struct {
	Rule    string `json:"rule,omitempty"`
	Field   string `json:"field"`
	Effect  string `json:"effect"` // stricter or weaker
	Old     string `json:"old,omitempty"`
	New     string `json:"new,omitempty"`
	Message string `json:"message"`
}

// PolicyDiff is the answer to GET /v1/policy/diff. Version 0 is the empty
// document.
type PolicyDiff struct {
	From    int            `json:"from"`
	To      int            `json:"to"`
	Weakens bool           `json:"weakens"`
	Changes []PolicyChange `json:"changes"`
}

// PolicyUserChange is one user whose status a policy change would change.
type PolicyUserChange struct {
	UserID   string     `json:"user_id"`
	Username string     `json:"username"`
	From     string     `json:"from"`
	To       string     `json:"to"`
	Deadline *time.Time `json:"deadline,omitempty"`
	Reasons  []string   `json:"reasons,omitempty"`
}

// PolicyDryRun is the answer to POST /v1/policy/dry-run: what applying the
// document would do, computed without changing anything.
type PolicyDryRun struct {
	BaseVersion int            `json:"base_version"`
	SHA256      string         `json:"sha256"`
	Weakens     bool           `json:"weakens"`
	Changes     []PolicyChange `json:"changes"`
	Users       int            `json:"users"`
	// Changed counts users whose status would change; Transitions counts
	// them by "from->to".
	Changed     int              `json:"changed"`
	Transitions map[string]int   `json:"transitions"`
	Before      ComplianceCounts `json:"before"`
	After       ComplianceCounts `json:"after"`
	// ChangedUsers lists the users whose status would change, the first
	// MaxListedUsers of them; Truncated says there are more.
	ChangedUsers []PolicyUserChange `json:"changed_users"`
	Truncated    bool               `json:"truncated,omitempty"`
	// AdminsSignIn counts the administrators who could sign in with a
	// security key before and after; Warnings say in words what would go
	// wrong (no administrator left who can sign in).
	AdminsSignIn AdminsSignIn `json:"admins_sign_in"`
	Warnings     []string     `json:"warnings,omitempty"`
}

// AdminsSignIn counts administrators who could sign in with a security
// key of a kind the policy accepts for them: under the current document
// (Before), under the new one at once (After), and under the new one once
// every rule's grace has run out (AfterGrace).
type AdminsSignIn struct {
	Admins     int `json:"admins"`
	Before     int `json:"before"`
	After      int `json:"after"`
	AfterGrace int `json:"after_grace"`
}

// MaxListedUsers caps the user lists in dry runs and reports.
const MaxListedUsers = 1000

// Reevaluation summarises the re-evaluation of every user after a policy
// version became current.
type Reevaluation struct {
	Users int `json:"users"`
	// Started counts users for whom a rule applied for the first time:
	// their enrolment deadline started now.
	Started      int    `json:"started"`
	Grace        int    `json:"grace"`
	NonCompliant int    `json:"non_compliant"`
	Error        string `json:"error,omitempty"`
}

// PolicyApplied is the 201 answer to POST /v1/policy and
// /v1/policy/rollback when the change applied at once (it weakened
// nothing). A weakening change answers 202 with an [Accepted] instead.
type PolicyApplied struct {
	Version      PolicyVersion `json:"version"`
	Reevaluation Reevaluation  `json:"reevaluation"`
}

// CreateExemption is the body of POST /v1/users/{user}/exemptions. The
// exemption starts when a second person approves it and ends at Until.
type CreateExemption struct {
	Until  time.Time `json:"until"`
	Reason string    `json:"reason"`
}

// PolicyReason is one reason of a policy decision; docs/policy.md lists
// the codes.
type PolicyReason struct {
	Code     string `json:"code"`
	Message  string `json:"message"`
	FactorID string `json:"factor_id,omitempty"`
}

// ComplianceCounts aggregate policy decisions over a set of users.
type ComplianceCounts struct {
	Users             int     `json:"users"`
	WithFactor        int     `json:"with_factor"`
	Adoption          float64 `json:"adoption"`
	Compliant         int     `json:"compliant"`
	Grace             int     `json:"grace"`
	NonCompliant      int     `json:"non_compliant"`
	Exempt            int     `json:"exempt"`
	StaleFactors      int     `json:"stale_factors"`
	VulnerableFactors int     `json:"vulnerable_factors"`
}

// ReportUser is one user in a compliance report's lists.
type ReportUser struct {
	UserID   string     `json:"user_id"`
	Username string     `json:"username"`
	Status   string     `json:"status"`
	Deadline *time.Time `json:"deadline,omitempty"`
	Reasons  []string   `json:"reasons,omitempty"`
}

// ComplianceReport is the answer to GET /v1/reports/compliance.
type ComplianceReport struct {
	PolicyVersion int       `json:"policy_version"`
	GeneratedAt   time.Time `json:"generated_at"`
	Group         string    `json:"group,omitempty"`
	// NearDays is the window of NearDeadline, in days.
	NearDays        int                         `json:"near_days"`
	Overall         ComplianceCounts            `json:"overall"`
	ByGroup         map[string]ComplianceCounts `json:"by_group"`
	ByRole          map[string]ComplianceCounts `json:"by_role"`
	KindsInUse      map[string]int              `json:"kinds_in_use"`
	PrivilegedShort int                         `json:"privileged_short"`
	// NonCompliant lists users past their deadline; NearDeadline users in
	// grace whose deadline falls within NearDays. Each list holds at most
	// MaxListedUsers; Truncated says one was cut.
	NonCompliant []ReportUser `json:"non_compliant"`
	NearDeadline []ReportUser `json:"near_deadline"`
	Truncated    bool         `json:"truncated,omitempty"`
	// RecoveryCodes counts users by their unused recovery codes.
	RecoveryCodes RecoveryCodeCounts `json:"recovery_codes"`
	// BreakGlass is the break-glass credential's state; NeedsRotation
	// reads "used, not rotated".
	BreakGlass *BreakGlassStatus `json:"break_glass,omitempty"`
	// ServiceTokensWithoutExpiry counts live service-account tokens that
	// never expire: each should name one (keyfleet report privileged
	// lists them).
	ServiceTokensWithoutExpiry int `json:"service_tokens_without_expiry"`
	// IgnoredPushes lists active push factors whose last pushes in a row
	// went unanswered (at least IgnoredPushesThreshold): a companion that
	// no longer receives, or a user who ignores prompts (perhaps ones
	// they did not start). At most MaxListedUsers.
	IgnoredPushes []IgnoredPushes `json:"ignored_pushes"`
}

// IgnoredPushesThreshold is how many unanswered pushes in a row put a
// factor in the compliance report.
const IgnoredPushesThreshold = 3

// IgnoredPushes is one push factor in the compliance report.
type IgnoredPushes struct {
	UserID           string     `json:"user_id"`
	Username         string     `json:"username"`
	FactorID         string     `json:"factor_id"`
	Label            string     `json:"label,omitempty"`
	Unanswered       int        `json:"unanswered"`
	LastUnansweredAt *time.Time `json:"last_unanswered_at,omitempty"`
}

// RecoveryCodeCounts counts users by how many unused recovery codes they
// hold (users who never enrolled have none).
type RecoveryCodeCounts struct {
	WithCodes   int `json:"with_codes"`
	Low         int `json:"low"` // 1 or 2 left: they should regenerate
	AllUsed     int `json:"all_used"`
	UnusedTotal int `json:"unused_total"`
}

// ReportFactor is one factor in a stale or vulnerable factors report.
type ReportFactor struct {
	UserID     string     `json:"user_id"`
	Username   string     `json:"username"`
	FactorID   string     `json:"factor_id"`
	Kind       string     `json:"kind"`
	Model      string     `json:"model,omitempty"`
	Serial     uint32     `json:"serial,omitempty"`
	Firmware   string     `json:"firmware,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	// Why is the policy's reason in words (the advisory, or how long the
	// factor has not been used).
	Why string `json:"why"`
}
