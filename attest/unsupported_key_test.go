package attest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

// noneRegistration builds a "none" attestation of a credential whose
// public key is the given COSE key, as an authenticator would send it.
func noneRegistration(t *testing.T, coseKey []byte) ([]byte, []byte, FIDO2Expectation) {
	t.Helper()
	challenge := make([]byte, 32)
	rand.Read(challenge)
	rpHash := sha256.Sum256([]byte("keyfleet.test"))
	var ad bytes.Buffer
	ad.Write(rpHash[:])
	ad.WriteByte(0x41) // UP, AT
	ad.Write(make([]byte, 4+16))
	ad.Write(binary.BigEndian.AppendUint16(nil, 16))
	ad.Write(bytes.Repeat([]byte{7}, 16))
	ad.Write(coseKey)
	obj, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": ad.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	cd, _ := json.Marshal(map[string]string{"type": "webauthn.create", "origin": "https://keyfleet.test",
		"challenge": base64.RawURLEncoding.EncodeToString(challenge)})
	return obj, cd, FIDO2Expectation{Challenge: challenge, Origins: []string{"https://keyfleet.test"}, RPID: "keyfleet.test", Time: time.Now()}
}

func mustCOSE(t *testing.T, m map[int]any) []byte {
	t.Helper()
	b, err := webauthncbor.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKeysKeyfleetCannotUseAreUnsupportedNotMalformed: a post-quantum
// ML-DSA credential (COSE key type AKP) or an EC key on secp256k1 is a
// sound key keyfleet cannot verify with: the refusal says "unsupported key
// type" and names it, while a key that is not CBOR stays "malformed".
func TestKeysKeyfleetCannotUseAreUnsupportedNotMalformed(t *testing.T) {
	tests := []struct {
		name string
		key  []byte
		want error
		says string
	}{
		{"an ML-DSA-65 key", mustCOSE(t, map[int]any{1: 7, 3: -49, -1: make([]byte, 1952)}), ErrUnsupportedKey, "ML-DSA-65"},
		{"an ML-DSA-44 key", mustCOSE(t, map[int]any{1: 7, 3: -48, -1: make([]byte, 1312)}), ErrUnsupportedKey, "ML-DSA-44"},
		{"an EC key on secp256k1", mustCOSE(t, map[int]any{1: 2, 3: -47, -1: 8, -2: make([]byte, 32), -3: make([]byte, 32)}), ErrUnsupportedKey, "curve 8"},
		{"an X25519 key", mustCOSE(t, map[int]any{1: 1, 3: -8, -1: 4, -2: make([]byte, 32)}), ErrUnsupportedKey, "curve 4"},
		{"a symmetric key", mustCOSE(t, map[int]any{1: 4, 3: 5, -1: make([]byte, 32)}), ErrUnsupportedKey, "key type 4"},
		{"a key map without a key type", mustCOSE(t, map[int]any{3: -7}), ErrMalformed, "not a COSE key"},
		{"a P-256 key whose point is not on the curve", mustCOSE(t, map[int]any{1: 2, 3: -7, -1: 1, -2: make([]byte, 32), -3: make([]byte, 32)}), ErrMalformed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj, cd, exp := noneRegistration(t, tt.key)
			_, err := VerifyFIDO2(obj, cd, exp)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("error %v, want %v saying %q", err, tt.want, tt.says)
			}
			if tt.want == ErrUnsupportedKey && errors.Is(err, ErrMalformed) {
				t.Fatalf("an unsupported key also reads as malformed: %v", err)
			}
		})
	}
}
