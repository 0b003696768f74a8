package sdktest

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/plugins/sdk"
)

func testDescribe(t *testing.T, f sdk.Factor, _ Driver) {
	info, err := f.Describe(ctxFor(t))
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if !kindRE.MatchString(info.Kind) {
		t.Errorf("Kind %q: want 1-32 of a-z 0-9 _ -", info.Kind)
	}
	if info.DisplayName == "" || info.Version == "" {
		t.Errorf("DisplayName %q, Version %q: want both set", info.DisplayName, info.Version)
	}
	for _, in := range append(info.EnrolInputs, info.VerifyInputs...) {
		if in.Name == "" {
			t.Errorf("an input has no name: %+v", in)
		}
	}
}

func testEnrolVerify(t *testing.T, f sdk.Factor, d Driver) {
	fa := enrol(t, f, d, testUser(1), d.start())
	if len(fa.state) == 0 {
		t.Fatal("FinishEnrol returned no state")
	}
	for i := range 3 {
		a := fa.verify(t, f, d, valid)
		if a.err != nil || !a.res.OK {
			t.Fatalf("verification %d: OK=%v reason=%q err=%v, want OK", i+1, a.res.OK, a.res.Reason, a.err)
		}
	}
}

func testWrong(t *testing.T, f sdk.Factor, d Driver) {
	fa := enrol(t, f, d, testUser(2), d.start())
	a := fa.verify(t, f, d, wrong)
	if a.err != nil || a.res.OK {
		t.Fatalf("wrong response: OK=%v err=%v, want OK=false and no error", a.res.OK, a.err)
	}
	if a.res.Reason == "" {
		t.Error("a refused verification gave no Reason")
	}
	if a := fa.verify(t, f, d, valid); !a.res.OK {
		t.Fatalf("a valid response after a wrong one: OK=false (%q, %v)", a.res.Reason, a.err)
	}
}

func testReplay(t *testing.T, f sdk.Factor, d Driver) {
	if d.NoReplayProtection {
		t.Skip("the driver says this kind does not promise replay protection")
	}
	fa := enrol(t, f, d, testUser(3), d.start())
	first := fa.verify(t, f, d, valid)
	if !first.res.OK {
		t.Fatalf("first verification: OK=false (%q, %v)", first.res.Reason, first.err)
	}
	// The attacker starts a new verification at the same moment and sends
	// the captured response.
	begun, err := f.BeginVerify(ctxFor(t), fa.beginReq(t))
	if err != nil {
		t.Fatalf("BeginVerify: %v", err)
	}
	again := fa.finish(t, f, begun, first.response)
	if again.res.OK {
		t.Fatal("the same response was accepted twice")
	}
	if again.err != nil && !isSentinel(again.err) {
		t.Errorf("replay: error %v wraps no sdk sentinel", again.err)
	}
}

func testMalformedEnrol(t *testing.T, f sdk.Factor, d Driver) {
	for _, resp := range [][]byte{nil, []byte("not json"), []byte(`{`), []byte(`[]`)} {
		ctx := ctxFor(t)
		breq := sdk.BeginEnrolRequest{User: testUser(4), EnrolmentID: "enr-m", Challenge: challenge(t), Options: d.Options, Now: d.start()}
		begun, err := f.BeginEnrol(ctx, breq)
		if err != nil {
			t.Fatalf("BeginEnrol: %v", err)
		}
		_, err = f.FinishEnrol(ctx, sdk.FinishEnrolRequest{User: breq.User, EnrolmentID: breq.EnrolmentID,
			Challenge: breq.Challenge, State: begun.State, Options: d.Options, Response: resp, Now: d.start()})
		if !errors.Is(err, sdk.ErrInvalidRequest) {
			t.Errorf("FinishEnrol(%q): err = %v, want sdk.ErrInvalidRequest", resp, err)
		}
	}
}

