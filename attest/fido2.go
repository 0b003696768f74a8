package attest

import (
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
)

// FIDO2Expectation is what the relying party expects of a registration:
// the values it issued and the trust it grants. Time, Challenge, Origins and
// RPID are required.
type FIDO2Expectation struct {
	// Challenge is the challenge issued for this registration (raw bytes,
	// not base64).
	Challenge []byte
	// Origins are the accepted origins, compared exactly
	// ("https://login.example.com", or "android:apk-key-hash:..." for apps).
	Origins []string
	// RPID is the relying party ID the credential is scoped to.
	RPID string
	// Time is the verification time for every certificate. Required.
	Time time.Time
	// Roots are extra trusted roots (Apple, Google, Microsoft TPM, another
	// vendor), trusted in addition to Yubico's FIDO roots.
	Roots []*x509.Certificate
	// ExcludeBuiltinRoots trusts Roots alone, without Yubico's roots.
	ExcludeBuiltinRoots bool
	// RequireUserVerification rejects a registration without the UV flag.
	RequireUserVerification bool
	// Metadata, when set, is consulted by AAGUID: a revoked or compromised
	// authenticator is rejected, its description becomes the model.
	Metadata *Metadata
}

// VerifyFIDO2 verifies a WebAuthn registration (WebAuthn §7.1, steps 5-21)
// and returns its evidence. attestationObject and clientDataJSON are the raw
// bytes from the AuthenticatorAttestationResponse.
//
// Formats: packed, fido-u2f, tpm and android-safetynet are verified here;
// android-key and apple statements are checked by go-webauthn's protocol
// package; none is accepted as unattested. Whenever the statement carries a
// certificate chain, the chain is then verified at exp.Time to Yubico's FIDO
// roots plus exp.Roots; only then is the AAGUID attested. When the chain
// ends at one of Yubico's built-in roots and the AAGUID is in the built-in
// Yubico table (KnownYubicoAAGUIDs), the evidence names the model, the
// firmware range the AAGUID pins, and the advisories that range decides.
//
// Clock: every check uses exp.Time, including the TPM AIK certificate's
// validity and the SafetyNet response's timestampMs (within SafetyNetMaxAge
// before and SafetyNetMaxSkew after exp.Time). The one exception is
// go-webauthn's own vendor-root check for android-key and apple (see
// verifyDelegated).
//
// SafetyNet: a response with ctsProfileMatch false is always rejected.
//
// Errors (all *Error): ErrInvalidOptions, ErrMalformed, ErrChallengeMismatch,
// ErrOriginMismatch, ErrClientData, ErrRPIDMismatch, ErrUnsupportedFormat,
// ErrInvalidAttestation, ErrExpired, ErrUntrustedChain, ErrRevoked.
func VerifyFIDO2(attestationObject, clientDataJSON []byte, exp FIDO2Expectation) (*Evidence, error) {
	if err := exp.validate(); err != nil {
		return nil, err
	}
	if err := verifyClientData(clientDataJSON, exp); err != nil {
		return nil, err
	}
	att, err := parseAttestationObject(attestationObject)
	if err != nil {
		return nil, err
	}
	key, err := checkAuthData(&att.AuthData, exp)
	if err != nil {
		return nil, err
	}
	clientDataHash := sha256.Sum256(clientDataJSON)
	typ, x5c, err := verifyStatement(att, clientDataHash[:], key, exp.Time)
	if err != nil {
		return nil, err
	}
	ev, err := fido2Evidence(att, typ, key)
	if err != nil {
		return nil, err
	}
	if len(x5c) > 0 {
		if ev.Chain, err = verifyFIDOChain(x5c, exp); err != nil {
			return nil, err
		}
		ev.AAGUIDAttested = true
		if org := x5c[0].Subject.Organization; len(org) > 0 {
			ev.Vendor = org[0]
		}
		applyYubicoModel(ev)
	}
	return ev, exp.Metadata.apply(ev, exp.Time)
}

func (exp FIDO2Expectation) validate() error {
	switch {
	case exp.Time.IsZero():
		return fail(ErrInvalidOptions, nil, "no verification time was given")
	case len(exp.Challenge) == 0:
		return fail(ErrInvalidOptions, nil, "no expected challenge was given")
	case len(exp.Origins) == 0:
		return fail(ErrInvalidOptions, nil, "no accepted origin was given")
	case exp.RPID == "":
		return fail(ErrInvalidOptions, nil, "no relying party ID was given")
	}
	return nil
}

// clientData is CollectedClientData (WebAuthn §5.8.1).
type clientData struct {
	Type         string          `json:"type"`
	Challenge    string          `json:"challenge"`
	Origin       string          `json:"origin"`
	CrossOrigin  bool            `json:"crossOrigin"`
	TokenBinding json.RawMessage `json:"tokenBinding"`
}

