// Package sdktest is the conformance suite for keyfleet factor kinds. A
// plugin runs it in its own tests with a constructor and a [Driver] that
// plays the user's side (an authenticator app, a key):
//
//	func TestConformance(t *testing.T) {
//		sdktest.Run(t, func(*testing.T) sdk.Factor { return myFactor{} }, driver)
//	}
//
// It checks, in order: Describe; enrol → verify; a wrong response;
// a replayed response; malformed responses; corrupted state; that secrets
// shown at enrolment do not leak into public fields; and concurrent calls.
//
// [GRPC] runs a Factor behind the real gRPC shim in-process, and [Build]
// with [Plugin] builds a plugin binary and starts it through the real
// plugin host (checksum pinning, AutoMTLS), so the same suite can run at
// every layer.
package sdktest

import (
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// Driver plays the user's side of one kind.
type Driver struct {
	// Enrol answers the enrolment that begun started, as the enrolling
	// side would (read Display, compute a first code, sign the
	// challenge…). It returns the response for FinishEnrol and an
	// Authenticator for the factor that enrolment creates. Required.
	Enrol func(t testing.TB, req sdk.BeginEnrolRequest, begun sdk.BeginEnrolResponse) ([]byte, Authenticator)
	// Options are passed to BeginEnrol and FinishEnrol.
	Options map[string]string
	// Start is Now for the first call; the zero value means
	// 2026-01-02 03:04:05 UTC.
	Start time.Time
	// Step is how far Now moves between one verification and the next;
	// the zero value means 5 minutes (past any TOTP window).
	Step time.Duration
	// NoReplayProtection skips the replay check, for kinds that do not
	// promise it. A kind that does (TOTP, HOTP, challenge-response) must
	// leave it false.
	NoReplayProtection bool
}

// Authenticator is the user's side of one enrolled factor.
type Authenticator interface {
	// Respond returns a valid response to the verification that begun
	// started at req.Now. For an out-of-band kind it answers as the
	// device would, from begun.Delivery, and as the user would, from
	// what begun.Prompt shows the verifying side.
	Respond(t testing.TB, req sdk.BeginVerifyRequest, begun sdk.BeginVerifyResponse) []byte
	// Wrong returns a well-formed response the kind must refuse (OK
	// false, no error).
	Wrong(t testing.TB, req sdk.BeginVerifyRequest, begun sdk.BeginVerifyResponse) []byte
}

func (d Driver) start() time.Time {
	if d.Start.IsZero() {
		return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	}
	return d.Start
}

func (d Driver) step() time.Duration {
	if d.Step == 0 {
		return 5 * time.Minute
	}
	return d.Step
}

// Reporter is implemented by an Authenticator of an out-of-band kind
// whose users can report a verification they did not start ("this
// wasn't me"); the suite then checks that a report is refused and marked
// sdk.FinishVerifyResponse.Reported.
type Reporter interface {
	Report(t testing.TB, req sdk.BeginVerifyRequest, begun sdk.BeginVerifyResponse) []byte
}
