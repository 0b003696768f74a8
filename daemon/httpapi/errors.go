package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/directory"
	"github.com/keyfleet/keyfleet/daemon/ratelimit"
)

// Problem types. Each is a stable slug under /problems/; docs/errors.md
// explains each one and what to do about it.
const (
	probBadRequest        = "bad-request"
	probInvalidJSON       = "invalid-json"
	probUnknownField      = "unknown-field"
	probDuplicateKey      = "duplicate-key"
	probValidation        = "validation-failed"
	probBodyTooLarge      = "body-too-large"
	probUnauthenticated   = "unauthenticated"
	probTokenExpired      = "token-expired"
	probTokenRevoked      = "token-revoked"
	probForbidden         = "forbidden"
	probNotFound          = "not-found"
	probAlreadyExists     = "already-exists"
	probIllegalTransition = "illegal-transition"
	probSelfApproval      = "self-approval"
	probNotIndependent    = "not-independent"
	probProofRequired     = "proof-required"
	probApprovalClosed    = "approval-closed"
	probEnrolmentClosed   = "enrolment-closed"
	probUnsupportedKind   = "unsupported-kind"
	probUnavailable       = "unavailable"
	probStorageFull       = "storage-full"
	probConflict          = "conflict"
	probInternal          = "internal"
	probLocked            = "locked"
	probRateLimited       = "rate-limited"
	probAttestation       = "attestation-refused"
	probNoUsableFactor    = "no-usable-factor"
	probVerifyClosed      = "verification-closed"
	probPolicyViolation   = "policy-violation"
	probDirectoryBusy     = "directory-busy"
	probLeaverLimit       = "leaver-limit"
	probDirectoryFailed   = "directory-failed"
)

// problemOf is the one place an error becomes a status and a problem type.
var problemOf = []struct {
	err    error
	status int
	typ    string
	title  string
}{
	{core.ErrInvalid, http.StatusBadRequest, probValidation, "The request is not valid"},
	{core.ErrPolicyViolation, http.StatusUnprocessableEntity, probPolicyViolation, "Refused by the policy"},
	{core.ErrUnauthenticated, http.StatusUnauthorized, probUnauthenticated, "Not authenticated"},
	{core.ErrTokenExpired, http.StatusUnauthorized, probTokenExpired, "The token has expired"},
	{core.ErrTokenRevoked, http.StatusUnauthorized, probTokenRevoked, "The token was revoked"},
	{core.ErrForbidden, http.StatusForbidden, probForbidden, "Not allowed"},
	{core.ErrNotFound, http.StatusNotFound, probNotFound, "Not found"},
	{core.ErrAlreadyExists, http.StatusConflict, probAlreadyExists, "Already exists"},
	{core.ErrIllegalTransition, http.StatusConflict, probIllegalTransition, "Not possible in the current state"},
	{core.ErrSelfApproval, http.StatusForbidden, probSelfApproval, "You cannot decide your own request"},
	{core.ErrNotIndependent, http.StatusForbidden, probNotIndependent, "The approver is not independent of the requester"},
	{core.ErrProofRequired, http.StatusForbidden, probProofRequired, "A fresh proof with your own key is required"},
	{core.ErrApprovalClosed, http.StatusConflict, probApprovalClosed, "The approval is no longer pending"},
	{core.ErrEnrolmentClosed, http.StatusGone, probEnrolmentClosed, "The enrolment is no longer open"},
	{core.ErrUnsupportedKind, http.StatusBadRequest, probUnsupportedKind, "Unsupported factor kind"},
	{core.ErrLocked, http.StatusTooManyRequests, probLocked, "Locked after too many failed verifications"},
	{core.ErrTooMany, http.StatusTooManyRequests, probRateLimited, "Too many requests"},
	{core.ErrNoUsableFactor, http.StatusConflict, probNoUsableFactor, "No usable factor"},
	{core.ErrVerificationClosed, http.StatusGone, probVerifyClosed, "The verification is no longer open"},
	{core.ErrConflict, http.StatusServiceUnavailable, probConflict, "Too many concurrent changes"},
	{core.ErrStorageFull, http.StatusServiceUnavailable, probStorageFull, "Storage full: writes are refused until space returns"},
	{core.ErrUnavailable, http.StatusServiceUnavailable, probUnavailable, "The store is not available"},
	{context.DeadlineExceeded, http.StatusServiceUnavailable, probUnavailable, "The request timed out"},
	{directory.ErrBusy, http.StatusConflict, probDirectoryBusy, "A sync of the directory is running"},
	{directory.ErrLeaverLimit, http.StatusConflict, probLeaverLimit, "The sync would disable too many users"},
	{directory.ErrUnreachable, http.StatusBadGateway, probDirectoryFailed, "The directory could not be read"},
	{directory.ErrBind, http.StatusBadGateway, probDirectoryFailed, "The directory refused keyfleet's bind"},
	{directory.ErrTLS, http.StatusBadGateway, probDirectoryFailed, "TLS with the directory failed"},
	{directory.ErrSearch, http.StatusBadGateway, probDirectoryFailed, "The directory refused a search"},
}

// retryAfter is how long the client should wait before trying again, for
// an error that says (a *store.StorageFullError does); ok is false
// otherwise.
func retryAfter(err error) (seconds int, ok bool) {
	var ra interface{ RetryAfter() time.Duration }
	if !errors.As(err, &ra) {
		return 0, false
	}
	return max(1, int(ra.RetryAfter().Seconds())), true
}

// apiError is an error the HTTP layer raises itself (bad JSON, too large).
type apiError struct {
	status int
	typ    string
	title  string
	detail string
}

func (e *apiError) Error() string { return e.detail }

// rateLimitedError is an attempt on a tokenless route that the limiter
// refused: 429 with Retry-After.
type rateLimitedError struct{ d ratelimit.Decision }

func (e *rateLimitedError) Error() string {
	wait := fmt.Sprintf("wait %d seconds and try again", int(e.d.RetryAfter/time.Second))
	if e.d.ByTarget {
		return "too many attempts on this account or code from all addresses together; " + wait
	}
	return "too many attempts from this address; " + wait
}

func problemFor(err error) api.Problem {
	var ae *apiError
	if errors.As(err, &ae) {
		return api.Problem{Type: "/problems/" + ae.typ, Title: ae.title, Status: ae.status, Detail: ae.detail}
	}
	var rl *rateLimitedError
	if errors.As(err, &rl) {
		return api.Problem{Type: "/problems/" + probRateLimited, Title: "Too many attempts", Status: http.StatusTooManyRequests, Detail: rl.Error()}
	}
	for _, m := range problemOf {
		if errors.Is(err, m.err) {
			p := api.Problem{Type: "/problems/" + m.typ, Title: m.title, Status: m.status, Detail: err.Error()}
			var ve *core.ValidationError
			var ie *core.ImportError
			switch {
			case errors.As(err, &ie):
				p.Fields = map[string]string{}
				for _, r := range ie.Rows {
					p.Fields[fmt.Sprintf("row %d: %s", r.Row, r.Field)] = r.Reason
				}
			case errors.As(err, &ve):
				p.Fields = map[string]string{ve.Field: ve.Reason}
			}
			if f := policyFields(err); f != nil {
				p.Fields = f
			}
			return p
		}
	}
	return api.Problem{Type: "/problems/" + probInternal, Title: "Internal error", Status: http.StatusInternalServerError,
		Detail: "keyfleetd could not complete the request; the daemon's log has the details under this request id"}
}
