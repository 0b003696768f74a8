package core

import (
	"time"

	"github.com/keyfleet/keyfleet/api"
)

// RecoveryCodes are a user's ten single-use recovery codes. Only a slow
// hash of each is kept (argon2id under one random salt per set; the codes
// are random, so one salt per set costs an attacker nothing and lets a
// guess be checked with one hash instead of ten).
type RecoveryCodes struct {
	UserID    string         `json:"user_id"`
	Salt      []byte         `json:"salt"`
	Codes     []RecoveryCode `json:"codes"`
	CreatedAt time.Time      `json:"created_at"`
}

// RecoveryCode is one code's hash and whether it was used.
type RecoveryCode struct {
	Hash   []byte     `json:"hash"`
	UsedAt *time.Time `json:"used_at,omitempty"`
}

// Remaining counts the unused codes.
func (rc RecoveryCodes) Remaining() int {
	n := 0
	for _, c := range rc.Codes {
		if c.UsedAt == nil {
			n++
		}
	}
	return n
}

// RecoveryCase is a user's recovery after losing a factor: opened by the
// helpdesk, confirmed by a recorded method, then a temporary access pass.
type RecoveryCase struct {
	ID            string     `json:"id"`
	UserID        string     `json:"user_id"`
	Username      string     `json:"username"`
	Reason        string     `json:"reason"`
	State         string     `json:"state"`
	OpenedBy      api.Actor  `json:"opened_by"`
	OpenedAt      time.Time  `json:"opened_at"`
	ExpiresAt     time.Time  `json:"expires_at"`
	LostFactorIDs []string   `json:"lost_factor_ids,omitempty"`
	Suspended     bool       `json:"suspended,omitempty"`
	Method        string     `json:"method,omitempty"`
	MethodDetail  string     `json:"method_detail,omitempty"`
	ConfirmedBy   *api.Actor `json:"confirmed_by,omitempty"`
	ApprovedBy    *api.Actor `json:"approved_by,omitempty"`
	ConfirmedAt   *time.Time `json:"confirmed_at,omitempty"`
	PassID        string     `json:"pass_id,omitempty"`
	NewFactorID   string     `json:"new_factor_id,omitempty"`
	ClosedAt      *time.Time `json:"closed_at,omitempty"`
	Failures      int        `json:"failures,omitempty"`
}

// stateAt reads an open or confirmed case past its expiry as expired.
func (c RecoveryCase) stateAt(now time.Time) string {
	if (c.State == api.CaseOpen || c.State == api.CaseConfirmed) && !now.Before(c.ExpiresAt) {
		return api.CaseExpired
	}
	return c.State
}

// API is the case's wire form.
func (c RecoveryCase) API(now time.Time) api.RecoveryCase {
	return api.RecoveryCase{
		ID: c.ID, UserID: c.UserID, Username: c.Username, Reason: c.Reason, State: c.stateAt(now),
		OpenedBy: c.OpenedBy, OpenedAt: c.OpenedAt, ExpiresAt: c.ExpiresAt, LostFactorIDs: nonNil(c.LostFactorIDs),
		Suspended: c.Suspended, Method: c.Method, MethodDetail: c.MethodDetail, ConfirmedBy: c.ConfirmedBy,
		ApprovedBy: c.ApprovedBy, ConfirmedAt: c.ConfirmedAt, PassID: c.PassID, NewFactorID: c.NewFactorID, ClosedAt: c.ClosedAt,
	}
}

func (c RecoveryCase) summary() map[string]any {
	m := map[string]any{"state": c.State, "user_id": c.UserID}
	if c.Method != "" {
		m["method"] = c.Method
	}
	return m
}

// AccessPass is a temporary access pass: a code that lets its user do one
// thing, enrol a new factor, for a short time. Only its hash is kept.
type AccessPass struct {
	ID           string     `json:"id"`
	UserID       string     `json:"user_id"`
	CaseID       string     `json:"case_id,omitempty"`
	Hash         []byte     `json:"hash"`
	CreatedBy    api.Actor  `json:"created_by"`
	CreatedAt    time.Time  `json:"created_at"`
	ExpiresAt    time.Time  `json:"expires_at"`
	UsesLeft     int        `json:"uses_left"`
	HardwareOnly bool       `json:"hardware_only,omitempty"`
	Attended     bool       `json:"attended,omitempty"`
	RedeemedAt   *time.Time `json:"redeemed_at,omitempty"`
	RevokedAt    *time.Time `json:"revoked_at,omitempty"`
	// TokenID is the token the pass was redeemed for: it dies with the
	// pass (revoked, replaced, its case cancelled, expired or closed).
	TokenID string `json:"token_id,omitempty"`
}

// BreakGlass is the current break-glass credential: only a verifier of
// the secret whose shares its holders keep.
type BreakGlass struct {
	SetID     string     `json:"set_id"`
	Verifier  []byte     `json:"verifier"`
	Shares    int        `json:"shares"`
	Threshold int        `json:"threshold"`
	CreatedAt time.Time  `json:"created_at"`
	CreatedBy api.Actor  `json:"created_by"`
	UsedAt    *time.Time `json:"used_at,omitempty"`
	UsedBy    string     `json:"used_by,omitempty"` // the session token id
	Failures  int        `json:"failures,omitempty"`
	// Holders are the usernames named at rotation; Held keeps each
	// holder's share, sealed to them, until they collect it (by user id).
	Holders []string          `json:"holders,omitempty"`
	Held    map[string][]byte `json:"held,omitempty"`
}

// RecoveryReadTx reads recovery records. Getters return *NotFoundError.
type RecoveryReadTx interface {
	RecoveryCodes(userID string) (RecoveryCodes, error)
	RecoveryCase(id string) (RecoveryCase, error)
	RecoveryCases(f RecoveryFilter, p PageReq) ([]RecoveryCase, string, error)
	AccessPass(id string) (AccessPass, error)
	// AccessPassByHash finds a pass by the SHA-256 of its code.
	AccessPassByHash(hash []byte) (AccessPass, error)
	BreakGlass() (BreakGlass, error)
	// EachRecoveryCodes calls fn for every user's recovery codes.
	EachRecoveryCodes(fn func(RecoveryCodes) error) error
}

// RecoveryTx writes recovery records.
type RecoveryTx interface {
	PutRecoveryCodes(rc RecoveryCodes) error
	PutRecoveryCase(c RecoveryCase) error
	PutAccessPass(p AccessPass) error
	PutBreakGlass(b BreakGlass) error
}

// RecoveryFilter narrows a case list. State is the stored state.
type RecoveryFilter struct{ UserID, State string }

// Match reports whether c passes the filter.
func (f RecoveryFilter) Match(c RecoveryCase) bool {
	return (f.UserID == "" || c.UserID == f.UserID) && (f.State == "" || c.State == f.State)
}
