package push_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/plugins/push"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

var t0 = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

// enrolled is one enrolled push factor and its companion.
type enrolled struct {
	dev   *push.Device
	state []byte
	pub   push.Public
}

func enrolDevice(t *testing.T, opts map[string]string) enrolled {
	t.Helper()
	ctx := context.Background()
	begun, err := push.Factor{}.BeginEnrol(ctx, sdk.BeginEnrolRequest{EnrolmentID: "enr_1", Options: opts, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	dev, _ := push.NewDevice(nil)
	r, _ := dev.Enrol("enr_1", begun.Params["nonce"], "Pixel", "non-extractable")
	b, _ := json.Marshal(r)
	res, err := push.Factor{}.FinishEnrol(ctx, sdk.FinishEnrolRequest{EnrolmentID: "enr_1", State: begun.State, Response: b, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	dev.FactorID = "fac_1"
	e := enrolled{dev: dev, state: res.State}
	json.Unmarshal(res.Public, &e.pub)
	return e
}

// pushed is one begun push as the application and the device see it.
type pushed struct {
	begun    sdk.BeginVerifyResponse
	prompt   push.Prompt
	delivery push.Delivery
}

func (e enrolled) begin(t *testing.T, vid string) pushed {
	t.Helper()
	b, err := push.Factor{}.BeginVerify(context.Background(), sdk.BeginVerifyRequest{User: sdk.User{Username: "alice"},
		FactorID: "fac_1", State: e.state, Now: t0, VerificationID: vid,
		Context: sdk.VerifyContext{Application: "VPN", Address: "203.0.113.7"}})
	if err != nil {
		t.Fatal(err)
	}
	p := pushed{begun: b}
	json.Unmarshal(b.Prompt, &p.prompt)
	json.Unmarshal(b.Delivery, &p.delivery)
	return p
}

func (e enrolled) finish(t *testing.T, p pushed, a push.Answer, at time.Time) sdk.FinishVerifyResponse {
	t.Helper()
	b, _ := json.Marshal(a)
	res, err := push.Factor{}.FinishVerify(context.Background(), sdk.FinishVerifyRequest{FactorID: "fac_1", State: e.state,
		Session: p.begun.Session, Response: b, Now: at})
	if err != nil {
		t.Fatalf("FinishVerify: %v", err)
	}
	return res
}

func TestAPushCarriesTheContextAndThreeChoicesButNotTheAnswer(t *testing.T) {
	e := enrolDevice(t, nil)
	p := e.begin(t, "ver_1")
	d := p.delivery
	if d.User != "alice" || d.Application != "VPN" || d.Address != "203.0.113.7" || !d.Time.Equal(t0) || !d.Deadline.Equal(t0.Add(60*time.Second)) {
		t.Errorf("delivery %+v", d)
	}
	if len(d.Choices) != 3 || !slices.Contains(d.Choices, p.prompt.Number) || len(p.prompt.Number) != 2 {
		t.Fatalf("choices %v, number %q", d.Choices, p.prompt.Number)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(d.Choices)))) != 3 {
		t.Errorf("choices repeat: %v", d.Choices)
	}
	if strings.Contains(string(p.begun.Delivery), `"n"`) || strings.Contains(string(p.begun.Delivery), string(p.begun.Session)) {
		t.Errorf("the delivery carries the session: %s", p.begun.Delivery)
	}
	if !p.begun.Deadline.Equal(d.Deadline) || !strings.Contains(p.prompt.Message, p.prompt.Number) {
		t.Errorf("prompt %+v, deadline %v", p.prompt, p.begun.Deadline)
	}
	if e.pub.NumberMatching != "true" || e.pub.Timeout != "60" || e.pub.DeviceName != "Pixel" || e.pub.KeyProtection != "non-extractable" {
		t.Errorf("public %+v", e.pub)
	}
}

func TestTheRightNumberIsPlacedAnywhereAmongTheChoices(t *testing.T) {
	e := enrolDevice(t, nil)
	seen := map[int]bool{}
	for i := 0; i < 200 && len(seen) < 3; i++ {
		p := e.begin(t, "ver_x")
		seen[slices.Index(p.delivery.Choices, p.prompt.Number)] = true
	}
	if len(seen) != 3 {
		t.Fatalf("the right number took only positions %v in 200 pushes", seen)
	}
}

func TestAnswersAreJudged(t *testing.T) {
	e := enrolDevice(t, nil)
	stranger, _ := push.NewDevice(nil)
	stranger.FactorID = "fac_1"
	tests := []struct {
		name       string
		answer     func(p pushed) push.Answer
		at         time.Duration // after t0
		ok         bool
		suspicious bool
		reported   bool
	}{
		{"the right number within the deadline is verified", func(p pushed) push.Answer {
			a, _ := e.dev.Answer(p.delivery, p.prompt.Number, push.Approve, t0.Add(5*time.Second))
			return a
		}, 5 * time.Second, true, false, false},
		{"a wrong number is refused", func(p pushed) push.Answer {
			a, _ := e.dev.Answer(p.delivery, other(p.prompt.Number, p.delivery.Choices), push.Approve, t0)
			return a
		}, time.Second, false, false, false},
		{"a number not on offer is refused", func(p pushed) push.Answer {
			a, _ := e.dev.Answer(p.delivery, "100", push.Approve, t0)
			return a
		}, time.Second, false, false, false},
		{"the right number after the deadline is refused", func(p pushed) push.Answer {
			a, _ := e.dev.Answer(p.delivery, p.prompt.Number, push.Approve, t0.Add(61*time.Second))
			return a
		}, 61 * time.Second, false, false, false},
		{"a deny is refused", func(p pushed) push.Answer {
			a, _ := e.dev.Answer(p.delivery, "", push.Deny, t0)
			return a
		}, time.Second, false, false, false},
		{"this wasn't me is refused, suspicious and reported", func(p pushed) push.Answer {
			a, _ := e.dev.Answer(p.delivery, "", push.Report, t0)
			return a
		}, time.Second, false, true, true},
		{"an answer signed by another key is refused as suspicious", func(p pushed) push.Answer {
			a, _ := stranger.Answer(p.delivery, p.prompt.Number, push.Approve, t0)
			return a
		}, time.Second, false, true, false},
		{"a report signed by another key locks nothing", func(p pushed) push.Answer {
			a, _ := stranger.Answer(p.delivery, "", push.Report, t0)
			return a
		}, time.Second, false, true, false},
		{"a signed answer whose number was changed on the way is refused", func(p pushed) push.Answer {
			a, _ := e.dev.Answer(p.delivery, other(p.prompt.Number, p.delivery.Choices), push.Approve, t0)
			a.Number = p.prompt.Number
			return a
		}, time.Second, false, true, false},
		{"a deny turned into an approval on the way is refused", func(p pushed) push.Answer {
			a, _ := e.dev.Answer(p.delivery, p.prompt.Number, push.Deny, t0)
			a.Decision = push.Approve
			return a
		}, time.Second, false, true, false},
		{"an answer signed an hour before the push is refused", func(p pushed) push.Answer {
			a, _ := e.dev.Answer(p.delivery, p.prompt.Number, push.Approve, t0.Add(-time.Hour))
			return a
		}, time.Second, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := e.begin(t, "ver_"+tt.name)
			res := e.finish(t, p, tt.answer(p), t0.Add(tt.at))
			if res.OK != tt.ok || res.Suspicious != tt.suspicious || res.Reported != tt.reported || (!res.OK && res.Reason == "") {
				t.Fatalf("got %+v, want OK=%v suspicious=%v reported=%v", res, tt.ok, tt.suspicious, tt.reported)
			}
		})
	}
}

func TestAnAnswerCountsForItsOwnPushOnly(t *testing.T) {
	e := enrolDevice(t, nil)
	first := e.begin(t, "ver_first")
	a, _ := e.dev.Answer(first.delivery, first.prompt.Number, push.Approve, t0)
	if res := e.finish(t, first, a, t0.Add(time.Second)); !res.OK {
		t.Fatalf("first: %+v", res)
	}
	// The attacker who captured the answer starts a sign-in of their own
	// and sends it, whatever number their push shows.
	second := e.begin(t, "ver_second")
	if res := e.finish(t, second, a, t0.Add(2*time.Second)); res.OK {
		t.Fatal("an answer to one push was accepted for another")
	}
	a.VerificationID = "ver_second" // and edited: the signature no longer holds
	if res := e.finish(t, second, a, t0.Add(2*time.Second)); res.OK || !res.Suspicious {
		t.Fatalf("an edited answer: %+v", res)
	}
}

// TestARelayThatSeesEverythingCannotApprove: a relay holds the delivery
// (who, what, where, the three choices and the ids) and, being the relay,
// every answer it ever forwarded. With none of it can it approve a push.
func TestARelayThatSeesEverythingCannotApprove(t *testing.T) {
	e := enrolDevice(t, nil)
	old := e.begin(t, "ver_old")
	forwarded, _ := e.dev.Answer(old.delivery, old.prompt.Number, push.Approve, t0)
	p := e.begin(t, "ver_now")
	relayKey, _ := push.NewDevice(nil)
	relayKey.FactorID = "fac_1"
	for _, n := range p.delivery.Choices {
		unsigned := push.Answer{VerificationID: p.delivery.VerificationID, FactorID: p.delivery.FactorID, Number: n, Decision: push.Approve, Time: t0.UnixMilli(), Signature: "AAAA"}
		ownKey, _ := relayKey.Answer(p.delivery, n, push.Approve, t0)
		borrowed := unsigned
		borrowed.Signature = forwarded.Signature
		for _, a := range []push.Answer{unsigned, ownKey, borrowed} {
			if res := e.finish(t, p, a, t0.Add(time.Second)); res.OK {
				t.Fatalf("the relay approved with %+v", a)
			}
		}
	}
}

func TestWithoutNumberMatchingTheDeviceApprovesOrDenies(t *testing.T) {
	e := enrolDevice(t, map[string]string{"number_matching": "false", "timeout": "20"})
	p := e.begin(t, "ver_nm")
	if p.delivery.Choices != nil || p.prompt.Number != "" || !p.begun.Deadline.Equal(t0.Add(20*time.Second)) || e.pub.NumberMatching != "false" {
		t.Fatalf("delivery %+v prompt %+v", p.delivery, p.prompt)
	}
	a, _ := e.dev.Answer(p.delivery, "", push.Approve, t0)
	if res := e.finish(t, p, a, t0.Add(time.Second)); !res.OK {
		t.Fatalf("approve: %+v", res)
	}
}

func TestEnrolmentIsConfirmedBySignatureOverItsOwnNonce(t *testing.T) {
	ctx := context.Background()
	begun, _ := push.Factor{}.BeginEnrol(ctx, sdk.BeginEnrolRequest{EnrolmentID: "enr_a", Now: t0})
	otherBegun, _ := push.Factor{}.BeginEnrol(ctx, sdk.BeginEnrolRequest{EnrolmentID: "enr_b", Now: t0})
	dev, _ := push.NewDevice(nil)
	impostor, _ := push.NewDevice(nil)
	good, _ := dev.Enrol("enr_a", begun.Params["nonce"], "Pixel", "")
	tests := []struct {
		name string
		resp func() push.EnrolResponse
	}{
		{"a signature over another enrolment's nonce", func() push.EnrolResponse {
			r, _ := dev.Enrol("enr_a", otherBegun.Params["nonce"], "Pixel", "")
			return r
		}},
		{"a signature by another key than the one registered", func() push.EnrolResponse {
			r, _ := impostor.Enrol("enr_a", begun.Params["nonce"], "Pixel", "")
			r.PublicKey = good.PublicKey
			return r
		}},
		{"a device name changed after signing", func() push.EnrolResponse { r := good; r.DeviceName = "Evil"; return r }},
		{"no device name", func() push.EnrolResponse { r, _ := dev.Enrol("enr_a", begun.Params["nonce"], " ", ""); return r }},
		{"a key that is not a P-256 point", func() push.EnrolResponse { r := good; r.PublicKey = "AAEC"; return r }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := json.Marshal(tt.resp())
			_, err := push.Factor{}.FinishEnrol(ctx, sdk.FinishEnrolRequest{EnrolmentID: "enr_a", State: begun.State, Response: b, Now: t0})
			if !errors.Is(err, sdk.ErrInvalidRequest) {
				t.Fatalf("err = %v, want sdk.ErrInvalidRequest", err)
			}
		})
	}
	b, _ := json.Marshal(good)
	if _, err := (push.Factor{}).FinishEnrol(ctx, sdk.FinishEnrolRequest{EnrolmentID: "enr_a", State: begun.State, Response: b, Now: t0}); err != nil {
		t.Fatalf("the good response: %v", err)
	}
}

