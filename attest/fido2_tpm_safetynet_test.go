package attest

import (
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/keyfleet/keyfleet/attest/attesttest"
)

const tpmSpecVector = "simplewebauthn/verifyAttestationTPM__should_verify_tpm_response_with_spec_compliant_tcgattpm_san_structure.json"

// withStatement returns the attestation object with one statement field
// changed by edit (the CBOR re-encoded).
func withStatement(tb testing.TB, attObj []byte, edit func(map[string]any)) []byte {
	tb.Helper()
	var obj map[string]any
	if err := webauthncbor.Unmarshal(attObj, &obj); err != nil {
		tb.Fatal(err)
	}
	stmt := map[string]any{}
	for k, v := range obj["attStmt"].(map[any]any) {
		stmt[k.(string)] = v
	}
	edit(stmt)
	obj["attStmt"] = stmt
	out, err := webauthncbor.Marshal(obj)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func TestVerifyFIDO2ChecksARealTPMRegistrationAtTheGivenTime(t *testing.T) {
	reg, base := loadWebAuthnVector(t, webauthnVector{file: tpmSpecVector, when: atPinned, roots: []string{rootTPM}})
	flipped := func(field string, at int) []byte {
		return withStatement(t, reg.AttestationObject, func(s map[string]any) {
			b := append([]byte(nil), s[field].([]byte)...)
			if at < 0 { // from the end
				at += len(b)
			}
			b[at] ^= 0x01
			s[field] = b
		})
	}
	tests := []struct {
		name   string
		at     time.Time
		attObj []byte
		want   error
		detail string
	}{
		{"a verification after the AIK certificate expired is expired", time.Date(2025, 3, 22, 0, 0, 0, 0, time.UTC), nil, ErrExpired, ""},
		{"a verification before the AIK certificate was issued is expired", time.Date(2020, 8, 1, 0, 0, 0, 0, time.UTC), nil, ErrExpired, ""},
		{"a tampered certInfo fails its signature", base.Time, flipped("certInfo", 40), ErrInvalidAttestation, "signature over certInfo"},
		{"a certInfo of another type is refused", base.Time, flipped("certInfo", 5), ErrInvalidAttestation, "TPM_ST_ATTEST_CERTIFY"},
		{"a certInfo without the TPM magic is refused", base.Time, flipped("certInfo", 0), ErrInvalidAttestation, "magic"},
		{"a public area for another key is refused", base.Time, flipped("pubArea", -10), ErrInvalidAttestation, "another key"},
		{"a truncated certInfo is malformed", base.Time, withStatement(t, reg.AttestationObject, func(s map[string]any) { s["certInfo"] = s["certInfo"].([]byte)[:20] }), ErrMalformed, ""},
		{"a statement for TPM 1.2 is refused", base.Time, withStatement(t, reg.AttestationObject, func(s map[string]any) { s["ver"] = "1.2" }), ErrInvalidAttestation, "2.0"},
		{"an unknown signature algorithm is refused", base.Time, withStatement(t, reg.AttestationObject, func(s map[string]any) { s["alg"] = int64(-999) }), ErrInvalidAttestation, "-999"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exp := base
			exp.Time = tc.at
			attObj := reg.AttestationObject
			if tc.attObj != nil {
				attObj = tc.attObj
			}
			_, err := VerifyFIDO2(attObj, reg.ClientDataJSON, exp)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.detail) {
				t.Fatalf("got %v, want %v (%q)", err, tc.want, tc.detail)
			}
		})
	}
}

// The two SafetyNet vectors are refused for ctsProfileMatch false; this
// shows that is their only fault at the pinned time: the chain verifies and
// the payload passes once its verdict is set.
func TestSafetyNetVectorsFailOnlyTheirCompatibilityVerdict(t *testing.T) {
	for _, file := range []string{
		"simplewebauthn/verifyRegistrationResponse__should_enforce_cts_check_by_default.json",
		"simplewebauthn/verifyRegistrationResponse__should_skip_cts_check_when_enforcement_option_is_false.json",
	} {
		t.Run(file, func(t *testing.T) {
			reg, exp := loadWebAuthnVector(t, webauthnVector{file: file, when: atPinned, roots: []string{rootSafetyNet}})
			att, err := parseAttestationObject(reg.AttestationObject)
			if err != nil {
				t.Fatal(err)
			}
			parts := strings.Split(string(att.AttStatement["response"].([]byte)), ".")
			_, certs, err := safetyNetHeader(parts[0])
			if err != nil {
				t.Fatal(err)
			}
			if _, err := verifyFIDOChain(certs, exp); err != nil {
				t.Fatalf("the SafetyNet chain does not verify at %s: %v", exp.Time, err)
			}
			raw, _ := decodeB64URL(parts[1])
			var p safetyNetPayload
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatal(err)
			}
			if p.CTSProfileMatch {
				t.Fatal("the vector's verdict is ctsProfileMatch true; its expected outcome is wrong")
			}
			p.CTSProfileMatch = true
			cdh := sha256Sum(reg.ClientDataJSON)
			if err := checkSafetyNetPayload(&p, att.RawAuthData, cdh, exp.Time); err != nil {
				t.Fatalf("nonce or timestamp fail too: %v", err)
			}
		})
	}
}

