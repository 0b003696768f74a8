package sdktest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// callTimeout bounds each call the suite makes.
const callTimeout = 30 * time.Second

var kindRE = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// Run runs the conformance suite against the Factor newFactor returns.
// newFactor is called once per subtest; it may return the same Factor.
func Run(t *testing.T, newFactor func(t *testing.T) sdk.Factor, d Driver) {
	t.Helper()
	if d.Enrol == nil {
		t.Fatal("sdktest: Driver.Enrol is required")
	}
	tests := []suiteTest{
		{"it describes itself with a valid kind name", testDescribe},
		{"an enrolled factor verifies at successive times", testEnrolVerify},
		{"a wrong response is refused without an error", testWrong},
		{"a replayed response is refused", testReplay},
		{"a malformed enrolment response is an invalid request", testMalformedEnrol},
		{"a malformed verification response is refused", testMalformedVerify},
		{"corrupted state is refused and never panics", testCorruptState},
		{"secrets shown at enrolment stay out of public fields", testNoLeak},
		{"concurrent enrolments and verifications are independent", testConcurrent},
	}
	if outOfBand(t, newFactor) {
		tests = append(tests, outOfBandTests()...)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newFactor(t), d) })
	}
}

// suiteTest is one check of the suite.
type suiteTest struct {
	name string
	run  func(*testing.T, sdk.Factor, Driver)
}

// outOfBand asks the kind whether it is answered out of band.
func outOfBand(t *testing.T, newFactor func(t *testing.T) sdk.Factor) bool {
	info, err := newFactor(t).Describe(ctxFor(t))
	return err == nil && info.OutOfBand
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	t.Cleanup(cancel)
	return ctx
}

func challenge(t testing.TB) []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// factor is one enrolled factor and the host's view of it.
type factor struct {
	user  sdk.User
	id    string
	state []byte
	auth  Authenticator
	now   time.Time
	begun sdk.BeginEnrolResponse
	res   sdk.FinishEnrolResponse
}

func testUser(n int) sdk.User {
	return sdk.User{ID: fmt.Sprintf("u-%d", n), Username: fmt.Sprintf("user%d", n), DisplayName: fmt.Sprintf("User %d", n)}
}

// enrol runs BeginEnrol and FinishEnrol with the driver's answer.
func enrol(t testing.TB, f sdk.Factor, d Driver, user sdk.User, now time.Time) *factor {
	t.Helper()
	ctx := ctxFor(t)
	breq := sdk.BeginEnrolRequest{User: user, EnrolmentID: "enr-" + user.ID, Challenge: challenge(t), Options: d.Options, Now: now}
	begun, err := f.BeginEnrol(ctx, breq)
	if err != nil {
		t.Fatalf("BeginEnrol: %v", err)
	}
	resp, auth := d.Enrol(t, breq, begun)
	res, err := f.FinishEnrol(ctx, sdk.FinishEnrolRequest{User: user, EnrolmentID: breq.EnrolmentID, Challenge: breq.Challenge,
		State: begun.State, Options: d.Options, Response: resp, Now: now})
	if err != nil {
		t.Fatalf("FinishEnrol with the driver's response: %v", err)
	}
	return &factor{user: user, id: "f-" + user.ID, state: res.State, auth: auth, now: now, begun: begun, res: res}
}

// answer picks a response for a verification.
type answer func(a Authenticator, t testing.TB, req sdk.BeginVerifyRequest, begun sdk.BeginVerifyResponse) []byte

var (
	valid answer = Authenticator.Respond
	wrong answer = Authenticator.Wrong
)

// attempt is one verification: what was asked, answered and decided.
type attempt struct {
	begun    sdk.BeginVerifyResponse
	response []byte
	res      sdk.FinishVerifyResponse
	err      error
}

// verify moves time on, runs BeginVerify and FinishVerify, and keeps any
// new state as the host would.
func (fa *factor) verify(t testing.TB, f sdk.Factor, d Driver, pick answer) attempt {
	t.Helper()
	fa.now = fa.now.Add(d.step())
	ctx := ctxFor(t)
	breq := fa.beginReq(t)
	begun, err := f.BeginVerify(ctx, breq)
	if err != nil {
		t.Fatalf("BeginVerify: %v", err)
	}
	resp := pick(fa.auth, t, breq, begun)
	return fa.finish(t, f, begun, resp)
}

// verifications numbers the verifications the suite begins.
var verifications atomic.Int64

// beginReq is a BeginVerify request for the factor at its current time,
// with a fresh challenge and verification id and a sign-in context.
func (fa *factor) beginReq(t testing.TB) sdk.BeginVerifyRequest {
	return sdk.BeginVerifyRequest{User: fa.user, FactorID: fa.id, State: fa.state, Challenge: challenge(t), Now: fa.now,
		VerificationID: fmt.Sprintf("ver_sdktest_%d", verifications.Add(1)),
		Context:        sdk.VerifyContext{Application: "sdktest", Address: "192.0.2.1"}}
}

// finish runs FinishVerify at the factor's current time.
func (fa *factor) finish(t testing.TB, f sdk.Factor, begun sdk.BeginVerifyResponse, resp []byte) attempt {
	res, err := f.FinishVerify(ctxFor(t), sdk.FinishVerifyRequest{User: fa.user, FactorID: fa.id, State: fa.state,
		Session: begun.Session, Response: resp, Now: fa.now})
	if err == nil && res.OK && res.State != nil {
		fa.state = res.State
	}
	return attempt{begun: begun, response: resp, res: res, err: err}
}

// isSentinel reports whether err wraps one of the sdk's errors.
func isSentinel(err error) bool {
	for _, s := range []error{sdk.ErrInvalidRequest, sdk.ErrInvalidState, sdk.ErrUnsupported, sdk.ErrUnavailable} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
