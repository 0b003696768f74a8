// Package sdk is what a keyfleet factor plugin imports. A plugin implements
// [Factor] in plain Go types and calls Serve (see serve.go) from main; the
// daemon's plugin host speaks gRPC to it behind the scenes.
//
// The daemon's built-in kinds (piv, fido2) implement the same interface,
// so every kind of factor looks the same to the lifecycle.
//
// Out-of-band kinds (a push to a phone) are answered away from the
// verifying side: BeginVerify returns a Delivery for the user's device and
// a Deadline, the host delivers it and keeps the verification pending
// until the device's answer arrives (or the deadline passes), and then
// hands that answer to FinishVerify. See [Info.OutOfBand].
//
// Plugins are stateless. The host keeps each factor's state (a TOTP seed,
// the last accepted time step), sealed at rest, and hands it back on every
// call; a plugin returns the updated state. Time is passed in (Now), never
// read from the plugin's clock, so results do not depend on where the
// plugin runs and tests can pin it.
//
// The interface and its types do no I/O and never log. [Serve] is the one
// function that does: it runs the plugin's side of the gRPC protocol, and
// the package's gRPC shims (grpc_server.go, grpc_client.go) keep protobuf
// out of the author's code. The conformance suite is in package sdktest.
package sdk

import (
	"context"
	"errors"
	"time"
)

// Factor is one kind of authentication factor.
type Factor interface {
	// Describe says what the kind is and what it needs.
	Describe(ctx context.Context) (Info, error)
	// BeginEnrol starts enrolling a factor for a user.
	BeginEnrol(ctx context.Context, req BeginEnrolRequest) (BeginEnrolResponse, error)
	// FinishEnrol checks the enrolling side's answer and returns the new
	// factor's state and public material.
	FinishEnrol(ctx context.Context, req FinishEnrolRequest) (FinishEnrolResponse, error)
	// BeginVerify starts a verification (a challenge, when the kind needs
	// one; TOTP needs none).
	BeginVerify(ctx context.Context, req BeginVerifyRequest) (BeginVerifyResponse, error)
	// FinishVerify checks a user's response.
	FinishVerify(ctx context.Context, req FinishVerifyRequest) (FinishVerifyResponse, error)
}

// Info describes a kind.
type Info struct {
	Kind        string // the name factors carry: "totp", "hotp", …; [a-z0-9_-]{1,32}
	DisplayName string // for people: "Authenticator app (TOTP)"
	Version     string // the plugin's own version
	// Hardware is true when the factor lives on a physical key; policy
	// treats hardware factors as stronger.
	Hardware bool
	// EnrolInputs and VerifyInputs name what the enrolling side and the
	// verifying side must send in Response.
	EnrolInputs  []Input
	VerifyInputs []Input
	// OutOfBand is true for a kind whose verifications are answered on a
	// device of the user's (a push), not by the side that began them.
	// BeginVerify then returns a Delivery and a Deadline: the host sends
	// the delivery to the factor's device, keeps the verification
	// pending, lets the verifying side wait for or poll its outcome, and
	// calls FinishVerify once with the device's answer as Response. An
	// answer that never comes closes the verification at the deadline
	// without FinishVerify.
	OutOfBand bool
	// ChallengeFree promises that BeginVerify keeps no session and that
	// a response does not depend on a challenge (a TOTP or HOTP code):
	// the daemon then checks a response in one call (POST /v1/verify)
	// with FinishVerify alone, without calling BeginVerify first. Leave
	// it false for a kind that signs or answers a challenge; the daemon
	// refuses one-call verification for such kinds.
	ChallengeFree bool
}

// Input is one field a kind expects in a response.
type Input struct {
	Name        string // JSON field name in Response
	Description string
}

// User is who a factor belongs to.
type User struct {
	ID, Username, DisplayName string
	Groups, Roles             []string
}

// Device identifies the physical key a factor lives on.
type Device struct {
	Vendor, Model, Serial, Firmware string
}

// BeginEnrolRequest starts an enrolment.
type BeginEnrolRequest struct {
	User        User
	EnrolmentID string
	// Challenge is 32 random bytes, single use, bound to this enrolment.
	Challenge []byte
	// Options are what policy asks of this enrolment (e.g. "pin_policy").
	Options map[string]string
	Now     time.Time
}