// verifyClientData performs WebAuthn §7.1 steps 5-10 on untrusted JSON.
func verifyClientData(raw []byte, exp FIDO2Expectation) error {
	var c clientData
	if err := json.Unmarshal(raw, &c); err != nil {
		return fail(ErrMalformed, err, "the client data is not valid JSON")
	}
	if c.Type != "webauthn.create" { // step 7
		return fail(ErrClientData, nil, "the client data is of type %q, not a registration (webauthn.create)", c.Type)
	}
	got, err := decodeB64URL(c.Challenge)
	if err != nil || subtle.ConstantTimeCompare(got, exp.Challenge) != 1 { // step 8
		return fail(ErrChallengeMismatch, nil, "the registration answers another challenge than the one issued (replayed or from another session)")
	}
	if !slices.Contains(exp.Origins, c.Origin) { // step 9
		return fail(ErrOriginMismatch, nil, "the registration was made on %q, which is not an accepted origin", c.Origin)
	}
	if c.CrossOrigin {
		return fail(ErrClientData, nil, "the registration was made inside a cross-origin frame")
	}
	return checkTokenBinding(c.TokenBinding)
}

// checkTokenBinding performs §7.1 step 10: a tokenBinding object must carry
// a status §5.8.1 defines ("present" or "supported"). Browser quirk: some
// old Firefox builds sent a bare string ("unused") instead of an object;
// that carries no status and is ignored.
func checkTokenBinding(raw json.RawMessage) error {
	if len(raw) == 0 || raw[0] != '{' {
		return nil
	}
	var tb struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(raw, &tb); err != nil {
		return fail(ErrMalformed, err, "the client data's tokenBinding does not parse")
	}
	if tb.Status != "present" && tb.Status != "supported" {
		return fail(ErrClientData, nil, "the client data has an unknown token binding status %q", tb.Status)
	}
	return nil
}

// decodeB64URL decodes base64url with or without padding; standard base64
// is accepted too, as some clients and saved files use it.
func decodeB64URL(s string) ([]byte, error) {
	s = strings.NewReplacer("+", "-", "/", "_").Replace(strings.TrimRight(s, "="))
	return base64.RawURLEncoding.DecodeString(s)
}

// parseAttestationObject decodes untrusted CBOR (WebAuthn §6.5.4) and the
// authenticator data inside it (§6.1).
func parseAttestationObject(raw []byte) (*protocol.AttestationObject, error) {
	var att protocol.AttestationObject
	if err := webauthncbor.Unmarshal(raw, &att); err != nil {
		return nil, fail(ErrMalformed, err, "the attestation object is not valid CBOR")
	}
	if att.Format == "compound" {
		return nil, fail(ErrUnsupportedFormat, nil, "the compound attestation format is not supported")
	}
	if err := att.AuthData.Unmarshal(att.RawAuthData); err != nil {
		return nil, fail(ErrMalformed, err, "the authenticator data does not parse")
	}
	if !att.AuthData.Flags.HasAttestedCredentialData() || len(att.AuthData.AttData.CredentialPublicKey) == 0 {
		return nil, fail(ErrMalformed, nil, "the authenticator data carries no credential (AT flag clear)")
	}
	return &att, nil
}

// credentialKey is the credential public key in both forms.
type credentialKey struct {
	cose any              // webauthncose key data, for signature checks
	pub  crypto.PublicKey // for Evidence
	alg  int64            // COSE algorithm
}

// checkAuthData performs WebAuthn §7.1 steps 13-16 and parses the key.
func checkAuthData(ad *protocol.AuthenticatorData, exp FIDO2Expectation) (*credentialKey, error) {
	want := sha256.Sum256([]byte(exp.RPID))
	if subtle.ConstantTimeCompare(ad.RPIDHash, want[:]) != 1 { // step 13
		return nil, fail(ErrRPIDMismatch, nil, "the credential was made for another relying party than %q", exp.RPID)
	}
	if !ad.Flags.UserPresent() { // step 14
		return nil, fail(ErrClientData, nil, "the authenticator did not confirm a user was present")
	}
	if exp.RequireUserVerification && !ad.Flags.UserVerified() { // step 15
		return nil, fail(ErrClientData, nil, "the authenticator did not verify the user (no PIN or biometric)")
	}
	return parseCredentialKey(ad.AttData.CredentialPublicKey)
}

