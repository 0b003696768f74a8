package attest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
)

// AttestationAnonCA is the WebAuthn §6.5.4 anonymization CA type (Apple).
const AttestationAnonCA = "anonca"

// oidFIDOAAGUID is id-fido-gen-ce-aaguid (WebAuthn §8.2.1).
var oidFIDOAAGUID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 45724, 1, 1, 4}

// oidSAN is subjectAltName, critical on TPM AIK certificates.
var oidSAN = asn1.ObjectIdentifier{2, 5, 29, 17}

// verifyStatement checks the attestation statement (WebAuthn §7.1 step 19)
// and returns the attestation type and the statement's certificates.
//
// Every time-dependent check uses at: the SafetyNet timestamp here, and the
// validity of every certificate in verifyFIDOChain afterwards.
func verifyStatement(att *protocol.AttestationObject, clientDataHash []byte, key *credentialKey, at time.Time) (string, []*x509.Certificate, error) {
	switch att.Format {
	case "none": // §8.7
		if len(att.AttStatement) != 0 {
			return "", nil, fail(ErrInvalidAttestation, nil, "a \"none\" attestation carries a statement")
		}
		return AttestationNone, nil, nil
	case "packed":
		return verifyPacked(att, clientDataHash, key)
	case "fido-u2f":
		return verifyU2F(att, clientDataHash, key)
	case "tpm":
		return verifyTPM(att, clientDataHash, key)
	case "android-safetynet":
		return verifySafetyNet(att, clientDataHash, at)
	case "android-key", "apple":
		return verifyDelegated(att, clientDataHash)
	}
	return "", nil, fail(ErrUnsupportedFormat, nil, "the attestation format %q is not supported", att.Format)
}

// verifyPacked implements the packed verification procedure (WebAuthn §8.2).
func verifyPacked(att *protocol.AttestationObject, clientDataHash []byte, key *credentialKey) (string, []*x509.Certificate, error) {
	alg, okAlg := att.AttStatement["alg"].(int64)
	sig, okSig := att.AttStatement["sig"].([]byte)
	if !okAlg || !okSig {
		return "", nil, fail(ErrMalformed, nil, "the packed statement lacks its alg or sig")
	}
	signed := append(append([]byte{}, att.RawAuthData...), clientDataHash...)
	rawX5C, hasX5C := att.AttStatement["x5c"]
	if !hasX5C { // self attestation: signed by the credential key itself
		if alg != key.alg {
			return "", nil, fail(ErrInvalidAttestation, nil, "the self attestation uses algorithm %d but the credential key is %d", alg, key.alg)
		}
		if ok, err := webauthncose.VerifySignature(key.cose, signed, sig); !ok {
			return "", nil, fail(ErrInvalidAttestation, err, "the self attestation signature does not verify")
		}
		return AttestationSelf, nil, nil
	}
	certs, err := parseX5C(rawX5C, false)
	if err != nil {
		return "", nil, err
	}
	sigAlg := webauthncose.SigAlgFromCOSEAlg(webauthncose.COSEAlgorithmIdentifier(alg))
	if sigAlg == x509.UnknownSignatureAlgorithm {
		return "", nil, fail(ErrInvalidAttestation, nil, "the packed statement uses unsupported algorithm %d", alg)
	}
	if err := certs[0].CheckSignature(sigAlg, signed, sig); err != nil {
		return "", nil, fail(ErrInvalidAttestation, err, "the attestation signature does not verify with the attestation certificate")
	}
	if err := checkPackedCert(certs[0], att.AuthData.AttData.AAGUID); err != nil {
		return "", nil, err
	}
	return AttestationBasic, certs, nil
}

