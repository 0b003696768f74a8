package attest

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
)

// safetyNetHostname is the host the SafetyNet signing certificate must be
// issued to (SafetyNet Attestation API, "Verify the compatibility check
// response").
const safetyNetHostname = "attest.android.com"

// SafetyNet response freshness: the response must have been made at most
// SafetyNetMaxAge before the verification time, and at most
// SafetyNetMaxSkew after it (the phone's clock may run ahead).
const (
	SafetyNetMaxAge  = 60 * time.Second
	SafetyNetMaxSkew = 60 * time.Second
)

// safetyNetPayload is the part of the SafetyNet JWS payload WebAuthn uses.
type safetyNetPayload struct {
	Nonce           string `json:"nonce"`
	TimestampMs     *int64 `json:"timestampMs"`
	CTSProfileMatch bool   `json:"ctsProfileMatch"`
}

// verifySafetyNet implements the android-safetynet verification procedure
// (WebAuthn §8.5) at time at. The JWS certificate chain is verified to the
// trusted roots afterwards, by verifyFIDOChain, at the same time.
//
// The CTS profile verdict is checked last, so a rejection for
// ctsProfileMatch false means every other check passed.
func verifySafetyNet(att *protocol.AttestationObject, clientDataHash []byte, at time.Time) (string, []*x509.Certificate, error) {
	ver, _ := att.AttStatement["ver"].(string)
	resp, ok := att.AttStatement["response"].([]byte)
	if !ok || ver == "" {
		return "", nil, fail(ErrMalformed, nil, "the android-safetynet statement lacks its ver or response")
	}
	parts := strings.Split(string(resp), ".")
	if len(parts) != 3 {
		return "", nil, fail(ErrMalformed, nil, "the SafetyNet response is not a JWS (three dot-separated parts)")
	}
	alg, certs, err := safetyNetHeader(parts[0])
	if err != nil {
		return "", nil, err
	}
	sig, err := decodeB64URL(parts[2])
	if err != nil {
		return "", nil, fail(ErrMalformed, err, "the SafetyNet response signature is not base64url")
	}
	if err := verifyJWSSignature(certs[0].PublicKey, alg, parts[0]+"."+parts[1], sig); err != nil {
		return "", nil, fail(ErrInvalidAttestation, err, "the SafetyNet response signature does not verify with its certificate")
	}
	if err := certs[0].VerifyHostname(safetyNetHostname); err != nil {
		return "", nil, fail(ErrInvalidAttestation, err, "the SafetyNet response was signed by a certificate for %q, not %s", certs[0].Subject.CommonName, safetyNetHostname)
	}
	raw, err := decodeB64URL(parts[1])
	var p safetyNetPayload
	if err != nil || json.Unmarshal(raw, &p) != nil {
		return "", nil, fail(ErrMalformed, err, "the SafetyNet response payload is not base64url JSON")
	}
	if err := checkSafetyNetPayload(&p, att.RawAuthData, clientDataHash, at); err != nil {
		return "", nil, err
	}
	return AttestationBasic, certs, nil
}

// checkSafetyNetPayload checks the nonce, the timestamp and the CTS profile
// verdict, in that order.
func checkSafetyNetPayload(p *safetyNetPayload, authData, clientDataHash []byte, at time.Time) error {
	want := sha256.Sum256(append(append([]byte{}, authData...), clientDataHash...))
	got, err := base64.StdEncoding.DecodeString(p.Nonce)
	if err != nil || subtle.ConstantTimeCompare(got, want[:]) != 1 {
		return fail(ErrInvalidAttestation, err, "the SafetyNet response answers another nonce than this registration's (SHA-256 of authenticator data and client data hash)")
	}
	if p.TimestampMs == nil {
		return fail(ErrMalformed, nil, "the SafetyNet response has no timestampMs")
	}
	made := time.UnixMilli(*p.TimestampMs).UTC()
	if made.Before(at.Add(-SafetyNetMaxAge)) || made.After(at.Add(SafetyNetMaxSkew)) {
		return fail(ErrExpired, nil, "the SafetyNet response's timestampMs (%s) is not within %s before or %s after the verification time %s; register again, or verify as of the registration time",
			made.Format(time.RFC3339Nano), SafetyNetMaxAge, SafetyNetMaxSkew, at.UTC().Format(time.RFC3339))
	}
	if !p.CTSProfileMatch {
		return fail(ErrInvalidAttestation, nil, "SafetyNet reports ctsProfileMatch false: the phone failed Android's compatibility test (rooted, unlocked bootloader or uncertified build)")
	}
	return nil
}

// safetyNetHeader reads the JWS header (RFC 7515 §4.1): the algorithm and
// the x5c certificates (standard base64 DER, §4.1.6).
func safetyNetHeader(header string) (string, []*x509.Certificate, error) {
	raw, err := decodeB64URL(header)
	var h struct {
		Alg string   `json:"alg"`
		X5C []string `json:"x5c"`
	}
	if err != nil || json.Unmarshal(raw, &h) != nil || len(h.X5C) == 0 {
		return "", nil, fail(ErrMalformed, err, "the SafetyNet response has no readable certificate header")
	}
	list := make([]any, len(h.X5C))
	for i, s := range h.X5C {
		der, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return "", nil, fail(ErrMalformed, err, "certificate %d of the SafetyNet header is not base64", i+1)
		}
		list[i] = der
	}
	certs, err := parseX5C(list, false)
	return h.Alg, certs, err
}
