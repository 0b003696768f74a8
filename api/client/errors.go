package client

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	"github.com/keyfleet/keyfleet/api"
)

// Problem type slugs: api.Problem.Type is "/problems/" + slug.
const (
	SlugBadRequest        = "bad-request"
	SlugInvalidJSON       = "invalid-json"
	SlugUnknownField      = "unknown-field"
	SlugValidationFailed  = "validation-failed"
	SlugBodyTooLarge      = "body-too-large"
	SlugUnauthenticated   = "unauthenticated"
	SlugTokenExpired      = "token-expired"
	SlugTokenRevoked      = "token-revoked"
	SlugForbidden         = "forbidden"
	SlugNotFound          = "not-found"
	SlugAlreadyExists     = "already-exists"
	SlugIllegalTransition = "illegal-transition"
	SlugSelfApproval      = "self-approval"
	// SlugNotIndependent: the approver is not a different person from the
	// requester in fact (docs/security.md).
	SlugNotIndependent = "not-independent"
	// SlugProofRequired: the action needs a fresh proof with the caller's
	// own key (Client.BeginProof, Client.WithProof), and none came or the
	// one sent did not do.
	SlugProofRequired = "proof-required"
	// SlugNoUsableFactor: the person has no factor that can answer.
	SlugNoUsableFactor = "no-usable-factor"
	// SlugLocked: too many failed verifications or proofs; locked for a
	// while.
	SlugLocked          = "locked"
	SlugApprovalClosed  = "approval-closed"
	SlugEnrolmentClosed = "enrolment-closed"
	SlugUnsupportedKind = "unsupported-kind"
	SlugUnavailable     = "unavailable"
	SlugInternal        = "internal"
	SlugPolicyViolation = "policy-violation"
)

// statusSlugs names the failure of an answer that carried no problem type
// (a proxy's error page, "about:blank").
var statusSlugs = map[int]string{
	http.StatusBadRequest:            SlugBadRequest,
	http.StatusUnauthorized:          SlugUnauthenticated,
	http.StatusForbidden:             SlugForbidden,
	http.StatusNotFound:              SlugNotFound,
	http.StatusRequestEntityTooLarge: SlugBodyTooLarge,
	http.StatusInternalServerError:   SlugInternal,
	http.StatusBadGateway:            SlugUnavailable,
	http.StatusServiceUnavailable:    SlugUnavailable,
	http.StatusGatewayTimeout:        SlugUnavailable,
}

// Slug returns the problem slug of err ("not-found") if err is or wraps an
// *api.Problem, and "" otherwise. A problem without a keyfleet type is
// named from its status code.
func Slug(err error) string {
	var p *api.Problem
	if !errors.As(err, &p) {
		return ""
	}
	if i := strings.LastIndex(p.Type, "/problems/"); i >= 0 {
		return p.Type[i+len("/problems/"):]
	}
	return statusSlugs[p.Status]
}

// IsProblem reports whether err is a problem of one of the given slugs.
func IsProblem(err error, slugs ...string) bool {
	s := Slug(err)
	for _, want := range slugs {
		if s != "" && s == want {
			return true
		}
	}
	return false
}

// IsNotFound reports whether the daemon said the target does not exist.
func IsNotFound(err error) bool { return IsProblem(err, SlugNotFound) }

// IsUnauthenticated reports whether the token was missing, wrong, expired
// or revoked.
func IsUnauthenticated(err error) bool {
	return IsProblem(err, SlugUnauthenticated, SlugTokenExpired, SlugTokenRevoked)
}

// IsForbidden reports whether the caller's roles do not allow the action.
func IsForbidden(err error) bool { return IsProblem(err, SlugForbidden) }

// IsConflict reports whether the action clashes with the target's state:
// it already exists, the transition is illegal, the approval or enrolment
// is closed, or a requester (or someone not independent of them) tried to
// approve their own request.
func IsConflict(err error) bool {
	return IsProblem(err, SlugAlreadyExists, SlugIllegalTransition, SlugSelfApproval, SlugNotIndependent,
		SlugApprovalClosed, SlugEnrolmentClosed)
}

// IsProofRequired reports whether the action needs a fresh proof with the
// caller's own key that did not come (or did not do).
func IsProofRequired(err error) bool { return IsProblem(err, SlugProofRequired) }