// checkPackedCert applies WebAuthn §8.2.1 (packed attestation certificate
// requirements).
func checkPackedCert(c *x509.Certificate, aaguid []byte) error {
	s := c.Subject
	switch {
	case c.Version != 3:
		return fail(ErrInvalidAttestation, nil, "the attestation certificate is not X.509 version 3")
	case len(s.Country) != 1 || len(s.Country[0]) != 2 || len(s.Organization) == 0 || s.CommonName == "":
		return fail(ErrInvalidAttestation, nil, "the attestation certificate subject lacks its country, organisation or common name")
	case strings.Join(s.OrganizationalUnit, " ") != "Authenticator Attestation":
		return fail(ErrInvalidAttestation, nil, "the attestation certificate's organisational unit is not \"Authenticator Attestation\"")
	case c.BasicConstraintsValid && c.IsCA:
		return fail(ErrInvalidAttestation, nil, "the attestation certificate is a CA certificate")
	}
	return checkAAGUIDExtension(c, aaguid, "attestation")
}

// checkAAGUIDExtension checks id-fido-gen-ce-aaguid, when the certificate
// has it: it must be non-critical and name the AAGUID of the authenticator
// data (WebAuthn §8.2.1, §8.3.1). what names the certificate in errors.
func checkAAGUIDExtension(c *x509.Certificate, aaguid []byte, what string) error {
	for _, e := range c.Extensions {
		if !e.Id.Equal(oidFIDOAAGUID) {
			continue
		}
		var certAAGUID []byte
		if _, err := asn1.Unmarshal(e.Value, &certAAGUID); err != nil || e.Critical {
			return fail(ErrInvalidAttestation, err, "the %s certificate's AAGUID extension is malformed or critical", what)
		}
		if !bytes.Equal(certAAGUID, aaguid) {
			return fail(ErrInvalidAttestation, nil, "the %s certificate is for AAGUID %s, the authenticator claims %s",
				what, formatAAGUID(certAAGUID), formatAAGUID(aaguid))
		}
	}
	return nil
}

// verifyU2F implements the fido-u2f verification procedure (WebAuthn §8.6).
func verifyU2F(att *protocol.AttestationObject, clientDataHash []byte, key *credentialKey) (string, []*x509.Certificate, error) {
	sig, ok := att.AttStatement["sig"].([]byte)
	if !ok {
		return "", nil, fail(ErrMalformed, nil, "the fido-u2f statement lacks its sig")
	}
	certs, err := parseX5C(att.AttStatement["x5c"], true)
	if err != nil {
		return "", nil, err
	}
	if len(certs) != 1 {
		return "", nil, fail(ErrInvalidAttestation, nil, "a fido-u2f statement must carry exactly one certificate, not %d", len(certs))
	}
	certKey, ok := certs[0].PublicKey.(*ecdsa.PublicKey)
	credKey, ok2 := key.pub.(*ecdsa.PublicKey)
	if !ok || !ok2 || certKey.Curve != elliptic.P256() || credKey.Curve != elliptic.P256() {
		return "", nil, fail(ErrInvalidAttestation, nil, "fido-u2f needs P-256 keys for both the attestation and the credential")
	}
	ad := &att.AuthData
	var msg bytes.Buffer
	msg.WriteByte(0x00)
	msg.Write(ad.RPIDHash)
	msg.Write(clientDataHash)
	msg.Write(ad.AttData.CredentialID)
	msg.WriteByte(0x04) // uncompressed point (SEC 1 §2.3.3)
	msg.Write(credKey.X.FillBytes(make([]byte, 32)))
	msg.Write(credKey.Y.FillBytes(make([]byte, 32)))
	digest := sha256.Sum256(msg.Bytes())
	if !ecdsa.VerifyASN1(certKey, digest[:], sig) {
		return "", nil, fail(ErrInvalidAttestation, nil, "the U2F attestation signature does not verify with the attestation certificate")
	}
	return AttestationBasic, certs, nil
}

