// Package api holds the JSON wire types that keyfleetd serves and its clients
// (the keyfleet CLI, the workstation agent, applications) send and receive.
//
// The types carry no logic. Every time is UTC in RFC 3339 form; every list is
// paginated with [Page]; every error is an RFC 9457 [Problem].
package api

import (
	"encoding/json"
	"time"
)

// Version is the API path prefix this package describes.
const Version = "v1"

// Roles a principal can hold. See docs/security.md for what each may do.
const (
	RoleAdmin           = "admin"
	RoleSecurityOfficer = "security_officer"
	RoleHelpdesk        = "helpdesk"
	RoleEnroller        = "enroller"
	RoleAuditor         = "auditor"
	RoleService         = "service"
	RoleUser            = "user"
	// RoleScim is a SCIM client's (docs/directory.md): a service account
	// whose token carries it and nothing else provisions users under
	// /scim/v2.
	RoleScim = "scim"
	// RoleLoginHost is a login surface's (docs/pam.md, docs/radius.md): a
	// service account that verifies users like RoleService and may also
	// record login decisions made before any factor was checked and issue
	// first-login passes, which a plain service account may not.
	RoleLoginHost = "login_host"
)

// AllRoles lists every role, most privileged first.
var AllRoles = []string{RoleAdmin, RoleSecurityOfficer, RoleHelpdesk, RoleEnroller, RoleAuditor, RoleScim, RoleLoginHost, RoleService, RoleUser}

// User states.
const (
	UserActive   = "active"
	UserDisabled = "disabled"
)

// User kinds: a person signs in and needs MFA; a service account is an
// application that calls the API with a token.
const (
	KindPerson  = "person"
	KindService = "service"
)

