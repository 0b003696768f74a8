package attest

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestVerifyFIDO2RejectsAYubiKeyRegistrationWhenExpectationsDiffer(t *testing.T) {
	// A U2F key never verifies the user: UV is clear in this registration.
	reg, base := loadWebAuthnVector(t, webauthnVector{file: "py_webauthn/reg_fido_u2f__verify_attestation_from_yubikey_firefox.json"})
	tests := []struct {
		name   string
		change func(*FIDO2Expectation)
		attObj []byte
		want   error
	}{
		{"another relying party ID is an RP ID mismatch", func(e *FIDO2Expectation) { e.RPID = "example.com" }, nil, ErrRPIDMismatch},
		{"another challenge is a challenge mismatch", func(e *FIDO2Expectation) { e.Challenge = []byte("other") }, nil, ErrChallengeMismatch},
		{"an origin not in the list is an origin mismatch", func(e *FIDO2Expectation) { e.Origins = []string{"https://localhost:5000"} }, nil, ErrOriginMismatch},
		{"a required user verification the key did not do is refused", func(e *FIDO2Expectation) { e.RequireUserVerification = true }, nil, ErrClientData},
		{"a verification after the chain expired is expired", func(e *FIDO2Expectation) { e.Time = time.Date(2051, 1, 1, 0, 0, 0, 0, time.UTC) }, nil, ErrExpired},
		{"a verification without a time is refused", func(e *FIDO2Expectation) { e.Time = time.Time{} }, nil, ErrInvalidOptions},
		{"a truncated attestation object is malformed", func(*FIDO2Expectation) {}, reg.AttestationObject[:len(reg.AttestationObject)-40], ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exp := base
			tc.change(&exp)
			attObj := reg.AttestationObject
			if tc.attObj != nil {
				attObj = tc.attObj
			}
			if _, err := VerifyFIDO2(attObj, reg.ClientDataJSON, exp); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestVerifyFIDO2ReportsAYubiKeyRegistration(t *testing.T) {
	reg, exp := loadWebAuthnVector(t, webauthnVector{file: "py_webauthn/reg_packed__verify_attestation_from_yubikey_firefox.json"})
	ev, err := VerifyFIDO2(reg.AttestationObject, reg.ClientDataJSON, exp)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Vendor != "Yubico AB" || !ev.AAGUIDAttested || ev.KeyAlgorithm != "EC-P256" || len(ev.Chain) != 2 {
		t.Fatalf("unexpected evidence: vendor %q attested %v alg %q chain %d", ev.Vendor, ev.AAGUIDAttested, ev.KeyAlgorithm, len(ev.Chain))
	}
}

func TestEvidenceMarshalsDeterministicallyWithoutSecrets(t *testing.T) {
	slot := certVector(t, "piv/pivgo-2016root-9a-slot.pem")
	ev, err := VerifyPIV(slot, certVector(t, "piv/pivgo-2016root-f9-device.pem"), PIVOptions{Time: vectorTime})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(ev)
	b, _ := json.Marshal(ev)
	if !bytes.Equal(a, b) {
		t.Fatal("two marshals differ")
	}
	var back map[string]any
	if err := json.Unmarshal(a, &back); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"format", "vendor", "model", "serial", "firmware", "form_factor", "fips", "pin_policy", "touch_policy", "slot", "key_algorithm", "public_key", "attestation_type", "chain", "advisories"} {
		if _, ok := back[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, a)
		}
	}
	for k := range back {
		if strings.Contains(k, "private") || strings.Contains(k, "secret") {
			t.Errorf("JSON carries a %q field", k)
		}
	}
}
