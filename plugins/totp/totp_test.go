package totp_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/plugins/sdk"
	"github.com/keyfleet/keyfleet/plugins/totp"
)

type rfcVectors struct {
	Seeds map[string]struct {
		Base32 string `json:"base32"`
	} `json:"seeds"`
	Period  int `json:"period"`
	Digits  int `json:"digits"`
	Vectors []struct {
		UnixTime  int64  `json:"unix_time"`
		Algorithm string `json:"algorithm"`
		TOTP      string `json:"totp"`
	} `json:"vectors"`
}

func loadVectors(t *testing.T) rfcVectors {
	b, err := os.ReadFile("testdata/rfc6238-totp-appendix-b.json")
	if err != nil {
		t.Fatal(err)
	}
	var v rfcVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Vectors) != 18 {
		t.Fatalf("%d vectors, want 18", len(v.Vectors))
	}
	return v
}

// RFC 6238 Appendix B: each code is computed, and each is accepted by
// FinishVerify at its own time.
func TestRFC6238AppendixB(t *testing.T) {
	v := loadVectors(t)
	for _, tv := range v.Vectors {
		t.Run(tv.Algorithm+" at "+strconv.FormatInt(tv.UnixTime, 10), func(t *testing.T) {
			seed := strings.TrimRight(v.Seeds[tv.Algorithm].Base32, "=")
			now := time.Unix(tv.UnixTime, 0)
			got, err := totp.Code(seed, tv.Algorithm, v.Digits, v.Period, now)
			if err != nil || got != tv.TOTP {
				t.Fatalf("Code = %q, %v; want %q", got, err, tv.TOTP)
			}
			st, _ := json.Marshal(map[string]any{"seed": seed, "alg": tv.Algorithm, "digits": v.Digits, "period": v.Period})
			res, err := totp.Factor{}.FinishVerify(context.Background(), sdk.FinishVerifyRequest{
				State: st, Response: codeJSON(tv.TOTP), Now: now})
			if err != nil || !res.OK {
				t.Fatalf("FinishVerify: OK=%v reason=%q err=%v", res.OK, res.Reason, err)
			}
		})
	}
}

func codeJSON(code string) []byte { return []byte(`{"code":"` + code + `"}`) }

// enrolled enrols a factor with opts at now and returns its state and seed.
func enrolled(t *testing.T, opts map[string]string, now time.Time) (state []byte, a *app) {
	t.Helper()
	f := totp.Factor{}
	req := sdk.BeginEnrolRequest{User: sdk.User{ID: "u1", Username: "alice"}, Options: opts, Now: now}
	begun, err := f.BeginEnrol(context.Background(), req)
	if err != nil {
		t.Fatalf("BeginEnrol: %v", err)
	}
	a = appFrom(t, begun)
	res, err := f.FinishEnrol(context.Background(), sdk.FinishEnrolRequest{State: begun.State, Options: opts,
		Response: codeJSON(a.code(t, now)), Now: now})
	if err != nil {
		t.Fatalf("FinishEnrol: %v", err)
	}
	return res.State, a
}

func TestReplayAndWindow(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 10, 0, time.UTC)
	tests := []struct {
		name           string
		first          *time.Duration // code time of a first, accepted verification, relative to now
		code           time.Duration  // code time of the checked one, relative to now
		ok, suspicious bool
	}{
		{"the current step's code is accepted", nil, 0, true, false},
		{"the previous step's code is accepted", nil, -30 * time.Second, true, false},
		{"the next step's code is accepted", nil, 30 * time.Second, true, false},
		{"a code two steps old is refused, not suspicious", nil, -60 * time.Second, false, false},
		{"a code two steps ahead is refused, not suspicious", nil, 60 * time.Second, false, false},
		{"the same code twice is a suspicious replay", ptr(0), 0, false, true},
		{"an older step's code after a newer one is a suspicious replay", ptr(30 * time.Second), 0, false, true},
		{"a newer step's code after an older one is accepted", ptr(-30 * time.Second), 30 * time.Second, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enrolAt := t0.Add(-10 * time.Minute)
			state, a := enrolled(t, nil, enrolAt)
			now := t0
			if tt.first != nil {
				state = mustVerify(t, state, a.code(t, now.Add(*tt.first)), now)
			}
			res, err := totp.Factor{}.FinishVerify(context.Background(), sdk.FinishVerifyRequest{
				State: state, Response: codeJSON(a.code(t, now.Add(tt.code))), Now: now})
			if err != nil || res.OK != tt.ok || res.Suspicious != tt.suspicious {
				t.Fatalf("OK=%v suspicious=%v err=%v reason=%q; want OK=%v suspicious=%v", res.OK, res.Suspicious, err, res.Reason, tt.ok, tt.suspicious)
			}
		})
	}
}

