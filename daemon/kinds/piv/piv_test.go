package piv

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/attest/attesttest"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

var ctx = context.Background()

func sign(t testing.TB, k crypto.Signer, challenge []byte) []byte {
	t.Helper()
	d := sha256.Sum256(challenge)
	sig, err := k.Sign(rand.Reader, d[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

type enrolCase struct {
	name     string
	options  map[string]string
	mint     attesttest.PIVOptions
	trust    bool
	now      time.Time
	tamper   func(p *api.PIVEnrolment, key crypto.Signer)
	wantErr  string // substring of the rejection; "" means success
	sentinel error
}

func TestFinishEnrol(t *testing.T) {
	ca := attesttest.NewCA(t)
	other := attesttest.NewCA(t)
	always := attesttest.PIVOptions{TouchPolicy: 2}
	tests := []enrolCase{
		{name: "a trusted key with the required policies enrols", mint: always, trust: true},
		{name: "an RSA key enrols when asked for", options: map[string]string{"algorithm": "RSA-2048"}, mint: attesttest.PIVOptions{TouchPolicy: 2, KeyAlgorithm: "RSA-2048"}, trust: true},
		{name: "an untrusted root is rejected", mint: always, wantErr: "untrusted", sentinel: ErrRejected},
		{name: "touch never where always is required is rejected", mint: attesttest.PIVOptions{TouchPolicy: 1}, trust: true, wantErr: "touch policy", sentinel: ErrRejected},
		{name: "firmware below the minimum is rejected", options: map[string]string{"min_firmware": "5.7.0"}, mint: attesttest.PIVOptions{TouchPolicy: 2, Firmware: [3]byte{5, 4, 3}}, trust: true, wantErr: "below the minimum", sentinel: ErrRejected},
		{name: "a key in another slot is rejected", mint: attesttest.PIVOptions{TouchPolicy: 2, Slot: 0x9c}, trust: true, wantErr: "slot", sentinel: ErrRejected},
		{name: "an expired chain is rejected", mint: always, trust: true, now: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), wantErr: "validity", sentinel: ErrRejected},
		{name: "a signature by another key is rejected", mint: always, trust: true, tamper: func(p *api.PIVEnrolment, _ crypto.Signer) {
			_, _, k := other.MintPIV(attesttest.PIVOptions{})
			p.Signature = sign(t, k, []byte("challenge-challenge-challenge-32"))
		}, wantErr: "signature", sentinel: ErrRejected},
		{name: "a public key other than the attested one is rejected", mint: always, trust: true, tamper: func(p *api.PIVEnrolment, _ crypto.Signer) {
			_, _, k := other.MintPIV(attesttest.PIVOptions{})
			p.PublicKey, _ = x509.MarshalPKIXPublicKey(k.Public())
		}, wantErr: "does not match", sentinel: ErrRejected},
		{name: "a truncated certificate is a bad request", mint: always, trust: true, tamper: func(p *api.PIVEnrolment, _ crypto.Signer) {
			p.SlotCert = attesttest.Truncated(p.SlotCert, 10)
		}, wantErr: "slot_cert", sentinel: sdk.ErrInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runEnrolCase(t, ca, other, tt) })
	}
}

func runEnrolCase(t *testing.T, ca, other *attesttest.CA, tt enrolCase) {
	cfg := Config{Roots: []*x509.Certificate{other.Root()}}
	if tt.trust {
		cfg.Roots = append(cfg.Roots, ca.Root())
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	challenge := []byte("challenge-challenge-challenge-32")
	begun, err := f.BeginEnrol(ctx, sdk.BeginEnrolRequest{Challenge: challenge, Options: tt.options})
	if err != nil {
		t.Fatal(err)
	}
	slot, dev, key := ca.MintPIV(tt.mint)
	pub, _ := x509.MarshalPKIXPublicKey(key.Public())
	p := api.PIVEnrolment{SlotCert: slot.Raw, DeviceCert: dev.Raw, PublicKey: pub, Signature: sign(t, key, challenge)}
	if tt.tamper != nil {
		tt.tamper(&p, key)
	}
	body, _ := json.Marshal(p)
	now := tt.now
	if now.IsZero() {
		now = attesttest.ValidAt
	}
	res, err := f.FinishEnrol(ctx, sdk.FinishEnrolRequest{Challenge: challenge, State: begun.State, Response: body, Now: now})
	if tt.wantErr == "" {
		if err != nil {
			t.Fatal(err)
		}
		if res.Device == nil || res.Device.Serial != "12345678" || res.Device.Vendor != "Yubico" || res.Pending {
			t.Fatalf("result %+v", res)
		}
		checkVerify(t, f, res.State, key)
		return
	}
	if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, tt.sentinel) || !errors.Is(err, sdk.ErrInvalidRequest) {
		t.Fatalf("error %v, want %q wrapping %v", err, tt.wantErr, tt.sentinel)
	}
}

func checkVerify(t *testing.T, f *Factor, state []byte, key crypto.Signer) {
	t.Helper()
	challenge := []byte("verification-challenge-32-bytes!")
	begun, err := f.BeginVerify(ctx, sdk.BeginVerifyRequest{State: state, Challenge: challenge})
	if err != nil {
		t.Fatal(err)
	}
	var prompt api.PIVChallenge
	if err := json.Unmarshal(begun.Prompt, &prompt); err != nil || prompt.Slot != "9a" {
		t.Fatalf("prompt %s", begun.Prompt)
	}
	spki, _ := x509.MarshalPKIXPublicKey(key.Public())
	if id := sha256.Sum256(spki); prompt.KeySHA256 != hex.EncodeToString(id[:]) {
		t.Fatalf("the prompt names key %s, not the enrolled one", prompt.KeySHA256)
	}
	good, _ := json.Marshal(api.PIVAssertion{Signature: sign(t, key, prompt.Challenge)})
	res, err := f.FinishVerify(ctx, sdk.FinishVerifyRequest{State: state, Session: begun.Session, Response: good})
	if err != nil || !res.OK {
		t.Fatalf("a good signature: %+v %v", res, err)
	}
	bad, _ := json.Marshal(api.PIVAssertion{Signature: sign(t, key, []byte("another challenge"))})
	res, err = f.FinishVerify(ctx, sdk.FinishVerifyRequest{State: state, Session: begun.Session, Response: bad})
	if err != nil || res.OK || res.Reason == "" {
		t.Fatalf("a signature over another challenge: %+v %v", res, err)
	}
}

func TestHandoverLeavesTheFactorPending(t *testing.T) {
	ca := attesttest.NewCA(t)
	f, _ := New(Config{Roots: []*x509.Certificate{ca.Root()}, Now: func() time.Time { return attesttest.ValidAt }})
	challenge := []byte("challenge-challenge-challenge-32")
	begun, _ := f.BeginEnrol(ctx, sdk.BeginEnrolRequest{Challenge: challenge, Options: map[string]string{"touch_policy": "never"}})
	slot, dev, key := ca.MintPIV(attesttest.PIVOptions{})
	body, _ := json.Marshal(api.PIVEnrolment{SlotCert: slot.Raw, DeviceCert: dev.Raw, Signature: sign(t, key, challenge), Handover: true})
	res, err := f.FinishEnrol(ctx, sdk.FinishEnrolRequest{Challenge: challenge, State: begun.State, Response: body})
	if err != nil || !res.Pending {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestBeginEnrolValidatesOptions(t *testing.T) {
	f, _ := New(Config{})
	tests := []struct {
		name    string
		options map[string]string
		ok      bool
	}{
		{"no options give the defaults", nil, true},
		{"a known algorithm is accepted", map[string]string{"algorithm": "EC-P384"}, true},
		{"an unknown slot is refused", map[string]string{"slot": "9f"}, false},
		{"an unknown touch policy is refused", map[string]string{"touch_policy": "sometimes"}, false},
		{"a firmware that is not a version is refused", map[string]string{"min_firmware": "new"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := f.BeginEnrol(ctx, sdk.BeginEnrolRequest{Options: tt.options})
			if (err == nil) != tt.ok {
				t.Fatalf("error %v", err)
			}
			if tt.ok && res.Params["slot"] == "" {
				t.Fatalf("params %v", res.Params)
			}
			if !tt.ok && !errors.Is(err, sdk.ErrInvalidRequest) {
				t.Fatalf("error %v does not wrap ErrInvalidRequest", err)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	f, _ := New(Config{})
	info, err := f.Describe(ctx)
	if err != nil || info.Kind != "piv" || !info.Hardware {
		t.Fatalf("%+v %v", info, err)
	}
}
