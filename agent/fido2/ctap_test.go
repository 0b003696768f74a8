package fido2

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"path/filepath"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/keyfleet/keyfleet/agent"
)

// loop carries CTAP requests straight to a software key.
type loop struct{ k *Soft }

func (l loop) CTAP(req []byte) ([]byte, error) { return l.k.CTAP(req), nil }
func (l loop) Close() error                    { return nil }

// TestCTAPRoundTrip drives the software key's CTAP2 side with the
// package's CTAP2 client, over both PIN/UV auth protocols.
func TestCTAPRoundTrip(t *testing.T) {
	for _, proto := range []int{1, 2} {
		t.Run(map[int]string{1: "PIN protocol one", 2: "PIN protocol two"}[proto], func(t *testing.T) {
			k := newTestSoft(t, SoftOptions{Enterprise: true, Serial: 31415926})
			tok := &CTAPToken{t: loop{k}, path: "test", protocol: proto}
			if err := tok.SetPIN("2468"); err != nil {
				t.Fatal(err)
			}
			if info, err := tok.Info(); err != nil || !info.PINSet || !info.Enterprise {
				t.Fatalf("info %+v, %v", info, err)
			}
			cdh := sha256.Sum256([]byte("client data"))
			req := agent.MakeCredentialRequest{ClientDataHash: cdh[:], RPID: "keyfleet.test", UserID: []byte("u1"), UserName: "alice", Algorithms: []int{-7}, Enterprise: true, ResidentKey: true}
			if _, err := tok.MakeCredential(req); !errors.Is(err, agent.ErrFIDO2PINRequired) {
				t.Fatalf("a discoverable credential without the PIN: %v", err)
			}
			req.PIN = "1357"
			var wrong *agent.WrongPINError
			if _, err := tok.MakeCredential(req); !errors.As(err, &wrong) || wrong.Retries != 7 {
				t.Fatalf("a wrong PIN: %v", err)
			}
			req.PIN = "2468"
			att, err := tok.MakeCredential(req)
			if err != nil {
				t.Fatal(err)
			}
			pub, serial := checkAttestationObject(t, att)
			if serial != 31415926 {
				t.Fatalf("enterprise attestation serial %d", serial)
			}
			if err := tok.ChangePIN("2468", "97531"); err != nil {
				t.Fatal(err)
			}
			a, err := tok.GetAssertion(agent.GetAssertionRequest{RPID: "keyfleet.test", ClientDataHash: cdh[:], Allow: [][]byte{att.CredentialID}, PIN: "97531"})
			if err != nil {
				t.Fatal(err)
			}
			signed := sha256.Sum256(append(append([]byte(nil), a.AuthData...), cdh[:]...))
			if a.AuthData[32] != flagUP|flagUV || !ecdsa.VerifyASN1(pub, signed[:], a.Signature) {
				t.Fatalf("assertion flags %02x or signature wrong", a.AuthData[32])
			}
			if _, err := tok.GetAssertion(agent.GetAssertionRequest{RPID: "other.test", ClientDataHash: cdh[:], Allow: [][]byte{att.CredentialID}}); !errors.Is(err, agent.ErrNoCredential) {
				t.Fatalf("another RP: %v", err)
			}
		})
	}
}

// checkAttestationObject verifies the packed self-consistency of an
// attestation object and returns the credential key and the enterprise
// serial.
func checkAttestationObject(t *testing.T, att agent.Attestation) (*ecdsa.PublicKey, int64) {
	t.Helper()
	var obj struct {
		Fmt      string `cbor:"fmt"`
		AuthData []byte `cbor:"authData"`
		AttStmt  struct {
			Sig []byte   `cbor:"sig"`
			X5C [][]byte `cbor:"x5c"`
		} `cbor:"attStmt"`
	}
	if err := cbor.Unmarshal(att.AttestationObject, &obj); err != nil || obj.Fmt != "packed" {
		t.Fatalf("attestation object: %v %q", err, obj.Fmt)
	}
	cert, err := x509.ParseCertificate(obj.AttStmt.X5C[0])
	if err != nil {
		t.Fatal(err)
	}
	var serial int64
	for _, e := range cert.Extensions {
		if e.Id.Equal(OIDSerial) {
			var n int64
			if _, err := asn1.Unmarshal(e.Value, &n); err != nil {
				t.Fatal(err)
			}
			serial = n
		}
	}
	if err := cert.CheckSignature(x509.ECDSAWithSHA256, append(append([]byte(nil), obj.AuthData...), sha256Of("client data")...), obj.AttStmt.Sig); err != nil {
		t.Fatalf("attestation signature: %v", err)
	}
	id, err := credentialIDOf(obj.AuthData)
	if err != nil || string(id) != string(att.CredentialID) {
		t.Fatalf("credential id %x, %v", id, err)
	}
	var key struct {
		X []byte `cbor:"-2,keyasint"`
		Y []byte `cbor:"-3,keyasint"`
	}
	if err := cbor.Unmarshal(obj.AuthData[32+1+4+16+2+len(id):], &key); err != nil {
		t.Fatal(err)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, key.X...), key.Y...))
	if err != nil {
		t.Fatal(err)
	}
	return pub, serial
}

// TestCTAPRefusesBadRequests: malformed and out-of-order requests get
// CTAP status codes, never a Go error or a panic.
func TestCTAPRefusesBadRequests(t *testing.T) {
	k := newTestSoft(t, SoftOptions{})
	tests := []struct {
		name string
		req  []byte
		want byte
	}{
		{"an empty request", nil, ctapInvalidLength},
		{"an unknown command", []byte{0x42}, ctapInvalidCommand},
		{"CBOR that does not parse", []byte{cmdMakeCredential, 0xff}, ctapInvalidCBOR},
		{"a credential without parameters", append([]byte{cmdMakeCredential}, mustCBOR(t, map[int]any{1: []byte{1}})...), ctapMissingParameter},
		{"a key agreement key off the curve", append([]byte{cmdClientPIN}, mustCBOR(t, map[int]any{1: 1, 2: pinGetToken, 3: map[int]any{1: 2, -1: 1, -2: make([]byte, 32), -3: make([]byte, 32)}, 6: make([]byte, 16)})...), ctapInvalidParameter},
		{"an unknown PIN protocol", append([]byte{cmdClientPIN}, mustCBOR(t, map[int]any{1: 9, 2: pinGetKeyAgreement})...), ctapInvalidParameter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := k.CTAP(tt.req); len(got) != 1 || got[0] != tt.want {
				t.Fatalf("answer %x, want status %02x", got, tt.want)
			}
		})
	}
}

func mustCBOR(t *testing.T, v any) []byte {
	t.Helper()
	b, err := ctap2.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha256Of(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func TestCAFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ca.pem")
	a, err := LoadOrCreateCA(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreateCA(path)
	if err != nil || !b.Root().Equal(a.Root()) || !b.key.Equal(a.key) {
		t.Fatalf("reloaded CA differs: %v", err)
	}
}