func TestVerifyFIDO2ChecksMintedTPMAndSafetyNetRegistrations(t *testing.T) {
	ca := attesttest.NewCA(t)
	past := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		reg      *attesttest.Registration
		want     error
		detail   string
		wantType string
	}{
		{"a minted tpm registration verifies", ca.MintTPM(attesttest.TPMOptions{}), nil, "", AttestationCA},
		{"a tpm certInfo changed after signing fails its signature", ca.MintTPM(attesttest.TPMOptions{TamperCertInfo: true}), ErrInvalidAttestation, "signature over certInfo", ""},
		{"a tpm certInfo for other data is refused", ca.MintTPM(attesttest.TPMOptions{ExtraData: make([]byte, 32)}), ErrInvalidAttestation, "extraData", ""},
		{"an AIK certificate with a subject is refused", ca.MintTPM(attesttest.TPMOptions{AIKSubject: "aik"}), ErrInvalidAttestation, "subject", ""},
		{"an AIK certificate without the AIK key usage is refused", ca.MintTPM(attesttest.TPMOptions{OmitAIKEKU: true}), ErrInvalidAttestation, "2.23.133.8.3", ""},
		{"an AIK certificate expired at the verification time is expired", ca.MintTPM(attesttest.TPMOptions{WebAuthnOptions: attesttest.WebAuthnOptions{NotBefore: past.AddDate(-1, 0, 0), NotAfter: past}}), ErrExpired, "", ""},
		{"an AIK certificate not yet valid at the verification time is expired", ca.MintTPM(attesttest.TPMOptions{WebAuthnOptions: attesttest.WebAuthnOptions{NotBefore: attesttest.ValidAt.Add(time.Hour)}}), ErrExpired, "", ""},
		{"a minted SafetyNet registration verifies", ca.MintSafetyNet(attesttest.SafetyNetOptions{}), nil, "", AttestationBasic},
		{"a SafetyNet response for another nonce is refused", ca.MintSafetyNet(attesttest.SafetyNetOptions{Nonce: make([]byte, 32)}), ErrInvalidAttestation, "nonce", ""},
		{"a SafetyNet response older than a minute is expired", ca.MintSafetyNet(attesttest.SafetyNetOptions{Timestamp: attesttest.ValidAt.Add(-2 * time.Minute)}), ErrExpired, "timestampMs", ""},
		{"a SafetyNet response from the future is expired", ca.MintSafetyNet(attesttest.SafetyNetOptions{Timestamp: attesttest.ValidAt.Add(2 * time.Minute)}), ErrExpired, "timestampMs", ""},
		{"a SafetyNet response with ctsProfileMatch false is refused", ca.MintSafetyNet(attesttest.SafetyNetOptions{CTSProfileMismatch: true}), ErrInvalidAttestation, "ctsProfileMatch false", ""},
		{"a SafetyNet response signed for another host is refused", ca.MintSafetyNet(attesttest.SafetyNetOptions{Hostname: "attest.example.com"}), ErrInvalidAttestation, "attest.android.com", ""},
		{"a SafetyNet certificate expired at the verification time is expired", ca.MintSafetyNet(attesttest.SafetyNetOptions{WebAuthnOptions: attesttest.WebAuthnOptions{NotBefore: past.AddDate(-1, 0, 0), NotAfter: past}}), ErrExpired, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exp := FIDO2Expectation{Challenge: tc.reg.Challenge, Origins: tc.reg.Origins, RPID: tc.reg.RPID,
				Time: attesttest.ValidAt, Roots: []*x509.Certificate{ca.Root()}}
			ev, err := VerifyFIDO2(tc.reg.AttestationObject, tc.reg.ClientDataJSON, exp)
			if tc.want != nil {
				if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.detail) {
					t.Fatalf("got %v, want %v (%q)", err, tc.want, tc.detail)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ev.AttestationType != tc.wantType || !ev.AAGUIDAttested || len(ev.Chain) != 2 {
				t.Fatalf("type %q attested %v chain %d", ev.AttestationType, ev.AAGUIDAttested, len(ev.Chain))
			}
		})
	}
}

func TestVerifyFIDO2RefusesAMintedTPMRegistrationWithoutItsRoot(t *testing.T) {
	reg := attesttest.NewCA(t).MintTPM(attesttest.TPMOptions{})
	exp := FIDO2Expectation{Challenge: reg.Challenge, Origins: reg.Origins, RPID: reg.RPID, Time: attesttest.ValidAt}
	if _, err := VerifyFIDO2(reg.AttestationObject, reg.ClientDataJSON, exp); !errors.Is(err, ErrUntrustedChain) {
		t.Fatalf("got %v, want %v", err, ErrUntrustedChain)
	}
}

func FuzzParseTPMStructures(f *testing.F) {
	for _, b := range seedFiles(f, "webauthn/*/*[tT][pP][mM]*.json") {
		reg, err := ParseRegistrationJSON(b)
		if err != nil {
			continue
		}
		if att, err := parseAttestationObject(reg.AttestationObject); err == nil {
			info, _ := att.AttStatement["certInfo"].([]byte)
			pub, _ := att.AttStatement["pubArea"].([]byte)
			f.Add(info, pub)
		}
	}
	f.Fuzz(func(t *testing.T, certInfo, pubArea []byte) {
		_, err := parseTPMCertifyInfo(certInfo)
		assertTypedError(t, err)
		_, err = parseTPMPublic(pubArea)
		assertTypedError(t, err)
	})
}

func sha256Sum(b []byte) []byte { return digest(crypto.SHA256, b) }