func ptr(d time.Duration) *time.Duration { return &d }

func mustVerify(t *testing.T, state []byte, code string, now time.Time) []byte {
	t.Helper()
	res, err := totp.Factor{}.FinishVerify(context.Background(), sdk.FinishVerifyRequest{State: state, Response: codeJSON(code), Now: now})
	if err != nil || !res.OK {
		t.Fatalf("verify: OK=%v err=%v reason=%q", res.OK, err, res.Reason)
	}
	return res.State
}

func TestEnrolmentOptions(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		opts map[string]string
		err  error
		uri  []string // query parameters the otpauth URI must carry
	}{
		{"the defaults are SHA1, 6 digits, 30 seconds", nil, nil, []string{"algorithm=SHA1", "digits=6", "period=30", "issuer=keyfleet"}},
		{"policy can ask for SHA256 and 8 digits", map[string]string{"algorithm": "SHA256", "digits": "8"}, nil, []string{"algorithm=SHA256", "digits=8"}},
		{"policy can ask for SHA-512 and 60 seconds", map[string]string{"algorithm": "sha-512", "period": "60"}, nil, []string{"algorithm=SHA512", "period=60"}},
		{"policy can name the issuer", map[string]string{"issuer": "Example Corp"}, nil, []string{"issuer=Example%20Corp"}},
		{"MD5 is refused", map[string]string{"algorithm": "MD5"}, sdk.ErrInvalidRequest, nil},
		{"7 digits are refused", map[string]string{"digits": "7"}, sdk.ErrInvalidRequest, nil},
		{"a 5 second period is refused", map[string]string{"period": "5"}, sdk.ErrInvalidRequest, nil},
		{"a period that is not a number is refused", map[string]string{"period": "soon"}, sdk.ErrInvalidRequest, nil},
		{"an option TOTP does not have is refused", map[string]string{"pin_policy": "never"}, sdk.ErrInvalidRequest, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			begun, err := totp.Factor{}.BeginEnrol(context.Background(), sdk.BeginEnrolRequest{
				User: sdk.User{Username: "alice"}, Options: tt.opts, Now: now})
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			for _, q := range tt.uri {
				if !strings.Contains(begun.Display["uri"], q) {
					t.Errorf("uri %q lacks %q", begun.Display["uri"], q)
				}
			}
			for k, v := range begun.Params {
				if strings.Contains(v, begun.Display["secret"]) {
					t.Errorf("Params[%q] carries the seed", k)
				}
			}
			state, a := enrolled(t, tt.opts, now)
			mustVerify(t, state, a.code(t, now.Add(time.Hour)), now.Add(time.Hour))
		})
	}
}

func TestFinishEnrolRefusesAWrongFirstCode(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	begun, err := totp.Factor{}.BeginEnrol(context.Background(), sdk.BeginEnrolRequest{User: sdk.User{Username: "bob"}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	a := appFrom(t, begun)
	_, err = totp.Factor{}.FinishEnrol(context.Background(), sdk.FinishEnrolRequest{State: begun.State,
		Response: codeJSON(a.code(t, now.Add(time.Hour))), Now: now})
	if !errors.Is(err, sdk.ErrInvalidRequest) {
		t.Fatalf("err = %v, want sdk.ErrInvalidRequest", err)
	}
}

// app is an authenticator app holding one seed.
type app struct {
	seed, alg      string
	digits, period int
}

func appFrom(t testing.TB, begun sdk.BeginEnrolResponse) *app {
	u, err := url.Parse(begun.Display["uri"])
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" {
		t.Fatalf("Display uri %q is not an otpauth://totp URI", begun.Display["uri"])
	}
	q := u.Query()
	if q.Get("secret") != begun.Display["secret"] {
		t.Fatal("Display secret differs from the URI's")
	}
	digits, _ := strconv.Atoi(q.Get("digits"))
	period, _ := strconv.Atoi(q.Get("period"))
	return &app{seed: q.Get("secret"), alg: q.Get("algorithm"), digits: digits, period: period}
}

func (a *app) code(t testing.TB, at time.Time) string {
	c, err := totp.Code(a.seed, a.alg, a.digits, a.period, at)
	if err != nil {
		t.Fatalf("Code: %v", err)
	}
	return c
}
