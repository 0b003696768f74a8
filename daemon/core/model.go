package core

import (
	"crypto/sha256"
	"encoding/json"
	"slices"
	"time"

	"github.com/keyfleet/keyfleet/api"
)

// User is a person or a service account. Usernames are unique and do not
// change; everything else about a user can.
type User struct {
	ID          string    `json:"id"`
	Username    string    `json:"username"`
	DisplayName string    `json:"display_name,omitempty"`
	Email       string    `json:"email,omitempty"`
	Kind        string    `json:"kind"`
	Groups      []string  `json:"groups,omitempty"`
	Roles       []string  `json:"roles,omitempty"`
	Status      string    `json:"status"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Failures counts failed verifications across the user's factors
	// since the last success; LockedUntil is set when they reach the
	// limit.
	Failures    int        `json:"failures,omitempty"`
	LockedUntil *time.Time `json:"locked_until,omitempty"`
	// RecoveryFailures counts wrong answers in recovery cases; at the
	// limit RecoveryLocked stops recovery until an administrator clears it.
	RecoveryFailures int  `json:"recovery_failures,omitempty"`
	RecoveryLocked   bool `json:"recovery_locked,omitempty"`
	// PushesLockedAt is set when the user reported a push as not theirs:
	// no out-of-band prompt goes to them until UnlockUser clears it.
	PushesLockedAt *time.Time `json:"pushes_locked_at,omitempty"`
	// HandledBy records the people who acted on this account in a way
	// that makes them not independent of it (independence.go): who
	// created it, asked for a role for it, recovered it, enrolled a
	// factor for it or issued it a pass, and when (latest of each).
	HandledBy []Handling `json:"handled_by,omitempty"`
	// Grants says, per role beyond "user", who asked for it and who
	// approved it (keyfleet report privileged).
	Grants map[string]RoleGrant `json:"grants,omitempty"`
	// External links the user to the directory source that provides
	// them (directory.go); nil for users made by hand.
	External *ExternalLink `json:"external,omitempty"`
}

// Handling is one way one person acted on another's account.
type Handling struct {
	By   string    `json:"by"`   // the acting person's user id
	What string    `json:"what"` // created, granted, recovered, enrolled, passed
	At   time.Time `json:"at"`
}

// RoleGrant records how a user came to hold a role.
type RoleGrant struct {
	By         api.Actor  `json:"by"`
	ApprovedBy *api.Actor `json:"approved_by,omitempty"`
	At         time.Time  `json:"at"`
}

// API is the user's wire form.
func (u User) API() api.User {
	out := api.User{
		ID: u.ID, Username: u.Username, DisplayName: u.DisplayName, Email: u.Email,
		Kind: u.Kind, Groups: nonNil(u.Groups), Roles: nonNil(u.Roles), Status: u.Status,
		CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt, LockedUntil: u.LockedUntil, PushesLockedAt: u.PushesLockedAt,
	}
	if u.External != nil {
		out.Source, out.ExternalID = u.External.Source, u.External.ID
	}
	return out
}

func (u User) summary() map[string]any {
	return map[string]any{
		"username": u.Username, "status": u.Status, "kind": u.Kind,
		"groups": nonNil(u.Groups), "roles": nonNil(u.Roles),
	}
}

// Factor is one authentication factor. Secret holds sealed secret material
// (a seed, plugin state): it is opened only by the factor's kind and never
// leaves the daemon.
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
	Secret      []byte          `json:"secret,omitempty"`
	Failures    int             `json:"failures,omitempty"`
	LockedUntil *time.Time      `json:"locked_until,omitempty"`
	// Unanswered counts an out-of-band factor's prompts in a row that
	// ran out unanswered; any answer resets it.
	Unanswered       int        `json:"unanswered,omitempty"`
	LastUnansweredAt *time.Time `json:"last_unanswered_at,omitempty"`
	// RecoveryCodes are set (never stored) on the factor that a user's
	// first enrolment created: the codes, to be shown once.
	RecoveryCodes []string `json:"-"`
}

// API is the factor's wire form, without its secret.
func (f Factor) API() api.Factor {
	return api.Factor{
		ID: f.ID, UserID: f.UserID, Kind: f.Kind, Label: f.Label, State: f.State,
		DeviceID: f.DeviceID, CreatedAt: f.CreatedAt, ActivatedAt: f.ActivatedAt,
		LastUsedAt: f.LastUsedAt, RevokedAt: f.RevokedAt, StateReason: f.StateReason,
		Public: f.Public, Evidence: f.Evidence, LockedUntil: f.LockedUntil, RecoveryCodes: f.RecoveryCodes,
		Unanswered: f.Unanswered, LastUnansweredAt: f.LastUnansweredAt,
	}
}

func (f Factor) summary() map[string]any {
	m := map[string]any{"state": f.State, "kind": f.Kind, "user_id": f.UserID}
	if f.Label != "" {
		m["label"] = f.Label
	}
	if f.DeviceID != "" {
		m["device_id"] = f.DeviceID
	}
	return m
}

// Device is one physical key. Vendor and serial identify it.
type Device struct {
	ID        string    `json:"id"`
	Vendor    string    `json:"vendor"`
	Model     string    `json:"model,omitempty"`
	Serial    string    `json:"serial"`
	Firmware  string    `json:"firmware,omitempty"`
	UserID    string    `json:"user_id,omitempty"`
	State     string    `json:"state"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// LastUserID is who had the key before it was returned; ReturnedAt
	// and WipedAt are when it last came back and when an agent last
	// reported wiping it.
	LastUserID string     `json:"last_user_id,omitempty"`
	ReturnedAt *time.Time `json:"returned_at,omitempty"`
	WipedAt    *time.Time `json:"wiped_at,omitempty"`
}

