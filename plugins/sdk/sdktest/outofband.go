package sdktest

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// Checks for out-of-band kinds (sdk.Info.OutOfBand): their answers come
// from a device, through channels and relays the host does not control,
// and count only until a deadline.

// maxDeadline bounds how long an out-of-band verification may wait.
const maxDeadline = time.Hour

func outOfBandTests() []suiteTest {
	return []suiteTest{
		{"an out-of-band verification has a delivery and a deadline", testDelivery},
		{"an out-of-band answer after the deadline is refused", testLate},
		{"an out-of-band answer counts only for the factor it was made for", testOtherFactor},
		{"a reported verification is refused and marked reported", testReported},
	}
}

func testDelivery(t *testing.T, f sdk.Factor, d Driver) {
	fa := enrol(t, f, d, testUser(20), d.start())
	breq := fa.beginReq(t)
	begun, err := f.BeginVerify(ctxFor(t), breq)
	if err != nil {
		t.Fatalf("BeginVerify: %v", err)
	}
	var obj map[string]any
	if err := json.Unmarshal(begun.Delivery, &obj); err != nil {
		t.Errorf("Delivery %q is not a JSON object: %v", begun.Delivery, err)
	}
	if !begun.Deadline.After(breq.Now) || begun.Deadline.Sub(breq.Now) > maxDeadline {
		t.Errorf("Deadline %v for a verification begun at %v: want after it, within %v", begun.Deadline, breq.Now, maxDeadline)
	}
	if len(begun.Session) > 0 && bytes.Contains(begun.Delivery, begun.Session) {
		t.Error("the Delivery carries the Session, which relays must not see")
	}
}

func testLate(t *testing.T, f sdk.Factor, d Driver) {
	fa := enrol(t, f, d, testUser(21), d.start())
	breq := fa.beginReq(t)
	begun, err := f.BeginVerify(ctxFor(t), breq)
	if err != nil {
		t.Fatalf("BeginVerify: %v", err)
	}
	resp := fa.auth.Respond(t, breq, begun)
	fa.now = begun.Deadline.Add(time.Second)
	a := fa.finish(t, f, begun, resp)
	if a.res.OK {
		t.Fatal("an answer one second after the deadline was accepted")
	}
	if a.err != nil && !isSentinel(a.err) {
		t.Errorf("a late answer gave %v, which wraps no sdk sentinel", a.err)
	}
}

// testOtherFactor: the user has two devices; an answer one of them made
// is sent for the other's verification.
func testOtherFactor(t *testing.T, f sdk.Factor, d Driver) {
	user := testUser(22)
	one, two := enrol(t, f, d, user, d.start()), enrol(t, f, d, user, d.start())
	two.id = "f-second-" + user.ID
	r1, r2 := one.beginReq(t), two.beginReq(t)
	r2.VerificationID = r1.VerificationID // one verification offering both
	b1, err1 := f.BeginVerify(ctxFor(t), r1)
	b2, err2 := f.BeginVerify(ctxFor(t), r2)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatalf("BeginVerify: %v", err)
	}
	resp := one.auth.Respond(t, r1, b1)
	if a := two.finish(t, f, b2, resp); a.res.OK {
		t.Fatal("the first device's answer was accepted for the second device")
	}
	if a := one.finish(t, f, b1, resp); !a.res.OK {
		t.Fatalf("the first device's answer for its own factor: OK=false (%q, %v)", a.res.Reason, a.err)
	}
}

func testReported(t *testing.T, f sdk.Factor, d Driver) {
	fa := enrol(t, f, d, testUser(23), d.start())
	rep, ok := fa.auth.(Reporter)
	if !ok {
		t.Skip("the driver's Authenticator does not implement Reporter")
	}
	breq := fa.beginReq(t)
	begun, err := f.BeginVerify(ctxFor(t), breq)
	if err != nil {
		t.Fatalf("BeginVerify: %v", err)
	}
	a := fa.finish(t, f, begun, rep.Report(t, breq, begun))
	if a.err != nil || a.res.OK || !a.res.Reported || !a.res.Suspicious {
		t.Fatalf("a report: OK=%v Reported=%v Suspicious=%v err=%v, want refused, reported and suspicious",
			a.res.OK, a.res.Reported, a.res.Suspicious, a.err)
	}
}
