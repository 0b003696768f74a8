package core

import (
	"errors"
	"fmt"

	"github.com/keyfleet/keyfleet/api"
)

// Sentinel errors. Callers branch on them with errors.Is; the typed errors
// below wrap them and carry detail. daemon/httpapi maps each to one
// problem type and status.
var (
	ErrNotFound          = errors.New("not found")
	ErrAlreadyExists     = errors.New("already exists")
	ErrInvalid           = errors.New("invalid input")
	ErrIllegalTransition = errors.New("illegal state transition")
	ErrForbidden         = errors.New("forbidden")
	ErrUnauthenticated   = errors.New("not authenticated")
	ErrTokenExpired      = errors.New("token expired")
	ErrTokenRevoked      = errors.New("token revoked")
	ErrSelfApproval      = errors.New("requester cannot decide their own request")
	ErrApprovalClosed    = errors.New("approval is no longer pending")
	ErrEnrolmentClosed   = errors.New("enrolment is no longer open")
	ErrUnsupportedKind   = errors.New("unsupported factor kind")
	// ErrLocked: too many failed verifications; the user or factor is
	// locked until a time or until an administrator unlocks it.
	ErrLocked = errors.New("locked after too many failed verifications")
	// ErrTooMany: too many requests of one kind for one user in a period
	// (pushes); try again after a while.
	ErrTooMany = errors.New("too many requests")
	// ErrNoUsableFactor: the user has no active factor to verify with.
	ErrNoUsableFactor = errors.New("no usable factor")
	// ErrVerificationClosed: the verification was finished or expired.
	ErrVerificationClosed = errors.New("verification is no longer open")
	// ErrConflict: a transaction kept colliding with concurrent writes.
	ErrConflict = errors.New("concurrent update")
	// ErrUnavailable: the store cannot take writes (closed, or a write to
	// disk failed and the daemon must be restarted).
	ErrUnavailable = errors.New("store unavailable")
	// ErrProofRequired: the action needs a fresh proof of possession of
	// one of the person's own factors, bound to it, and none (or one for
	// another action, used, expired or wrong) came with it. See ProofError.
	ErrProofRequired = errors.New("fresh proof of possession required")
	// ErrNotIndependent: the approver is not a different person from the
	// requester in fact (an account one made, granted, recovered or
	// enrolled for the other). See docs/security.md.
	ErrNotIndependent = errors.New("approver is not independent of the requester")
	// ErrStorageFull: the store's disk has less free space than its
	// reserve, so writes are refused until space returns; reads go on.
	// Errors wrapping it wrap ErrUnavailable too.
	ErrStorageFull = errors.New("storage full")
)

// ProofError says which action needed a proof and why the one sent (if
// any) did not do. It wraps ErrProofRequired.
type ProofError struct {
	Action string // a proof.Catalogue action
	Reason string
}

func (e *ProofError) Error() string {
	return fmt.Sprintf("%s needs a fresh proof with one of your own %s: %s. From the command line keyfleet asks keyfleet-agent for it; "+
		"over the API, POST /v1/proofs {\"action\": %q, \"subject\": …} and send the key's answer in the Keyfleet-Proof header",
		e.Action, proofWords(e.Action), e.Reason, e.Action)
}
func (e *ProofError) Unwrap() error { return ErrProofRequired }

// ValidationError names the field that is wrong and why. It wraps ErrInvalid.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Reason) }
func (e *ValidationError) Unwrap() error { return ErrInvalid }

func invalid(field, format string, a ...any) error {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, a...)}
}

// NotFoundError names what was looked for. It wraps ErrNotFound.
type NotFoundError struct {
	Kind string // "user", "factor", …
	Ref  string
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("%s %q not found", e.Kind, e.Ref) }
func (e *NotFoundError) Unwrap() error { return ErrNotFound }

// TransitionError says which move from which state was refused and what is
// allowed instead. It wraps ErrIllegalTransition.
type TransitionError struct {
	Kind, ID, From, Action string
	Hint                   string
}

func (e *TransitionError) Error() string {
	msg := fmt.Sprintf("cannot %s %s %s: it is %s", e.Action, e.Kind, e.ID, e.From)
	if e.Hint != "" {
		msg += "; " + e.Hint
	}
	return msg
}
func (e *TransitionError) Unwrap() error { return ErrIllegalTransition }

// ForbiddenError says which permission the principal lacks. It wraps ErrForbidden.
type ForbiddenError struct {
	Principal string
	Action    Action
	Reason    string
}

func (e *ForbiddenError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("%s may not %s: %s", e.Principal, e.Action, e.Reason)
	}
	if e.Action == RecordLogins || e.Action == IssueFirstLoginPasses {
		return fmt.Sprintf("%s may not %s: only a login host does, with a token of a service account holding the %q role (docs/pam.md)",
			e.Principal, e.Action, api.RoleLoginHost)
	}
	return fmt.Sprintf("%s may not %s; ask an administrator for a role that allows it", e.Principal, e.Action)
}
func (e *ForbiddenError) Unwrap() error { return ErrForbidden }