func testMalformedVerify(t *testing.T, f sdk.Factor, d Driver) {
	fa := enrol(t, f, d, testUser(5), d.start())
	for _, resp := range [][]byte{nil, []byte("not json"), []byte(`{`), []byte(`[]`), []byte(`{}`)} {
		fa.now = fa.now.Add(d.step())
		a := fa.finish(t, f, sdk.BeginVerifyResponse{}, resp)
		if a.res.OK {
			t.Errorf("FinishVerify(%q) was accepted", resp)
		}
		if a.err != nil && !errors.Is(a.err, sdk.ErrInvalidRequest) {
			t.Errorf("FinishVerify(%q): err = %v, want nil or sdk.ErrInvalidRequest", resp, a.err)
		}
	}
}

// corruptions of a state: the ones that cannot be a valid state must be
// refused as sdk.ErrInvalidState; bit flips only must not panic.
func corruptions(state []byte) (invalid map[string][]byte, flips [][]byte) {
	invalid = map[string][]byte{
		"nil":      nil,
		"empty":    {},
		"garbage":  []byte("\x00\xffnot a state\x01"),
		"a prefix": state[:len(state)/2],
	}
	for i := 0; i < len(state); i += 1 + len(state)/64 {
		c := bytes.Clone(state)
		c[i] ^= 0x01
		flips = append(flips, c)
	}
	return invalid, flips
}

// testCorruptState hands the kind broken state with an otherwise valid
// response. Bit flips may still parse (the host's sealing, not the kind,
// detects tampering), so for them it only checks that nothing panics and
// errors are sentinels.
func testCorruptState(t *testing.T, f sdk.Factor, d Driver) {
	fa := enrol(t, f, d, testUser(6), d.start())
	fa.now = fa.now.Add(d.step())
	breq := fa.beginReq(t)
	begun, err := f.BeginVerify(ctxFor(t), breq)
	if err != nil {
		t.Fatalf("BeginVerify: %v", err)
	}
	resp := fa.auth.Respond(t, breq, begun)
	invalid, flips := corruptions(fa.state)
	for name, st := range invalid {
		breq.State, fa.state = st, st
		_, berr := f.BeginVerify(ctxFor(t), breq)
		a := fa.finish(t, f, begun, resp)
		if a.res.OK || !errors.Is(a.err, sdk.ErrInvalidState) {
			t.Errorf("%s state: FinishVerify OK=%v err=%v, want sdk.ErrInvalidState", name, a.res.OK, a.err)
		}
		if berr != nil && !errors.Is(berr, sdk.ErrInvalidState) {
			t.Errorf("%s state: BeginVerify err=%v, want nil or sdk.ErrInvalidState", name, berr)
		}
	}
	for _, st := range flips {
		fa.state = st
		if a := fa.finish(t, f, begun, resp); a.err != nil && !isSentinel(a.err) {
			t.Errorf("a flipped state gave %v, which wraps no sdk sentinel", a.err)
		}
	}
}

func testNoLeak(t *testing.T, f sdk.Factor, d Driver) {
	fa := enrol(t, f, d, testUser(7), d.start())
	a := fa.verify(t, f, d, valid)
	w := fa.verify(t, f, d, wrong)
	public := map[string][]byte{
		"Params": []byte(fmt.Sprint(fa.begun.Params)), "Public": fa.res.Public, "Evidence": fa.res.Evidence,
		"Prompt": a.begun.Prompt, "Reason": []byte(w.res.Reason + a.res.Reason), "Delivery": a.begun.Delivery,
	}
	for dk, secret := range fa.begun.Display {
		if len(secret) < 8 {
			continue
		}
		for field, b := range public {
			if strings.Contains(string(b), secret) {
				t.Errorf("Display[%q] appears in %s", dk, field)
			}
		}
	}
}

func testConcurrent(t *testing.T, f sdk.Factor, d Driver) {
	for i := range 8 {
		t.Run(fmt.Sprintf("user %d", i), func(t *testing.T) {
			t.Parallel()
			fa := enrol(t, f, d, testUser(100+i), d.start())
			for range 5 {
				if a := fa.verify(t, f, d, valid); !a.res.OK {
					t.Fatalf("OK=false (%q, %v)", a.res.Reason, a.err)
				}
				if a := fa.verify(t, f, d, wrong); a.res.OK {
					t.Fatal("a wrong response was accepted")
				}
			}
		})
	}
}