// parseCredentialKey decodes an untrusted COSE key (RFC 9052 §7). A key
// that is well formed CBOR but of a type this package cannot use is
// ErrUnsupportedKey, not ErrMalformed.
func parseCredentialKey(raw []byte) (*credentialKey, error) {
	if err := supportedKeyType(raw); err != nil {
		return nil, err
	}
	k, err := webauthncose.ParsePublicKey(raw)
	if err != nil {
		return nil, fail(ErrMalformed, err, "the credential public key is not a valid COSE key")
	}
	ck := &credentialKey{cose: k}
	switch k := k.(type) {
	case webauthncose.EC2PublicKeyData:
		ck.alg = k.Algorithm
		ck.pub, err = k.ToECDSA()
	case webauthncose.RSAPublicKeyData:
		ck.alg = k.Algorithm
		ck.pub, err = rsaKey(k)
	case webauthncose.OKPPublicKeyData:
		ck.alg = k.Algorithm
		if len(k.XCoord) != ed25519.PublicKeySize {
			err = fmt.Errorf("OKP key of %d bytes", len(k.XCoord))
		}
		ck.pub = ed25519.PublicKey(k.XCoord)
	default:
		return nil, fail(ErrUnsupportedKey, nil, "the credential public key is a %T", k)
	}
	if err != nil {
		return nil, fail(ErrMalformed, err, "the credential public key is not usable")
	}
	return ck, nil
}

// COSE key types (RFC 9053 §7, RFC 9964 §6) and curves (RFC 9053 §7.1).
const (
	coseKtyOKP = 1
	coseKtyEC2 = 2
	coseKtyRSA = 3
	coseKtyAKP = 7
)

// coseCurve is the curve label of an EC2 or OKP key (for AKP keys the same
// label holds the key bytes).
type coseCurve struct {
	Crv int64 `cbor:"-1,keyasint"`
}

// supportedKeyType reads the key type, algorithm and curve: ErrMalformed
// when the CBOR does not say them, ErrUnsupportedKey for EC2 keys off
// P-256/P-384/P-521, OKP keys other than Ed25519 (the curve is the same
// label as AKP's key bytes, so it is read only for EC2 and OKP) and every
// other key type.
func supportedKeyType(raw []byte) error {
	var h struct {
		Kty int64 `cbor:"1,keyasint"`
		Alg int64 `cbor:"3,keyasint"`
	}
	if err := webauthncbor.Unmarshal(raw, &h); err != nil || h.Kty == 0 {
		return fail(ErrMalformed, err, "the credential public key is not a COSE key")
	}
	switch h.Kty {
	case coseKtyEC2, coseKtyOKP:
		var c coseCurve
		if err := webauthncbor.Unmarshal(raw, &c); err != nil {
			return fail(ErrMalformed, err, "the credential public key's curve does not parse")
		}
		if (h.Kty == coseKtyEC2 && (c.Crv < 1 || c.Crv > 3)) || (h.Kty == coseKtyOKP && c.Crv != 6) {
			return fail(ErrUnsupportedKey, nil, "the credential public key is on COSE curve %d, which keyfleet does not verify (P-256, P-384, P-521, Ed25519)", c.Crv)
		}
		return nil
	case coseKtyRSA:
		return nil
	}
	return fail(ErrUnsupportedKey, nil, "the credential public key is %s, which keyfleet cannot verify signatures with yet; register a key with ES256, EdDSA or RS256", keyTypeName(h.Kty, h.Alg))
}

// keyTypeName says which key a COSE key type and algorithm make.
func keyTypeName(kty, alg int64) string {
	if kty == coseKtyAKP {
		if name, ok := map[int64]string{-48: "ML-DSA-44", -49: "ML-DSA-65", -50: "ML-DSA-87"}[alg]; ok {
			return fmt.Sprintf("an %s key (COSE key type AKP, algorithm %d)", name, alg)
		}
		return fmt.Sprintf("an AKP key with COSE algorithm %d", alg)
	}
	return fmt.Sprintf("a key of COSE key type %d (algorithm %d)", kty, alg)
}

// fido2Evidence fills the evidence every format shares.
func fido2Evidence(att *protocol.AttestationObject, typ string, key *credentialKey) (*Evidence, error) {
	spki, err := x509.MarshalPKIXPublicKey(key.pub)
	if err != nil {
		return nil, fail(ErrMalformed, err, "the credential public key cannot be encoded")
	}
	alg, err := keyAlgorithm(key.pub)
	if err != nil {
		return nil, err
	}
	ad := &att.AuthData
	return &Evidence{
		Format:          att.Format,
		KeyAlgorithm:    alg,
		PublicKey:       spki,
		AAGUID:          formatAAGUID(ad.AttData.AAGUID),
		AttestationType: typ,
		CredentialID:    ad.AttData.CredentialID,
		SignCount:       ad.Counter,
		Flags: &Flags{UserPresent: ad.Flags.UserPresent(), UserVerified: ad.Flags.UserVerified(),
			BackupEligible: ad.Flags.HasBackupEligible(), BackupState: ad.Flags.HasBackupState()},
	}, nil
}

func formatAAGUID(b []byte) string {
	if len(b) != 16 {
		return ""
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