// verifyDelegated runs go-webauthn's verification procedure for
// android-key (§8.4) and apple (§8.8), without metadata; the chain is
// verified afterwards against our roots at the caller's time.
//
// Clock: go-webauthn also checks these chains against its own vendor roots,
// at the wall clock plus one year with the leaf's expiry ignored; an
// intermediate that has expired by then fails here whatever exp.Time is.
func verifyDelegated(att *protocol.AttestationObject, clientDataHash []byte) (string, []*x509.Certificate, error) {
	if err := att.VerifyAttestation(clientDataHash, nil, protocol.AttestationPolicy{}, protocol.SignaturePolicy{}); err != nil {
		return "", nil, fail(ErrInvalidAttestation, err, "the %s attestation statement does not verify", att.Format)
	}
	certs, err := parseX5C(att.AttStatement["x5c"], false)
	if err != nil {
		return "", nil, err
	}
	switch att.Type {
	case "basic_surrogate":
		return AttestationSelf, nil, nil
	case "attca":
		return AttestationCA, certs, nil
	case "anonca":
		return AttestationAnonCA, certs, nil
	}
	return AttestationBasic, certs, nil
}

// parseX5C decodes an untrusted x5c array of DER certificates.
func parseX5C(v any, u2fFix bool) ([]*x509.Certificate, error) {
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return nil, fail(ErrMalformed, nil, "the attestation statement has no certificate list (x5c)")
	}
	certs := make([]*x509.Certificate, 0, len(list))
	for i, item := range list {
		der, ok := item.([]byte)
		if !ok {
			return nil, fail(ErrMalformed, nil, "certificate %d of the attestation statement is not a byte string", i+1)
		}
		parse := x509.ParseCertificate
		if u2fFix {
			parse = parseU2FCertificate
		}
		c, err := parse(der)
		if err != nil {
			return nil, fail(ErrMalformed, err, "certificate %d of the attestation statement does not parse", i+1)
		}
		certs = append(certs, c)
	}
	return certs, nil
}

// verifyFIDOChain verifies x5c (leaf first) to the trusted roots at
// exp.Time (WebAuthn §7.1 step 21) and returns the chain as DER.
func verifyFIDOChain(x5c []*x509.Certificate, exp FIDO2Expectation) ([][]byte, error) {
	roots, inter := fidoTrust().pools(exp.Roots, exp.ExcludeBuiltinRoots)
	for _, c := range x5c[1:] {
		inter.AddCert(c)
	}
	chains, err := tpmTolerantLeaf(x5c[0]).Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, CurrentTime: exp.Time,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		var invalid x509.CertificateInvalidError
		if errors.As(err, &invalid) && invalid.Reason == x509.Expired {
			return nil, fail(ErrExpired, err, "the attestation certificate %q is not valid at %s",
				invalid.Cert.Subject.CommonName, exp.Time.UTC().Format(time.RFC3339))
		}
		return nil, fail(ErrUntrustedChain, err, "the attestation certificate %q (issued by %q) does not chain to a trusted root; trust its vendor's root by configuration if it should be accepted",
			x5c[0].Subject.CommonName, x5c[0].Issuer.CommonName)
	}
	return chainDER(chains[0]), nil
}

// tpmTolerantLeaf returns the leaf with a critical subjectAltName marked as
// handled. TPM quirk: AIK certificates carry a critical SAN holding only a
// directoryName (TPM manufacturer, model, version: WebAuthn §8.3.1), which
// crypto/x509 leaves unhandled. go-webauthn has checked its content.
func tpmTolerantLeaf(c *x509.Certificate) *x509.Certificate {
	var kept []asn1.ObjectIdentifier
	for _, oid := range c.UnhandledCriticalExtensions {
		if !oid.Equal(oidSAN) {
			kept = append(kept, oid)
		}
	}
	if len(kept) == len(c.UnhandledCriticalExtensions) {
		return c
	}
	cp := *c
	cp.UnhandledCriticalExtensions = kept
	return &cp
}

// rsaKey converts a COSE RSA key (RFC 8230 §4).
func rsaKey(k webauthncose.RSAPublicKeyData) (*rsa.PublicKey, error) {
	e, err := webauthncose.ParseRSAPublicKeyDataExponent(&k)
	if err != nil {
		return nil, err
	}
	if len(k.Modulus) == 0 {
		return nil, fmt.Errorf("empty RSA modulus")
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(k.Modulus), E: e}, nil
}