func TestOptionsOutsideTheirRangeAreRefused(t *testing.T) {
	for _, opts := range []map[string]string{{"timeout": "5"}, {"timeout": "301"}, {"timeout": "soon"},
		{"number_matching": "maybe"}, {"colour": "blue"}} {
		if _, err := (push.Factor{}).BeginEnrol(context.Background(), sdk.BeginEnrolRequest{Options: opts, Now: t0}); !errors.Is(err, sdk.ErrInvalidRequest) {
			t.Errorf("options %v: err = %v, want sdk.ErrInvalidRequest", opts, err)
		}
	}
}

func TestTheDeviceHeaderRoundTrips(t *testing.T) {
	dev, _ := push.NewDevice(nil)
	dev.FactorID = "fac_9"
	h, _ := dev.Authorization("GET", "/v1/push/stream", t0)
	id, ms, sig, err := push.ParseDeviceHeader(h)
	if err != nil || id != "fac_9" || ms != t0.UnixMilli() || !push.Verify(&dev.Key.PublicKey, push.DeviceMessage("GET", "/v1/push/stream", id, ms), sig) {
		t.Fatalf("%q → %q %d %v", h, id, ms, err)
	}
	if push.Verify(&dev.Key.PublicKey, push.DeviceMessage("POST", "/v1/push/answer", id, ms), sig) {
		t.Fatal("a header signed for one request verified for another")
	}
	for _, bad := range []string{"", "factor=x", "factor=x, time=1, signature=!!", "factor=x, time=x, signature=AA", "factor=x, factor=y, time=1, signature=AA"} {
		if _, _, _, err := push.ParseDeviceHeader(bad); !errors.Is(err, push.ErrMalformed) {
			t.Errorf("%q: err = %v", bad, err)
		}
	}
}