// BeginEnrolResponse is what the enrolling side needs.
type BeginEnrolResponse struct {
	// Display is shown once to the person enrolling (a TOTP otpauth URI)
	// and never stored. It may carry a secret.
	Display map[string]string
	// Params are kept on the enrolment and may be read again (PIV: slot,
	// PIN policy). They must not carry a secret.
	Params map[string]string
	// State is sealed by the host and handed back to FinishEnrol.
	State []byte
}

// FinishEnrolRequest carries the enrolling side's answer.
type FinishEnrolRequest struct {
	User        User
	EnrolmentID string
	Challenge   []byte
	State       []byte // from BeginEnrol
	Options     map[string]string
	// Response is the enrolling side's answer, as JSON whose fields the
	// kind names in Info.EnrolInputs.
	Response []byte
	Now      time.Time
}

// FinishEnrolResponse describes the new factor.
type FinishEnrolResponse struct {
	// State is the factor's secret state, sealed and kept by the host.
	State []byte
	// Public is public material (JSON), shown in the API.
	Public []byte
	// Evidence is verified attestation (JSON), shown in the API.
	Evidence []byte
	Device   *Device
	// Pending leaves the factor pending until it is activated.
	Pending bool
}

// BeginVerifyRequest starts a verification of one factor.
type BeginVerifyRequest struct {
	User     User
	FactorID string
	State    []byte // the factor's state
	// Challenge is 32 random bytes from the host, fresh for each
	// verification and finished once. It is not secret: every factor a
	// verification offers gets the same one (so that a browser can ask
	// for any of a user's security keys at once), and prompts show it.
	// A kind that needs a secret keeps its own in Session.
	Challenge []byte
	Now       time.Time
	// VerificationID names this verification, unique and not secret.
	// An out-of-band kind has the device sign it, so that an answer
	// counts for this verification only.
	VerificationID string
	// Context says who asked and from where, for a kind that shows it
	// to the user (a push: "alice signing in to VPN from 203.0.113.7").
	Context VerifyContext
}

// VerifyContext describes the sign-in a verification is for. Both fields
// come from the verifying side and are shown as they are; empty when it
// gave none.
type VerifyContext struct {
	Application string // what the user is signing in to
	Address     string // the address the sign-in comes from
}

// BeginVerifyResponse is what the verifying side needs.
type BeginVerifyResponse struct {
	// Prompt is sent to the verifying side (JSON); nil when none is needed.
	// An out-of-band kind says here what the user must do on the device
	// (a number to pick).
	Prompt []byte
	// Session is kept by the host (sealed) and handed to FinishVerify.
	Session []byte
	// Delivery is an out-of-band kind's message for the user's device
	// (JSON); the host sends it over the device's channel and through
	// relays it does not control, so it must carry nothing that lets its
	// reader answer: no secret, nothing from Session. Nil for other kinds.
	Delivery []byte
	// Deadline is when an out-of-band verification stops waiting for
	// the device's answer; FinishVerify refuses answers after it. Zero
	// for other kinds.
	Deadline time.Time
}

// FinishVerifyRequest carries a user's response.
type FinishVerifyRequest struct {
	User     User
	FactorID string
	State    []byte // the factor's state
	Session  []byte // from BeginVerify, nil for one-step kinds
	Response []byte // JSON with the fields in Info.VerifyInputs
	Now      time.Time
}

// FinishVerifyResponse is the outcome of a verification.
type FinishVerifyResponse struct {
	// OK is true when the response proves possession of the factor.
	OK bool
	// State replaces the factor's state when not nil (e.g. the last
	// accepted TOTP time step, a sign counter).
	State []byte
	// Reason says why OK is false, for logs and audit (never a secret).
	Reason string
	// Suspicious marks a failure that looks like an attack (a replayed
	// code, a sign-counter regression); the host raises a security event.
	Suspicious bool
	// Reported means the user said they did not start this verification
	// ("this wasn't me" on a push). OK is false; the host treats it as
	// fraud: it stops prompting the user and raises a high-severity event.
	Reported bool
}

// Errors a Factor returns. A wrong response is not an error (OK false);
// these are for requests that cannot be processed.
var (
	// ErrInvalidRequest: the request or response is malformed.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrInvalidState: the stored state is corrupt or not this kind's.
	ErrInvalidState = errors.New("invalid factor state")
	// ErrUnsupported: the kind does not support this operation.
	ErrUnsupported = errors.New("not supported by this factor kind")
	// ErrUnavailable: the kind cannot answer now and the caller may try
	// again (a plugin crashed, hung past its timeout or is restarting, or
	// a service the kind depends on is down). The daemon answers 503.
	ErrUnavailable = errors.New("factor kind unavailable")
)
