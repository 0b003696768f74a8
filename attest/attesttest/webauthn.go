package attesttest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"time"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

// WebAuthnOptions choose what a minted WebAuthn registration says. The
// zero value mints a registration for RP ID "example.com" made on
// https://example.com, with a random challenge, AAGUID TestAAGUID, a fresh
// P-256 credential key, and an attestation certificate valid 2024-2099.
type WebAuthnOptions struct {
	RPID, Origin        string
	Challenge           []byte
	AAGUID              [16]byte  // default TestAAGUID
	NotBefore, NotAfter time.Time // of the attestation certificate
}

// TestAAGUID is the AAGUID minted registrations carry by default.
var TestAAGUID = [16]byte{0x6b, 0x65, 0x79, 0x66, 0x6c, 0x65, 0x65, 0x74, 0x2d, 0x74, 0x65, 0x73, 0x74, 0x00, 0x00, 0x01}

func (o *WebAuthnOptions) defaults(ca *CA) {
	if o.RPID == "" {
		o.RPID = "example.com"
	}
	if o.Origin == "" {
		o.Origin = "https://example.com"
	}
	if o.Challenge == nil {
		o.Challenge = make([]byte, 32)
		if _, err := rand.Read(o.Challenge); err != nil {
			ca.failf("challenge: %v", err)
		}
	}
	if o.AAGUID == [16]byte{} {
		o.AAGUID = TestAAGUID
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = defaultNotBefore
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = defaultNotAfter
	}
}

// Registration is a minted WebAuthn registration and what the relying
// party expected of it: the fields of attest.Registration.
type Registration struct {
	AttestationObject []byte
	ClientDataJSON    []byte
	Challenge         []byte
	Origins           []string
	RPID              string
}

// TPMOptions choose a minted tpm attestation (WebAuthn §8.3). The negative
// cases each break one check.
type TPMOptions struct {
	WebAuthnOptions
	// ExtraData, when set, is certified instead of the hash of the
	// registration (a certInfo for another registration).
	ExtraData []byte
	// TamperCertInfo changes certInfo after the AIK signed it.
	TamperCertInfo bool
	// AIKSubject gives the AIK certificate a subject; WebAuthn requires
	// none.
	AIKSubject string
	// OmitAIKEKU leaves tcg-kp-AIKCertificate off the AIK certificate.
	OmitAIKEKU bool
}

// SafetyNetOptions choose a minted android-safetynet attestation
// (WebAuthn §8.5). The negative cases each break one check.
type SafetyNetOptions struct {
	WebAuthnOptions
	// Nonce, when set, is signed instead of the registration's nonce.
	Nonce []byte
	// Timestamp is the response's timestampMs; default ValidAt.
	Timestamp time.Time
	// CTSProfileMismatch sets ctsProfileMatch false.
	CTSProfileMismatch bool
	// Hostname the signing certificate is issued to; default
	// attest.android.com.
	Hostname string
}

var (
	oidSAN         = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidFIDOAAGUID  = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 45724, 1, 1, 4}
	oidTCGAIKCert  = asn1.ObjectIdentifier{2, 23, 133, 8, 3}
	oidTCGTPMManuf = asn1.ObjectIdentifier{2, 23, 133, 2, 1}
	oidTCGTPMModel = asn1.ObjectIdentifier{2, 23, 133, 2, 2}
	oidTCGTPMVer   = asn1.ObjectIdentifier{2, 23, 133, 2, 3}
)

