package fido2

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"
)

// Extension OIDs of FIDO attestation certificates.
var (
	// OIDAAGUID is id-fido-gen-ce-aaguid (WebAuthn §8.2.1).
	OIDAAGUID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 45724, 1, 1, 4}
	// OIDFirmware is Yubico's firmware version (OCTET STRING, 3 bytes).
	OIDFirmware = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 13, 1}
	// OIDSerial is Yubico's device serial (INTEGER), in enterprise
	// attestation certificates only.
	OIDSerial = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 13, 2}
)

var (
	notBefore = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	notAfter  = time.Date(2099, 12, 31, 23, 59, 59, 0, time.UTC)
)

// CA is a test FIDO attestation root. A daemon trusts it only when
// configured to (the fido2 kind's extra roots).
type CA struct {
	key  *ecdsa.PrivateKey
	root *x509.Certificate
}

// NewCA makes a CA with a fresh P-256 key.
func NewCA() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(457200), Subject: pkix.Name{CommonName: "keyfleet Test FIDO Root CA", Organization: []string{"keyfleet"}},
		NotBefore: notBefore, NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true, MaxPathLen: 0,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	root, err := x509.ParseCertificate(der)
	return &CA{key: key, root: root}, err
}

// Root returns the root certificate to trust.
func (ca *CA) Root() *x509.Certificate { return ca.root }

// RootPEM returns the root as PEM, for a roots file.
func (ca *CA) RootPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.root.Raw})
}

// attestationCert issues a packed attestation certificate (WebAuthn
// §8.2.1: version 3, subject C, O, OU "Authenticator Attestation", CN, not
// a CA, the AAGUID extension non-critical). serial > 0 adds the serial
// extension, as enterprise attestation does.
func (ca *CA) attestationCert(pub crypto.PublicKey, aaguid []byte, firmware [3]byte, serial uint32) (*x509.Certificate, error) {
	aag, _ := asn1.Marshal(aaguid)
	fw, _ := asn1.Marshal(firmware[:])
	cn := "keyfleet Soft FIDO EE Batch"
	exts := []pkix.Extension{{Id: OIDAAGUID, Value: aag}, {Id: OIDFirmware, Value: fw}}
	if serial > 0 {
		sn, _ := asn1.Marshal(big.NewInt(int64(serial)))
		exts = append(exts, pkix.Extension{Id: OIDSerial, Value: sn})
		cn = fmt.Sprintf("keyfleet Soft FIDO EE Serial %d", serial)
	}
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: n, NotBefore: notBefore, NotAfter: notAfter, BasicConstraintsValid: true,
		// The organisation makes attest report vendor "Yubico AB", so the
		// virtual key's FIDO2 and PIV applets file as one device.
		Subject:         pkix.Name{Country: []string{"SE"}, Organization: []string{"Yubico AB"}, OrganizationalUnit: []string{"Authenticator Attestation"}, CommonName: cn},
		ExtraExtensions: exts, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.root, pub, ca.key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}
