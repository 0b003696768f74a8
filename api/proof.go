package api

import (
	"encoding/json"
	"time"
)

// ProofHeader carries a fresh proof of possession with the request it
// allows: base64url (no padding) of the JSON of a [Proof]. Actions that
// need one (docs/security.md, "Fresh proof") answer 403
// /problems/proof-required without it.
const ProofHeader = "Keyfleet-Proof"

// ProofRequest is the body of POST /v1/proofs: ask for a challenge bound
// to one action. Subject names what the action is about, as its route
// does: the approval id (approval.approve, approval.deny), the recovery
// case or user (pass.issue), the factor (factor.remove), the user
// (factor.add); empty for the rest. Request is the JSON body the action
// itself will send (a token's name and ttl, a policy document, a pass's
// options): the daemon derives the binding from it, and derives it again
// from the action's own body, so the two must say the same.
type ProofRequest struct {
	Action  string          `json:"action"`
	Subject string          `json:"subject,omitempty"`
	Request json.RawMessage `json:"request,omitempty"`
}

// ProofChallenge is the answer to POST /v1/proofs and POST
// /v1/login/begin: a verification of the caller's own factors whose
// challenge is bound to the action. Summary says in words what answering
// allows; show it before the key is touched.
type ProofChallenge struct {
	Verification
	Action  string `json:"action"`
	Subject string `json:"subject,omitempty"`
	Summary string `json:"summary"`
	// Digest is the hex SHA-256 of the binding (docs/security.md).
	Digest string `json:"digest"`
}

// Proof is a key's answer to a ProofChallenge, sent with the action in
// the Keyfleet-Proof header (or a page's form).
type Proof struct {
	ID       string          `json:"id"`
	FactorID string          `json:"factor_id"`
	Response json.RawMessage `json:"response"`
}

// LoginBegin is the body of POST /v1/login/begin: a person asks for a
// challenge to sign in from the command line with one of their keys.
type LoginBegin struct {
	Username string `json:"username"`
	// Name, TTL and Roles are those of the token the login will create;
	// the proof is bound to them.
	Name  string   `json:"name,omitempty"`
	TTL   string   `json:"ttl,omitempty"`
	Roles []string `json:"roles,omitempty"`
}

// Login is the body of POST /v1/login: the same fields as LoginBegin,
// with the proof in the Keyfleet-Proof header. The answer is a
// [CreatedToken] for the person.
type Login = LoginBegin

// PrivilegedHolder is one row of GET /v1/reports/privileged: a person or
// service account holding a role beyond "user", who granted it, who
// approved the grant, and when the account was last used.
type PrivilegedHolder struct {
	UserID     string     `json:"user_id"`
	Username   string     `json:"username"`
	Kind       string     `json:"kind"`
	Status     string     `json:"status"`
	Role       string     `json:"role"`
	GrantedBy  *Actor     `json:"granted_by,omitempty"`
	ApprovedBy *Actor     `json:"approved_by,omitempty"`
	GrantedAt  *time.Time `json:"granted_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	// Tokens counts the account's live tokens; NoExpiry those of them
	// that never expire (flagged for service accounts).
	Tokens   int `json:"tokens"`
	NoExpiry int `json:"tokens_without_expiry"`
}