// API is the device's wire form; factorIDs are the factors on it.
func (d Device) API(factorIDs []string) api.Device {
	return api.Device{
		ID: d.ID, Vendor: d.Vendor, Model: d.Model, Serial: d.Serial, Firmware: d.Firmware,
		UserID: d.UserID, State: d.State, FactorIDs: nonNil(factorIDs),
		LastUserID: d.LastUserID, ReturnedAt: d.ReturnedAt, WipedAt: d.WipedAt,
		CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
	}
}

// Enrolment is a single-use, expiring challenge to register one factor.
type Enrolment struct {
	ID        string          `json:"id"`
	UserID    string          `json:"user_id"`
	Kind      string          `json:"kind"`
	State     string          `json:"state"`
	Challenge []byte          `json:"challenge"`
	CreatedBy string          `json:"created_by"`
	CreatedAt time.Time       `json:"created_at"`
	ExpiresAt time.Time       `json:"expires_at"`
	FactorID  string          `json:"factor_id,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	// Sealed is the kind's enrolment state, sealed to this enrolment and
	// dropped when it completes.
	Sealed []byte `json:"sealed,omitempty"`
	// CodeHash is the SHA-256 of the enrolment code's secret; empty when
	// the enrolment has no code (its creator may not complete enrolments
	// for the user, so may not hand that power on). code is the code
	// itself, only on the Enrolment CreateEnrolment returns.
	CodeHash []byte `json:"code_hash,omitempty"`
	code     string
	// SealedDisplay is what the kind shows the person enrolling (a TOTP
	// seed's URI), sealed to the enrolment, when someone else made it: it
	// goes only to the user (their own read, or the code's redemption).
	SealedDisplay []byte `json:"sealed_display,omitempty"`
	// CodeRedeemedAt is when the enrolment code was exchanged for a token
	// (RedeemEnrolmentCode); a code works once.
	CodeRedeemedAt *time.Time `json:"code_redeemed_at,omitempty"`
}

// API is the enrolment's wire form. An open enrolment past its expiry
// reads as expired.
func (e Enrolment) API(now time.Time) api.Enrolment {
	return api.Enrolment{
		ID: e.ID, UserID: e.UserID, Kind: e.Kind, State: e.stateAt(now), Challenge: e.Challenge,
		CreatedBy: e.CreatedBy, CreatedAt: e.CreatedAt, ExpiresAt: e.ExpiresAt,
		FactorID: e.FactorID, Params: e.Params, CodeRedeemedAt: e.CodeRedeemedAt,
	}
}

// Code is the enrolment code to hand the user (api.EnrolmentCode), on the
// enrolment CreateEnrolment returned; empty anywhere else, and when the
// creator may not hand out codes for the user.
func (e Enrolment) Code() string { return e.code }

// codeHash is what an enrolment keeps of its code's secret.
func codeHash(secret []byte) []byte {
	sum := sha256.Sum256(append([]byte("keyfleet-enrolment-code-v1:"), secret...))
	return sum[:]
}

func (e Enrolment) stateAt(now time.Time) string {
	if e.State == api.EnrolmentOpen && !now.Before(e.ExpiresAt) {
		return api.EnrolmentExpired
	}
	return e.State
}

// Token is an API bearer token. Only the SHA-256 of its secret is kept.
type Token struct {
	ID         string     `json:"id"`
	UserID     string     `json:"user_id"`
	Name       string     `json:"name"`
	Roles      []string   `json:"roles"`
	Hash       []byte     `json:"hash"`
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	// Purpose is empty for API tokens, "pass" for a redeemed temporary
	// access pass (PassID names it), "enrolment" for a redeemed enrolment
	// code (EnrolmentID names the one enrolment it may complete) and
	// "breakglass" for a break-glass session.
	Purpose     string `json:"purpose,omitempty"`
	PassID      string `json:"pass_id,omitempty"`
	EnrolmentID string `json:"enrolment_id,omitempty"`
	// ParentID is the break-glass session token this token was made in:
	// it stops working when the session ends (Authenticate).
	ParentID string `json:"parent_id,omitempty"`
}

// API is the token's wire form, without its hash.
func (t Token) API() api.Token {
	return api.Token{
		ID: t.ID, UserID: t.UserID, Name: t.Name, Roles: nonNil(t.Roles), CreatedBy: t.CreatedBy,
		CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, LastUsedAt: t.LastUsedAt, RevokedAt: t.RevokedAt,
	}
}

// Approval is a pending or decided request for a sensitive action.
type Approval struct {
	ID          string     `json:"id"`
	Action      string     `json:"action"`
	TargetType  string     `json:"target_type"`
	TargetID    string     `json:"target_id"`
	TargetName  string     `json:"target_name,omitempty"`
	Reason      string     `json:"reason,omitempty"`
	State       string     `json:"state"`
	RequestedBy api.Actor  `json:"requested_by"`
	RequestedAt time.Time  `json:"requested_at"`
	ExpiresAt   time.Time  `json:"expires_at"`
	DecidedBy   *api.Actor `json:"decided_by,omitempty"`
	DecidedAt   *time.Time `json:"decided_at,omitempty"`
	Comment     string     `json:"comment,omitempty"`
	Error       string     `json:"error,omitempty"`
	// Params are what the action will do, shown to the approver and read
	// when it executes (see policy.go).
	Params map[string]string `json:"params,omitempty"`
	// issued is the pass an approved recovery.pass request issued: in the
	// approver's answer only, never stored.
	issued *api.IssuedPass
}

// API is the approval's wire form. A pending approval past its expiry
// reads as expired.
func (a Approval) API(now time.Time) api.Approval {
	out := api.Approval{
		ID: a.ID, Action: a.Action, TargetType: a.TargetType, TargetID: a.TargetID,
		TargetName: a.TargetName, Reason: a.Reason, State: a.stateAt(now),
		RequestedBy: a.RequestedBy, RequestedAt: a.RequestedAt, ExpiresAt: a.ExpiresAt,
		DecidedBy: a.DecidedBy, DecidedAt: a.DecidedAt, Comment: a.Comment, Error: a.Error, Params: a.Params,
		IssuedPass: a.issued,
	}
	return out
}

func (a Approval) stateAt(now time.Time) string {
	if a.State == api.ApprovalPending && !now.Before(a.ExpiresAt) {
		return api.ApprovalExpired
	}
	return a.State
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

func ptr[T any](v T) *T { return &v }

// Verification is a begun verification: a challenge per factor the user
// may answer with, single use, expiring.
type Verification struct {
	ID        string                        `json:"id"`
	UserID    string                        `json:"user_id"`
	CreatedBy string                        `json:"created_by"`
	CreatedAt time.Time                     `json:"created_at"`
	ExpiresAt time.Time                     `json:"expires_at"`
	Factors   map[string]VerificationFactor `json:"factors"`
	// Binding is set on a proof (BeginProof): the hex digest of the one
	// action (proof.Binding) its challenge is bound to. A verification
	// with a binding proves nothing else, and one without proves no action.
	Binding string `json:"binding,omitempty"`
	// Application and Address describe the sign-in, for the kinds that
	// show it (a push) and for the audit records of out-of-band answers.
	Application string `json:"app,omitempty"`
	Address     string `json:"addr,omitempty"`
}

// VerificationFactor is one factor's part of a verification.
type VerificationFactor struct {
	Kind   string `json:"kind"`
	Sealed []byte `json:"sealed,omitempty"` // the kind's session, sealed to the verification
}