// MintTPM mints a tpm registration: an ECC credential key certified by a
// TPM attestation key whose AIK certificate the CA's root issued. Verify
// it with the root in attest.FIDO2Expectation.Roots at ValidAt.
func (ca *CA) MintTPM(o TPMOptions) *Registration {
	o.defaults(ca)
	cred := ca.newKey("EC-P256").(*ecdsa.PrivateKey)
	authData := ca.authData(o.WebAuthnOptions, cred)
	clientData := clientDataJSON(o.WebAuthnOptions)
	pubArea := tpmECCPublic(cred)
	extra := o.ExtraData
	if extra == nil {
		h := sha256.Sum256(append(append([]byte{}, authData...), sha256Of(clientData)...))
		extra = h[:]
	}
	certInfo := tpmCertifyInfo(extra, pubArea)
	aik := ca.newKey("EC-P256")
	sig := ca.signDigest(aik, certInfo)
	if o.TamperCertInfo {
		// The last byte of firmwareVersion (before the 36-byte name and the
		// empty qualifiedName): only the signature covers it.
		certInfo[len(certInfo)-2-36-1] ^= 0x01
	}
	aikCert := ca.sign(ca.aikTemplate(o), ca.root, aik.Public(), ca.key)
	stmt := map[string]any{"ver": "2.0", "alg": int64(-7), "x5c": []any{aikCert.Raw},
		"sig": sig, "certInfo": certInfo, "pubArea": pubArea}
	return ca.registration(o.WebAuthnOptions, "tpm", stmt, authData, clientData)
}

// MintSafetyNet mints an android-safetynet registration: a SafetyNet JWS
// (ES256) signed by a certificate the CA's root issued.
func (ca *CA) MintSafetyNet(o SafetyNetOptions) *Registration {
	o.defaults(ca)
	if o.Timestamp.IsZero() {
		o.Timestamp = ValidAt
	}
	if o.Hostname == "" {
		o.Hostname = "attest.android.com"
	}
	cred := ca.newKey("EC-P256").(*ecdsa.PrivateKey)
	authData := ca.authData(o.WebAuthnOptions, cred)
	clientData := clientDataJSON(o.WebAuthnOptions)
	nonce := o.Nonce
	if nonce == nil {
		h := sha256.Sum256(append(append([]byte{}, authData...), sha256Of(clientData)...))
		nonce = h[:]
	}
	signer := ca.newKey("EC-P256")
	leaf := ca.sign(&x509.Certificate{
		SerialNumber: ca.serial(), Subject: pkix.Name{CommonName: o.Hostname}, DNSNames: []string{o.Hostname},
		NotBefore: o.NotBefore, NotAfter: o.NotAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca.root, signer.Public(), ca.key)
	header := b64url(mustJSON(map[string]any{"alg": "ES256", "x5c": []string{base64.StdEncoding.EncodeToString(leaf.Raw)}}))
	payload := b64url(mustJSON(map[string]any{"nonce": base64.StdEncoding.EncodeToString(nonce),
		"timestampMs": o.Timestamp.UnixMilli(), "ctsProfileMatch": !o.CTSProfileMismatch, "basicIntegrity": true}))
	r, s, err := ecdsa.Sign(rand.Reader, signer.(*ecdsa.PrivateKey), sha256Of([]byte(header+"."+payload)))
	if err != nil {
		ca.failf("signing the SafetyNet response: %v", err)
	}
	jws := header + "." + payload + "." + b64url(append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...))
	stmt := map[string]any{"ver": "250000000", "response": []byte(jws)}
	return ca.registration(o.WebAuthnOptions, "android-safetynet", stmt, authData, clientData)
}

func (ca *CA) aikTemplate(o TPMOptions) *x509.Certificate {
	dirName := pkix.RDNSequence{
		{{Type: oidTCGTPMManuf, Value: "id:4B465400"}},
		{{Type: oidTCGTPMModel, Value: "keyfleet test TPM"}},
		{{Type: oidTCGTPMVer, Value: "id:00010002"}},
	}
	san := mustDER([]asn1.RawValue{{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: mustDER(dirName)}})
	t := &x509.Certificate{
		SerialNumber: ca.serial(),
		NotBefore:    o.NotBefore, NotAfter: o.NotAfter,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{
			{Id: oidSAN, Critical: true, Value: san},
			{Id: oidFIDOAAGUID, Value: mustDER(o.AAGUID[:])},
		},
	}
	if o.AIKSubject != "" {
		t.Subject = pkix.Name{CommonName: o.AIKSubject}
	}
	if !o.OmitAIKEKU {
		t.UnknownExtKeyUsage = []asn1.ObjectIdentifier{oidTCGAIKCert}
	}
	return t
}