// IsInvalid reports whether the daemon refused the request's content.
func IsInvalid(err error) bool {
	return IsProblem(err, SlugBadRequest, SlugInvalidJSON, SlugUnknownField,
		SlugValidationFailed, SlugBodyTooLarge, SlugUnsupportedKind)
}

// IsUnreachable reports whether err is a *TransportError: no answer came.
func IsUnreachable(err error) bool {
	var t *TransportError
	return errors.As(err, &t)
}

// readProblem turns a non-2xx answer into an *api.Problem, inventing one
// from the status when the body is not problem JSON.
func readProblem(resp *http.Response) *api.Problem {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxProblem))
	p := &api.Problem{}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "application/problem+json" || mt == "application/json" {
		if err := json.Unmarshal(body, p); err != nil {
			p = &api.Problem{}
		}
	}
	if p.Status == 0 {
		p.Status = resp.StatusCode
	}
	if p.Title == "" {
		p.Title = fmt.Sprintf("keyfleetd answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	if p.Type == "" {
		p.Type = "about:blank"
	}
	return p
}

// TransportError says that no answer came from keyfleetd: it is down, the
// address is wrong, or its TLS certificate is not trusted. Its message
// ends with what to do.
type TransportError struct {
	// Server is the base URL the client tried.
	Server string
	// Reason says what failed ("connection refused").
	Reason string
	// Hint says what to do next.
	Hint string
	// Fingerprint is the SHA-256 of the server's certificate (upper-case
	// hex, colon separated) when it was signed by an unknown authority.
	Fingerprint string
	// Err is the underlying error.
	Err error
}

func (e *TransportError) Error() string {
	verb := "cannot reach"
	if e.Fingerprint != "" {
		verb = "cannot trust"
	}
	return fmt.Sprintf("%s keyfleetd at %s: %s; %s", verb, e.Server, e.Reason, e.Hint)
}

func (e *TransportError) Unwrap() error { return e.Err }

// Fingerprint formats the SHA-256 of a DER certificate as upper-case hex
// pairs joined by colons, as openssl x509 -fingerprint -sha256 does.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	var b strings.Builder
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

// transportError explains a failed round trip. A cancelled context is
// returned as is: the caller asked for it.
func (c *Client) transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	te := &TransportError{Server: c.base.String(), Err: err}
	te.Reason, te.Hint = explain(err, notRunning(c.base))
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) && ua.Cert != nil {
		te.Fingerprint = Fingerprint(ua.Cert.Raw)
		te.Reason = "its certificate (SHA-256 " + te.Fingerprint + ") is signed by an unknown authority"
	}
	return te
}

// notRunning is what to check when nothing answers at base: on this
// machine, whether keyfleetd was started; on a server, whether it runs
// there and the port is open. Only a local address hears of make run,
// which starts a demo daemon from a source checkout.
func notRunning(base *url.URL) string {
	host, port := base.Hostname(), base.Port()
	if port == "" {
		port = "443"
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return "is keyfleetd running on this machine? start it with 'keyfleetd serve' (in a source checkout: make run)"
	}
	return fmt.Sprintf("check that keyfleetd is running on %s and listening on port %s, and that no firewall blocks the way", host, port)
}

// explain returns a reason and a hint for a round-trip error; running is
// the hint when nothing answered.
func explain(err error, running string) (reason, hint string) {
	var (
		dns      *net.DNSError
		host     x509.HostnameError
		invalid  x509.CertificateInvalidError
		ua       x509.UnknownAuthorityError
		notTLS   tls.RecordHeaderError
		netError net.Error
	)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused", running
	case errors.As(err, &dns):
		return fmt.Sprintf("no such host %q", dns.Name), "check the server address (--server or KEYFLEET_SERVER)"
	case errors.As(err, &ua):
		return "its certificate is signed by an unknown authority",
			"pass --ca with the certificate path that `keyfleetd init` printed"
	case errors.As(err, &host):
		return host.Error(), "use a server address that the certificate names"
	case errors.As(err, &invalid):
		return invalid.Error(), "renew the daemon's certificate or check this machine's clock"
	case errors.As(err, &notTLS):
		return "the server does not speak TLS", "check the address and port; keyfleetd serves https only"
	case errors.As(err, &netError) && netError.Timeout():
		return "timed out", "check the address and that keyfleetd is running and reachable"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by the server", running
	}
	return unwrapURL(err).Error(), "check the server address and that keyfleetd is running"
}

// unwrapURL drops *url.Error's "Get "https://…":" prefix, which repeats the
// address the message already names.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
