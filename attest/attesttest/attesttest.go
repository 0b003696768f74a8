// Package attesttest mints Yubico-like PIV attestation chains for tests:
// a root CA, an F9 device certificate per key, and slot attestation
// certificates with chosen firmware, serial, policies, form factor, FIPS
// marking and key algorithm. It also makes the broken inputs negative tests
// need (other roots, expired chains, missing extensions, truncated DER).
//
// A CA is trusted only where a test passes CA.Root() in
// attest.PIVOptions.Roots, exactly like a production deployment that
// configures a virtual key's CA. Everything works without a *testing.T
// (pass nil; failures then panic), for benchmarks and the virtual YubiKey.
package attesttest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"testing"
	"time"
)

// ValidAt is a time inside the default validity of every minted
// certificate (2024-01-01 to 2099-12-31): pass it as the verification time.
var ValidAt = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

var (
	defaultNotBefore = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	defaultNotAfter  = time.Date(2099, 12, 31, 23, 59, 59, 0, time.UTC)
)

// Yubico extension OIDs, under 1.3.6.1.4.1.41482.3.
var (
	OIDFirmware   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 3}
	OIDSerial     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 7}
	OIDPolicy     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 8}
	OIDFormFactor = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 9}
	OIDFIPS       = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 10}
	OIDCSRSlot    = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 11}
	OIDCSRDevice  = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 2}
)

// CA is a test attestation root. It is safe for concurrent use.
type CA struct {
	tb   testing.TB
	key  crypto.Signer
	root *x509.Certificate
}

// NewCA makes a CA with a fresh P-256 root key. tb may be nil.
func NewCA(tb testing.TB) *CA {
	ca := &CA{tb: tb}
	ca.key = ca.newKey("EC-P256")
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(263751),
		Subject:               pkix.Name{CommonName: "keyfleet Test PIV Root CA"},
		NotBefore:             defaultNotBefore,
		NotAfter:              defaultNotAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            1,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	ca.root = ca.sign(tmpl, tmpl, ca.key.Public(), ca.key)
	return ca
}

// Root returns the root certificate, to pass in attest.PIVOptions.Roots.
func (ca *CA) Root() *x509.Certificate { return ca.root }

// RootPEM returns the root certificate as PEM, for a roots file.
func (ca *CA) RootPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.root.Raw})
}

// failf reports a minting failure: through tb when there is one, by panic
// otherwise.
func (ca *CA) failf(format string, args ...any) {
	if ca.tb != nil {
		ca.tb.Helper()
		ca.tb.Fatalf("attesttest: "+format, args...)
	}
	panic(fmt.Sprintf("attesttest: "+format, args...))
}

// newKey generates a key: "EC-P256" (default), "EC-P384", "RSA-2048",
// "RSA-1024" or "Ed25519".
func (ca *CA) newKey(alg string) crypto.Signer {
	var key crypto.Signer
	var err error
	switch alg {
	case "", "EC-P256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EC-P384":
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "RSA-2048":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case "RSA-1024":
		key, err = rsa.GenerateKey(rand.Reader, 1024)
	case "Ed25519":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		ca.failf("unknown key algorithm %q", alg)
	}
	if err != nil {
		ca.failf("generating a %s key: %v", alg, err)
	}
	return key
}

func (ca *CA) sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		ca.failf("signing %q: %v", tmpl.Subject.CommonName, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		ca.failf("parsing %q: %v", tmpl.Subject.CommonName, err)
	}
	return c
}

// Truncated returns der cut short by n bytes (at least one byte is kept), a
// certificate or CSR no parser should accept.
func Truncated(der []byte, n int) []byte {
	if n >= len(der) {
		n = len(der) - 1
	}
	return append([]byte(nil), der[:len(der)-n]...)
}