// tpmECCPublic encodes a TPMT_PUBLIC for a P-256 key (TPM 2.0 Part 2
// §12.2.4), named with SHA-256.
func tpmECCPublic(k *ecdsa.PrivateKey) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint16(b, 0x0023)     // type TPM_ALG_ECC
	b = binary.BigEndian.AppendUint16(b, 0x000b)     // nameAlg TPM_ALG_SHA256
	b = binary.BigEndian.AppendUint32(b, 0x00060472) // objectAttributes
	b = binary.BigEndian.AppendUint16(b, 0)          // authPolicy (empty)
	b = binary.BigEndian.AppendUint16(b, 0x0010)     // symmetric TPM_ALG_NULL
	b = binary.BigEndian.AppendUint16(b, 0x0010)     // scheme TPM_ALG_NULL
	b = binary.BigEndian.AppendUint16(b, 0x0003)     // curveID TPM_ECC_NIST_P256
	b = binary.BigEndian.AppendUint16(b, 0x0010)     // kdf TPM_ALG_NULL
	b = tpm2b(b, k.X.FillBytes(make([]byte, 32)))
	return tpm2b(b, k.Y.FillBytes(make([]byte, 32)))
}

// tpmCertifyInfo encodes a TPMS_ATTEST of type TPM_ST_ATTEST_CERTIFY
// (Part 2 §10.12.12) for the object pubArea describes.
func tpmCertifyInfo(extraData, pubArea []byte) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint32(b, 0xff544347) // TPM_GENERATED_VALUE
	b = binary.BigEndian.AppendUint16(b, 0x8017)     // TPM_ST_ATTEST_CERTIFY
	b = tpm2b(b, []byte("keyfleet-signer"))          // qualifiedSigner
	b = tpm2b(b, extraData)
	b = append(b, make([]byte, 17+8)...) // clockInfo, firmwareVersion
	name := append([]byte{0x00, 0x0b}, sha256Of(pubArea)...)
	b = tpm2b(b, name)
	return tpm2b(b, nil) // qualifiedName
}

func tpm2b(b, v []byte) []byte {
	return append(binary.BigEndian.AppendUint16(b, uint16(len(v))), v...)
}

// authData encodes authenticator data with attested credential data
// (WebAuthn §6.1, §6.5.1): UP, UV and AT set, a zero counter.
func (ca *CA) authData(o WebAuthnOptions, cred *ecdsa.PrivateKey) []byte {
	coseKey, err := webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1,
		-2: cred.X.FillBytes(make([]byte, 32)), -3: cred.Y.FillBytes(make([]byte, 32))})
	if err != nil {
		ca.failf("encoding the credential key: %v", err)
	}
	credID := make([]byte, 32)
	if _, err := rand.Read(credID); err != nil {
		ca.failf("credential id: %v", err)
	}
	var b bytes.Buffer
	b.Write(sha256Of([]byte(o.RPID)))
	b.WriteByte(0x45) // UP | UV | AT
	b.Write(make([]byte, 4))
	b.Write(o.AAGUID[:])
	b.Write(binary.BigEndian.AppendUint16(nil, uint16(len(credID))))
	b.Write(credID)
	b.Write(coseKey)
	return b.Bytes()
}

func (ca *CA) registration(o WebAuthnOptions, format string, stmt map[string]any, authData, clientData []byte) *Registration {
	obj, err := webauthncbor.Marshal(map[string]any{"fmt": format, "attStmt": stmt, "authData": authData})
	if err != nil {
		ca.failf("encoding the attestation object: %v", err)
	}
	return &Registration{AttestationObject: obj, ClientDataJSON: clientData,
		Challenge: o.Challenge, Origins: []string{o.Origin}, RPID: o.RPID}
}

// signDigest signs the SHA-256 of msg (ES256, ASN.1 signature).
func (ca *CA) signDigest(k any, msg []byte) []byte {
	sig, err := ecdsa.SignASN1(rand.Reader, k.(*ecdsa.PrivateKey), sha256Of(msg))
	if err != nil {
		ca.failf("signing: %v", err)
	}
	return sig
}

func clientDataJSON(o WebAuthnOptions) []byte {
	return mustJSON(map[string]any{"type": "webauthn.create", "challenge": b64url(o.Challenge), "origin": o.Origin, "crossOrigin": false})
}

func sha256Of(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