// User is a person or a service account.
type User struct {
	ID          string    `json:"id"`
	Username    string    `json:"username"`
	DisplayName string    `json:"display_name,omitempty"`
	Email       string    `json:"email,omitempty"`
	Kind        string    `json:"kind"`
	Groups      []string  `json:"groups"`
	Roles       []string  `json:"roles"`
	Status      string    `json:"status"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// LockedUntil is set while too many failed verifications lock the
	// user out.
	LockedUntil *time.Time `json:"locked_until,omitempty"`
	// Source is the directory source the user comes from (an LDAP
	// source's name, or scim:<account>), ExternalID their stable id there;
	// both empty for users made by hand (docs/directory.md).
	Source     string `json:"source,omitempty"`
	ExternalID string `json:"external_id,omitempty"`
	// PushesLockedAt is set when the user reported a push as not theirs
	// ("this wasn't me"): no push is sent to them until an administrator
	// unlocks the user (POST /v1/users/{user}/unlock).
	PushesLockedAt *time.Time `json:"pushes_locked_at,omitempty"`
}

// CreateUser is the body of POST /v1/users.
type CreateUser struct {
	Username    string   `json:"username"`
	DisplayName string   `json:"display_name,omitempty"`
	Email       string   `json:"email,omitempty"`
	Kind        string   `json:"kind,omitempty"`
	Groups      []string `json:"groups,omitempty"`
	Roles       []string `json:"roles,omitempty"`
}

// UpdateUser is the body of PATCH /v1/users/{user}. Nil fields are left as
// they are. Disabling a user is not an update: it needs a second approver
// (POST /v1/users/{user}/disable).
type UpdateUser struct {
	DisplayName *string   `json:"display_name,omitempty"`
	Email       *string   `json:"email,omitempty"`
	Groups      *[]string `json:"groups,omitempty"`
	Roles       *[]string `json:"roles,omitempty"`
}

// Factor states. pending → active ⇄ suspended → revoked (terminal).
const (
	FactorPending   = "pending"
	FactorActive    = "active"
	FactorSuspended = "suspended"
	FactorRevoked   = "revoked"
)

// Factor is one authentication factor of a user. Secret material (a seed,
// plugin state) is never part of it.
type Factor struct {
	ID          string          `json:"id"`
	UserID      string          `json:"user_id"`
	Kind        string          `json:"kind"`
	Label       string          `json:"label,omitempty"`
	State       string          `json:"state"`
	DeviceID    string          `json:"device_id,omitempty"`
	CreatedAt   time.Time       `json:"created_at"`
	ActivatedAt *time.Time      `json:"activated_at,omitempty"`
	LastUsedAt  *time.Time      `json:"last_used_at,omitempty"`
	RevokedAt   *time.Time      `json:"revoked_at,omitempty"`
	StateReason string          `json:"state_reason,omitempty"`
	Public      json.RawMessage `json:"public,omitempty"`
	Evidence    json.RawMessage `json:"evidence,omitempty"`
	// LockedUntil is set while too many failed verifications lock the
	// factor.
	LockedUntil *time.Time `json:"locked_until,omitempty"`
	// Unanswered counts the pushes to an out-of-band factor (push) in a
	// row that nobody answered before their deadline; any answer resets
	// it. LastUnansweredAt is when the last one ran out.
	Unanswered       int        `json:"unanswered,omitempty"`
	LastUnansweredAt *time.Time `json:"last_unanswered_at,omitempty"`
	// RecoveryCodes are in the answer to the enrolment that created a
	// user's first factor, and nowhere else: ten single-use codes to keep
	// somewhere safe.
	RecoveryCodes []string `json:"recovery_codes,omitempty"`
}

// UpdateFactor is the body of PATCH /v1/factors/{id}.
type UpdateFactor struct {
	Label *string `json:"label,omitempty"`
}

// StateChange is the optional body of suspend, resume, revoke, lost and
// approval decisions: why the caller acts.
type StateChange struct {
	Reason string `json:"reason,omitempty"`
	// ReplacementPlanned (revoke and delete of a factor only) says a
	// replacement factor is planned, so the user's last active factor may
	// go; without it the policy refuses to remove the last one.
	ReplacementPlanned bool `json:"replacement_planned,omitempty"`
}

// Device states: in_stock → assigned → active → returned → (wipe
// reported) in_stock → assigned again; lost from any live state; retired
// and destroyed at the end. docs/devices.md draws the machine.
const (
	DeviceInStock   = "in_stock"
	DeviceAssigned  = "assigned"
	DeviceActive    = "active"
	DeviceReturned  = "returned"
	DeviceLost      = "lost"
	DeviceRetired   = "retired"
	DeviceDestroyed = "destroyed"
)

// Device is one physical key and the factors on it.
type Device struct {
	ID        string   `json:"id"`
	Vendor    string   `json:"vendor"`
	Model     string   `json:"model,omitempty"`
	Serial    string   `json:"serial"`
	Firmware  string   `json:"firmware,omitempty"`
	UserID    string   `json:"user_id,omitempty"`
	State     string   `json:"state"`
	FactorIDs []string `json:"factor_ids"`
	// LastUserID is who had the key before it was returned.
	LastUserID string     `json:"last_user_id,omitempty"`
	ReturnedAt *time.Time `json:"returned_at,omitempty"`
	// WipedAt is when an agent last reported wiping the key.
	WipedAt *time.Time `json:"wiped_at,omitempty"`
	// FIDO2Wipe is what that wipe did to the key's FIDO2 application
	// (FIDO2Reset, FIDO2Absent); empty on a key wiped before keyfleetd
	// asked for it, whose previous holder's FIDO2 credentials may still be
	// on it: such a key is wiped again before it is assigned.
	FIDO2Wipe string    `json:"fido2_wipe,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// DeviceWipe is the body of POST /v1/devices/{id}/wipe: what an agent
// reset on a returned key. keyfleetd puts the key back in stock only when
// both its applets are accounted for.
type DeviceWipe struct {
	Reason string `json:"reason,omitempty"`
	// PIV says the PIV applet was reset to factory settings (keys,
	// certificates, PIN, PUK and management key).
	PIV bool `json:"piv"`
	// FIDO2 is what became of the FIDO2 application: FIDO2Reset
	// (authenticatorReset: every credential, the previous holder's
	// passkeys for other sites included, and the PIN are gone) or
	// FIDO2Absent (the key has none).
	FIDO2 string `json:"fido2"`
}

// What a wipe did to a key's FIDO2 application (DeviceWipe.FIDO2,
// Device.FIDO2Wipe).
const (
	FIDO2Reset  = "reset"
	FIDO2Absent = "absent"
)

// ReturnDevice is the body of POST /v1/devices/{id}/return.
type ReturnDevice struct {
	Reason string `json:"reason,omitempty"`
	// ReplacementPlanned lets a key carrying the owner's last active
	// factor come back, through approval, as for a factor removal.
	ReplacementPlanned bool `json:"replacement_planned,omitempty"`
}

// DeviceReturn answers POST /v1/devices/{id}/return: the device (now
// returned), the factors revoked at once, and the approvals asked for the
// ones whose removal would leave the owner short of the policy.
type DeviceReturn struct {
	Device    Device     `json:"device"`
	Revoked   []string   `json:"revoked"`
	Approvals []Approval `json:"approvals"`
}

// AssignDevice is the body of POST /v1/devices/{id}/assign.
type AssignDevice struct {
	User   string `json:"user"`
	Reason string `json:"reason,omitempty"`
}

// RetireDevice is the body of POST /v1/devices/{id}/retire.
type RetireDevice struct {
	Reason string `json:"reason,omitempty"`
	// Destroyed records the key as physically destroyed, not only
	// retired.
	Destroyed bool `json:"destroyed,omitempty"`
}

// InventoryRow counts the devices of one vendor, model, firmware and
// state (GET /v1/devices/inventory).
type InventoryRow struct {
	Vendor   string `json:"vendor"`
	Model    string `json:"model,omitempty"`
	Firmware string `json:"firmware,omitempty"`
	State    string `json:"state"`
	Count    int    `json:"count"`
}

// Preflight is the body of POST /v1/enrolments/{id}/preflight: the key
// the agent is about to set up, read before it changes anything.
type Preflight struct {
	Vendor   string `json:"vendor"`
	Serial   string `json:"serial"`
	Firmware string `json:"firmware,omitempty"`
	// DeviceCert is the key's PIV attestation (F9) certificate, DER; the
	// daemon checks it chains to a root it trusts.
	DeviceCert []byte `json:"device_cert,omitempty"`
	// FormFactor is the form factor byte the key's management application
	// reports (1 USB-A keychain … 6 and 7 Bio, 0x80 FIPS; 0 unknown). The
	// F9 certificate does not carry it, so the pre-flight takes it on the
	// agent's word to name the model its policy rules apply to; completion
	// judges the attested one.
	FormFactor uint8 `json:"form_factor,omitempty"`
}

// PreflightResult says the enrolment can go ahead on that key: the
// device as keyfleetd knows it (empty for a key it has never seen) and
// what the enrolment asks of the key. A key that would be refused gets a
// problem instead (409 device-unavailable, 422 policy-violation or
// attestation-refused), before anything on it changes.
type PreflightResult struct {
	Device *Device         `json:"device,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Checks []string        `json:"checks"`
}

// Enrolment states.
const (
	EnrolmentOpen      = "open"
	EnrolmentCompleted = "completed"
	EnrolmentCancelled = "cancelled"
	EnrolmentExpired   = "expired"
)

// Enrolment is a single-use, expiring challenge to register one factor of
// a given kind for a user.
type Enrolment struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	Kind      string    `json:"kind"`
	State     string    `json:"state"`
	Challenge []byte    `json:"challenge"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	FactorID  string    `json:"factor_id,omitempty"`
	// Params are what the factor kind asks of the enrolling side (for PIV,
	// the slot and the PIN and touch policies the policy requires).
	Params json.RawMessage `json:"params,omitempty"`
	// Display is what the kind shows the person enrolling (a TOTP otpauth
	// URI, holding the seed): only to the person who will hold the
	// factor. It is in the answer to POST /v1/enrolments when they made
	// the enrolment themselves; when someone else made it for them, it is
	// in the answer to the redemption of the enrolment code, and in the
	// user's own GET of the open enrolment — never in the creator's.
	Display map[string]string `json:"display,omitempty"`
	// Code is the enrolment code ([EnrolmentCode]) to hand the user, in
	// the answer to POST /v1/enrolments only: they redeem it with
	// keyfleet-agent enroll --code or on the web welcome page.
	Code string `json:"code,omitempty"`
	// CodeRedeemedAt is when the code was redeemed through
	// POST /v1/enrolments/redeem (it works once).
	CodeRedeemedAt *time.Time `json:"code_redeemed_at,omitempty"`
}

// CreateEnrolment is the body of POST /v1/enrolments.
type CreateEnrolment struct {
	User string `json:"user"`
	Kind string `json:"kind"`
	// TTL is a Go duration ("15m"); empty means the daemon's default.
	TTL string `json:"ttl,omitempty"`
	// Options ask the kind for parameters of the new factor (TOTP:
	// "algorithm" SHA1/SHA256/SHA512, "digits" 6/8, "period" 15-120,
	// "issuer"; PIV: "pin_policy", "touch_policy"). The policy's own
	// choices apply to what is left out; a value the policy does not
	// accept for the user is refused.
	Options map[string]string `json:"options,omitempty"`
}

// CompleteEnrolment is the body of POST /v1/enrolments/{id}/complete. The
// payload's shape belongs to the factor kind.
type CompleteEnrolment struct {
	Label   string          `json:"label,omitempty"`
	Payload json.RawMessage `json:"payload"`
}

// Token is an API bearer token's metadata. The secret is returned once, in
// [CreatedToken], and stored only as a hash.
type Token struct {
	ID         string     `json:"id"`
	UserID     string     `json:"user_id"`
	Name       string     `json:"name"`
	Roles      []string   `json:"roles"`
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

// CreateToken is the body of POST /v1/tokens.
type CreateToken struct {
	// User is the id or username the token acts as; empty means the caller.
	User string `json:"user,omitempty"`
	Name string `json:"name"`
	// Roles narrow the user's roles; empty means all of them.
	Roles []string `json:"roles,omitempty"`
	// TTL is a Go duration ("12h"). A person's own token defaults to
	// tokens.person_ttl and may not exceed tokens.max_person_ttl; a
	// service account's token without one never expires and is flagged by
	// the compliance report.
	TTL string `json:"ttl,omitempty"`
}

// CreatedToken is the answer to POST /v1/tokens: the only time the secret
// is shown.
type CreatedToken struct {
	Token  Token  `json:"token"`
	Secret string `json:"secret"`
}

// Approval states.
const (
	ApprovalPending   = "pending"
	ApprovalApproved  = "approved"
	ApprovalDenied    = "denied"
	ApprovalExpired   = "expired"
	ApprovalCancelled = "cancelled"
	ApprovalFailed    = "failed"
	// ApprovalVoid: the requester was disabled or deleted before anyone
	// decided, so the request closed without acting.
	ApprovalVoid = "void"
)

// Actions that need a second approver.
const (
	ActionFactorRevoke = "factor.revoke"
	ActionFactorDelete = "factor.delete"
	ActionUserResetMFA = "user.reset_mfa"
	ActionUserDisable  = "user.disable"
	ActionUserDelete   = "user.delete"
	// ActionUserAccess changes a user's roles or groups in a way that
	// grants privilege or weakens what the policy asks of them: a role
	// beyond "user" granted, a role removed that leaves fewer than two
	// people able to approve, a group or role left that a policy rule
	// matches on. Params: grant_roles, remove_roles, remove_groups
	// (comma-separated).
	ActionUserAccess = "user.access"
	// ActionRecoveryPass issues the temporary access pass of a recovery
	// case for an account with a role beyond "user": a second officer
	// approves, and the pass is shown to that approver only.
	ActionRecoveryPass = "recovery.pass"
)

// Approval is a request for a sensitive action that a different principal
// must approve before it executes.
type Approval struct {
	ID          string     `json:"id"`
	Action      string     `json:"action"`
	TargetType  string     `json:"target_type"`
	TargetID    string     `json:"target_id"`
	TargetName  string     `json:"target_name,omitempty"`
	Reason      string     `json:"reason,omitempty"`
	State       string     `json:"state"`
	RequestedBy Actor      `json:"requested_by"`
	RequestedAt time.Time  `json:"requested_at"`
	ExpiresAt   time.Time  `json:"expires_at"`
	DecidedBy   *Actor     `json:"decided_by,omitempty"`
	DecidedAt   *time.Time `json:"decided_at,omitempty"`
	Comment     string     `json:"comment,omitempty"`
	Error       string     `json:"error,omitempty"`
	// Params are what the action will do, for the approver to check (an
	// exemption's end, a policy version's hash and weaker changes).
	Params map[string]string `json:"params,omitempty"`
	// IssuedPass is in the answer to the approval of a recovery.pass
	// request, and nowhere else: the pass, shown once to the approver.
	IssuedPass *IssuedPass `json:"issued_pass,omitempty"`
}

// Actor names who did something and how they proved it.
type Actor struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// Auth is how the actor authenticated: token, mtls, webauthn, system.
	Auth    string `json:"auth,omitempty"`
	TokenID string `json:"token_id,omitempty"`
}

// Target names what an audit event is about.
type Target struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// AuditEvent is one record of the hash-chained audit log. Hash is
// SHA-256(prev_hash ‖ seq ‖ body) where body is the canonical JSON of every
// other field; see docs/audit.md.
type AuditEvent struct {
	Seq       uint64            `json:"seq"`
	Time      time.Time         `json:"time"`
	Actor     Actor             `json:"actor"`
	Approver  *Actor            `json:"approver,omitempty"`
	Action    string            `json:"action"`
	Target    Target            `json:"target"`
	Before    map[string]any    `json:"before,omitempty"`
	After     map[string]any    `json:"after,omitempty"`
	Reason    string            `json:"reason,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
	Source    string            `json:"source,omitempty"`
	Extra     map[string]string `json:"extra,omitempty"`
	PrevHash  string            `json:"prev_hash"`
	Hash      string            `json:"hash"`
}

// AuditHead is the answer to GET /v1/audit/head: the last event's sequence
// number and chain hash.
type AuditHead struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// AuditVerification is the answer to GET /v1/audit/verify.
type AuditVerification struct {
	OK bool `json:"ok"`
	// Full is true when every record was checked from the first one
	// (?full=true, or a log without a signed checkpoint yet). Otherwise
	// the log was checked from the newest signed checkpoint: the record
	// at FromSeq carries the hash the checkpoint signed, and every record
	// after it links, up to the head.
	Full    bool   `json:"full"`
	FromSeq uint64 `json:"from_seq,omitempty"`
	// Checked is how many records were checked (after FromSeq).
	Checked  uint64 `json:"checked"`
	HeadSeq  uint64 `json:"head_seq"`
	HeadHash string `json:"head_hash,omitempty"`
	// BrokenAt is the sequence number of the first record that does not
	// link to its predecessor; Problem says how.
	BrokenAt uint64 `json:"broken_at,omitempty"`
	Problem  string `json:"problem,omitempty"`
	// Checkpoint is the comparison with the newest signed audit
	// checkpoint keyfleetd found (absent before the first). When it does
	// not match, OK is false.
	Checkpoint *CheckpointCheck `json:"checkpoint,omitempty"`
}

// CheckpointCheck is how the audit log compares with a signed checkpoint.
type CheckpointCheck struct {
	Seq    uint64    `json:"seq"`
	Hash   string    `json:"hash"`
	Time   time.Time `json:"time"`
	Source string    `json:"source,omitempty"`
	// Checked is how many records after the checkpoint were checked;
	// BrokenAt is the first of them that does not link, if one does not.
	Checked  uint64 `json:"checked"`
	BrokenAt uint64 `json:"broken_at,omitempty"`
	OK       bool   `json:"ok"`
	Problem  string `json:"problem,omitempty"`
}

// Page is one page of a list. NextCursor is empty on the last page; pass it
// as ?cursor= to get the next one.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// Me is the answer to GET /v1/me: who the caller is.
type Me struct {
	User  User     `json:"user"`
	Roles []string `json:"roles"`
	Auth  string   `json:"auth"`
	Token string   `json:"token_id,omitempty"`
}

// Accepted is the 202 answer to an action that needs a second approver.
type Accepted struct {
	Approval Approval `json:"approval"`
	Message  string   `json:"message"`
	// User is the user as it stands now, when the request created or
	// changed one in part (POST /v1/users with a privileged role: the
	// user exists with the role "user" until the grant is approved).
	User *User `json:"user,omitempty"`
}

// BeginVerify is the body of POST /v1/verify/begin: an application asks to
// verify a user, optionally only with some factor kinds.
type BeginVerify struct {
	User  string   `json:"user"`
	Kinds []string `json:"kinds,omitempty"`
	// FactorID asks for one factor only (the one the user picked).
	FactorID string `json:"factor_id,omitempty"`
	// Application and Address describe the sign-in for a push, which
	// shows them to the user: what they are signing in to (default: the
	// caller's account name) and the address the sign-in comes from (an
	// IP address; default none). A push is sent only when the
	// verification asks for it (kinds or factor_id names it) or when the
	// user has nothing else to verify with.
	Application string `json:"application,omitempty"`
	Address     string `json:"address,omitempty"`
}

// Verification is the answer to POST /v1/verify/begin: what to ask the
// user for, per factor they may answer with.
type Verification struct {
	ID        string               `json:"id"`
	UserID    string               `json:"user_id"`
	ExpiresAt time.Time            `json:"expires_at"`
	Factors   []VerificationFactor `json:"factors"`
}

// VerificationFactor is one factor the user may answer with. Prompt is the
// kind's challenge (WebAuthn request options, a PIV challenge), or absent
// when the kind needs none (TOTP: ask for the code).
type VerificationFactor struct {
	FactorID string          `json:"factor_id"`
	Kind     string          `json:"kind"`
	Label    string          `json:"label,omitempty"`
	Inputs   []string        `json:"inputs,omitempty"`
	Prompt   json.RawMessage `json:"prompt,omitempty"`
	// OutOfBand is true for a factor answered on the user's device (a
	// push, already sent): finish with no response waits for the answer
	// until Deadline.
	OutOfBand bool       `json:"out_of_band,omitempty"`
	Deadline  *time.Time `json:"deadline,omitempty"`
}

// FinishVerify is the body of POST /v1/verify/finish.
type FinishVerify struct {
	ID       string          `json:"id"`
	FactorID string          `json:"factor_id"`
	Response json.RawMessage `json:"response"`
	// Wait is how long finishing an out-of-band factor (a push) waits
	// for the device's answer, as a duration ("20s"; "0s" asks once and
	// answers at once); empty waits until the answer or the deadline.
	// A verification still waiting is answered with Pending.
	Wait string `json:"wait,omitempty"`
}

// CheckVerify is the body of POST /v1/verify: a response that needs no
// challenge (a TOTP or HOTP code) checked in one call. The user must have
// exactly one active factor of the accepted kinds, or FactorID names it.
type CheckVerify struct {
	User     string          `json:"user"`
	Kinds    []string        `json:"kinds,omitempty"`
	FactorID string          `json:"factor_id,omitempty"`
	Response json.RawMessage `json:"response"`
}

// VerifyResult is the answer to POST /v1/verify/finish. A wrong answer is
// OK false with no detail beyond "invalid".
type VerifyResult struct {
	OK       bool   `json:"ok"`
	UserID   string `json:"user_id"`
	FactorID string `json:"factor_id,omitempty"`
	Kind     string `json:"kind,omitempty"`
	// Pending is true while a push waits for its answer (OK is false
	// until then): finish again to keep waiting.
	Pending bool `json:"pending,omitempty"`
}

// MFAStatus is the answer to GET /v1/users/{user}/mfa-status.
type MFAStatus struct {
	UserID string `json:"user_id"`
	// MustEnrol is true when the user has to enrol a factor now (at
	// first login, say).
	MustEnrol bool `json:"must_enrol"`
	// Status is compliant, grace or non_compliant.
	Status     string     `json:"status"`
	GraceUntil *time.Time `json:"grace_until,omitempty"`
	Reasons    []string   `json:"reasons,omitempty"`
	NextSteps  []string   `json:"next_steps,omitempty"`
	// AllowedKinds are the kinds the user may enrol and verify with.
	AllowedKinds  []string   `json:"allowed_kinds"`
	ActiveFactors []Factor   `json:"active_factors"`
	LockedUntil   *time.Time `json:"locked_until,omitempty"`
	// PolicyVersion is the policy version the answer comes from (0: only
	// the built-in rules). Deadline is when the requirements the user
	// falls short of are (or were) due; ExemptUntil is set while an
	// exemption makes the user compliant.
	PolicyVersion int        `json:"policy_version"`
	Deadline      *time.Time `json:"deadline,omitempty"`
	ExemptUntil   *time.Time `json:"exempt_until,omitempty"`
	// ReasonDetails are Reasons with their codes and factors.
	ReasonDetails []PolicyReason `json:"reason_details,omitempty"`
	// StaleFactors and VulnerableFactors are factor ids: unused for longer
	// than the policy allows, and on hardware with a known advisory.
	StaleFactors      []string `json:"stale_factors,omitempty"`
	VulnerableFactors []string `json:"vulnerable_factors,omitempty"`
}

// Problem is an RFC 9457 problem detail, served as application/problem+json.
// Type is stable per failure (see docs/errors.md); clients branch on it.
type Problem struct {
	Type      string            `json:"type"`
	Title     string            `json:"title"`
	Status    int               `json:"status"`
	Detail    string            `json:"detail,omitempty"`
	Instance  string            `json:"instance,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
	Fields    map[string]string `json:"fields,omitempty"`
}

// Error makes a Problem usable as a Go error on the client side.
func (p *Problem) Error() string {
	if p.Detail != "" {
		return p.Detail
	}
	return p.Title
}

// Recovery case states.
const (
	CaseOpen      = "open"
	CaseConfirmed = "confirmed"
	CaseClosed    = "closed"
	CaseExpired   = "expired"
	CaseCancelled = "cancelled"
)

// Identity-confirmation methods a recovery case records.
const (
	MethodFactor        = "factor"
	MethodRecoveryCode  = "recovery_code"
	MethodHelpdeskCheck = "helpdesk_check"
)

// ActionRecoveryIdentity is the approval a helpdesk identity check needs.
const ActionRecoveryIdentity = "recovery.identity"

// RecoveryCase is a user's recovery after losing a factor.
type RecoveryCase struct {
	ID            string     `json:"id"`
	UserID        string     `json:"user_id"`
	Username      string     `json:"username"`
	Reason        string     `json:"reason"`
	State         string     `json:"state"`
	OpenedBy      Actor      `json:"opened_by"`
	OpenedAt      time.Time  `json:"opened_at"`
	ExpiresAt     time.Time  `json:"expires_at"`
	LostFactorIDs []string   `json:"lost_factor_ids"`
	Suspended     bool       `json:"suspended,omitempty"`
	Method        string     `json:"method,omitempty"`
	MethodDetail  string     `json:"method_detail,omitempty"`
	ConfirmedBy   *Actor     `json:"confirmed_by,omitempty"`
	ApprovedBy    *Actor     `json:"approved_by,omitempty"`
	ConfirmedAt   *time.Time `json:"confirmed_at,omitempty"`
	PassID        string     `json:"pass_id,omitempty"`
	NewFactorID   string     `json:"new_factor_id,omitempty"`
	ClosedAt      *time.Time `json:"closed_at,omitempty"`
}

// OpenRecovery is the body of POST /v1/recovery.
type OpenRecovery struct {
	User   string `json:"user"`
	Reason string `json:"reason"`
	// LostFactors are the factors the user lost; empty means every active
	// factor. They are revoked when the replacement is enrolled.
	LostFactors []string `json:"lost_factors,omitempty"`
	// Suspend suspends the lost factors now rather than at the end.
	Suspend bool `json:"suspend,omitempty"`
	// LostDevice marks this device lost now, revoking every factor on it.
	LostDevice string `json:"lost_device,omitempty"`
}

// RecoveryFactorAnswer is the body of POST /v1/recovery/{id}/verify/finish.
type RecoveryFactorAnswer struct {
	VerificationID string          `json:"verification_id"`
	FactorID       string          `json:"factor_id"`
	Response       json.RawMessage `json:"response"`
}

// RecoveryCodeAnswer is the body of POST /v1/recovery/{id}/code.
type RecoveryCodeAnswer struct {
	Code string `json:"code"`
}

// IdentityCheck is the body of POST /v1/recovery/{id}/identity-check: how
// the helpdesk confirmed who the user is. A second principal approves it.
type IdentityCheck struct {
	Method string `json:"method"` // in_person_id, video_call_manager, callback_known_number, other
	Detail string `json:"detail"`
}

// IssuePass is the body of POST /v1/recovery/{id}/pass.
type IssuePass struct {
	TTL          string `json:"ttl,omitempty"` // Go duration; default 1h, 10m to 8h
	Uses         int    `json:"uses,omitempty"`
	HardwareOnly bool   `json:"hardware_only,omitempty"`
	Attended     bool   `json:"attended,omitempty"`
}

// IssuedPass is the answer to POST /v1/recovery/{id}/pass: the only time
// the code is shown.
type IssuedPass struct {
	PassID       string    `json:"pass_id"`
	Code         string    `json:"code"`
	UserID       string    `json:"user_id"`
	ExpiresAt    time.Time `json:"expires_at"`
	Uses         int       `json:"uses"`
	HardwareOnly bool      `json:"hardware_only,omitempty"`
	Attended     bool      `json:"attended,omitempty"`
}

// RedeemPass is the body of POST /v1/passes/redeem.
type RedeemPass struct {
	Code string `json:"code"`
}

// RedeemedPass is the answer to POST /v1/passes/redeem: a token that can
// only enrol a factor for the pass's user, until the pass expires.
type RedeemedPass struct {
	Token     string    `json:"token"`
	UserID    string    `json:"user_id"`
	Username  string    `json:"username"`
	ExpiresAt time.Time `json:"expires_at"`
	Kinds     []string  `json:"kinds"`
}

// RedeemEnrolmentCode is the body of POST /v1/enrolments/redeem.
type RedeemEnrolmentCode struct {
	Code string `json:"code"`
}

// RedeemedEnrolment is the answer to POST /v1/enrolments/redeem: a token
// that can only complete this one enrolment, for its user, until the
// enrolment expires, and the enrolment to complete.
type RedeemedEnrolment struct {
	Token     string    `json:"token"`
	UserID    string    `json:"user_id"`
	Username  string    `json:"username"`
	ExpiresAt time.Time `json:"expires_at"`
	Enrolment Enrolment `json:"enrolment"`
}

// RecoveryCodesIssued is the answer to POST /v1/me/recovery-codes: the
// only time the codes are shown.
type RecoveryCodesIssued struct {
	Codes []string `json:"codes"`
}

// BreakGlassStatus is the answer to GET /v1/breakglass.
type BreakGlassStatus struct {
	SetID     string     `json:"set_id"`
	Shares    int        `json:"shares"`
	Threshold int        `json:"threshold"`
	CreatedAt time.Time  `json:"created_at"`
	UsedAt    *time.Time `json:"used_at,omitempty"`
	// NeedsRotation is true after a use: the credential is single use.
	NeedsRotation bool `json:"needs_rotation"`
	// SessionActive is true while the session opened with the credential
	// runs; SessionEndsAt is when it ends (or ended) by itself.
	SessionActive bool       `json:"session_active"`
	SessionEndsAt *time.Time `json:"session_ends_at,omitempty"`
	// Holders are the people named at the last rotation; Uncollected
	// those who have not collected their share yet.
	Holders     []string `json:"holders,omitempty"`
	Uncollected []string `json:"uncollected,omitempty"`
}

// BreakGlassUse is the body of POST /v1/breakglass/session.
type BreakGlassUse struct {
	Shares   []string `json:"shares"`
	Duration string   `json:"duration,omitempty"` // default 1h
	Reason   string   `json:"reason"`
}

// BreakGlassSession is the answer to POST /v1/breakglass/session.
type BreakGlassSession struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// BreakGlassRotate is the body of POST /v1/breakglass/rotate: who holds
// the new shares (one each, distinct active people) and how many of them
// open a session. Rotating is two-person: the answer is 202 with the
// request, and once a second administrator approves it each holder
// collects their own share (POST /v1/breakglass/share) — nobody else ever
// sees it.
type BreakGlassRotate struct {
	Holders   []string `json:"holders"`             // usernames, 2 to 16
	Threshold int      `json:"threshold,omitempty"` // default: a majority
}

// ActionBreakGlassRotate is the approval a break-glass rotation needs.
const ActionBreakGlassRotate = "breakglass.rotate"

// BreakGlassShare is the answer to POST /v1/breakglass/share: the
// caller's own share of the current credential, shown once.
type BreakGlassShare struct {
	SetID     string `json:"set_id"`
	Threshold int    `json:"threshold"`
	Share     string `json:"share"`
}

// SinkStatus is one event sink's delivery state (GET /v1/events/sinks).
type SinkStatus struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Disabled bool   `json:"disabled,omitempty"`
	// LastDelivered is the sink's cursor: every event up to it was
	// delivered or filtered out.
	LastDelivered uint64 `json:"last_delivered"`
	Head          uint64 `json:"head"`
	Lag           uint64 `json:"lag"`
	// Delivered and Failures count events and failed attempts since the
	// daemon started.
	Delivered   uint64     `json:"delivered"`
	Failures    uint64     `json:"failures"`
	Retrying    bool       `json:"retrying"`
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	DeadLetters int        `json:"dead_letters"`
}

// ImportUsers is the body of POST /v1/users/import: users to create, or
// to update when the username exists. Every row is checked first; one bad
// row changes nothing.
type ImportUsers struct {
	Users  []CreateUser `json:"users"`
	DryRun bool         `json:"dry_run,omitempty"`
}

// ImportResult is the answer to POST /v1/users/import.
type ImportResult struct {
	Created   int  `json:"created"`
	Updated   int  `json:"updated"`
	Unchanged int  `json:"unchanged"`
	DryRun    bool `json:"dry_run,omitempty"`
	// Approvals are the requests the import made for what waits for a
	// second person: roles beyond "user", and removals that weaken the
	// policy's hold on a user (docs/security.md).
	Approvals []string `json:"approvals,omitempty"`
}

// ImportRowError is one bad row of an import (Row counts from 1 in the
// order given). Problem.Fields carries them as "row N: field".
type ImportRowError struct {
	Row    int    `json:"row"`
	Field  string `json:"field"`
	Reason string `json:"reason"`
}
