package attest

import (
	"crypto/x509"
	_ "embed"
	"strings"
	"sync"
)

// Yubico's attestation CAs (see roots/SOURCE for where each file comes from).
var (
	//go:embed roots/yubico-piv-ca-1.pem
	pemPIVRoot []byte // Yubico PIV Root CA Serial 263751
	//go:embed roots/yubico-fido-ca-1.pem
	pemU2FRoot []byte // Yubico U2F Root CA Serial 457200631
	//go:embed roots/yubico-fido-ca-2.pem
	pemFIDORoot []byte // Yubico FIDO Root CA Serial 450203556
	//go:embed roots/yubico-ca-1.pem
	pemAttestationRoot1 []byte // Yubico Attestation Root 1 (firmware 5.7.4+)
	//go:embed roots/yubico-intermediate.pem
	pemIntermediates []byte // intermediates under Attestation Root 1
	//go:embed roots/yubico-fido-attestation-b2-1.pem
	pemFIDOB2 []byte // Yubico FIDO Attestation B2 1 (under Intermediate B 1; FIDO EE certificates from 2025)
)

// VendorYubico is Evidence.Vendor for Yubico keys.
const VendorYubico = "Yubico"

// trustSet is an immutable set of roots and intermediates.
type trustSet struct {
	roots         []*x509.Certificate
	intermediates []*x509.Certificate
	rootPool      *x509.CertPool
	interPool     *x509.CertPool
}

func newTrustSet(roots, intermediates []*x509.Certificate) *trustSet {
	t := &trustSet{roots: roots, intermediates: intermediates,
		rootPool: x509.NewCertPool(), interPool: x509.NewCertPool()}
	for _, c := range roots {
		t.rootPool.AddCert(c)
	}
	for _, c := range intermediates {
		t.interPool.AddCert(c)
	}
	return t
}

// mustParse parses embedded PEM; the embedded files are tested, so a failure
// is a build defect.
func mustParse(pemBytes []byte) []*x509.Certificate {
	certs, err := ParseCertificates(pemBytes)
	if err != nil {
		panic("attest: embedded root does not parse: " + err.Error())
	}
	return certs
}

// yubicoIntermediates returns the Root 1 intermediates for one applet
// ("PIV" or "FIDO"): the two shared tiers and that applet's issuers, so a
// PIV chain cannot run through the FIDO issuer and the other way round.
func yubicoIntermediates(applet string) []*x509.Certificate {
	var out []*x509.Certificate
	for _, c := range concat(mustParse(pemIntermediates), mustParse(pemFIDOB2)) {
		cn := c.Subject.CommonName
		if strings.HasPrefix(cn, "Yubico Attestation Intermediate ") ||
			strings.HasPrefix(cn, "Yubico "+applet+" Attestation ") {
			out = append(out, c)
		}
	}
	return out
}

var pivTrust = sync.OnceValue(func() *trustSet {
	u2f := mustParse(pemU2FRoot)[0]
	// YubiKey quirk: some 2017-2018 YubiKey 4 F9 certificates are issued by
	// the U2F root, whose pathlen is 0; allow the one intermediate (the F9
	// certificate) such a chain needs. This copy is only used for PIV.
	u2f.MaxPathLen, u2f.MaxPathLenZero = 1, false
	roots := []*x509.Certificate{mustParse(pemPIVRoot)[0], u2f, mustParse(pemAttestationRoot1)[0]}
	return newTrustSet(roots, yubicoIntermediates("PIV"))
})

var fidoTrust = sync.OnceValue(func() *trustSet {
	roots := []*x509.Certificate{mustParse(pemU2FRoot)[0], mustParse(pemFIDORoot)[0], mustParse(pemAttestationRoot1)[0]}
	return newTrustSet(roots, yubicoIntermediates("FIDO"))
})

// BuiltinPIVRoots returns fresh copies of the roots VerifyPIV trusts by
// default: Yubico PIV Root CA Serial 263751, Yubico U2F Root CA Serial
// 457200631 (older YubiKey 4 F9 certificates) and Yubico Attestation Root 1
// (firmware 5.7.4 and later, through its PIV intermediates).
func BuiltinPIVRoots() []*x509.Certificate {
	return concat(mustParse(pemPIVRoot), mustParse(pemU2FRoot), mustParse(pemAttestationRoot1))
}

// BuiltinFIDORoots returns fresh copies of the roots VerifyFIDO2 trusts by
// default: Yubico U2F Root CA Serial 457200631, Yubico FIDO Root CA Serial
// 450203556 and Yubico Attestation Root 1. Other vendors' roots (Apple,
// Google, Microsoft TPM, Feitian, ...) are trusted only when configured.
func BuiltinFIDORoots() []*x509.Certificate {
	return concat(mustParse(pemU2FRoot), mustParse(pemFIDORoot), mustParse(pemAttestationRoot1))
}

func concat(sets ...[]*x509.Certificate) []*x509.Certificate {
	var out []*x509.Certificate
	for _, s := range sets {
		out = append(out, s...)
	}
	return out
}

// pools returns the root and intermediate pools for one verification: the
// built-in set (unless excluded) plus the caller's extra roots. The
// built-in pools are shared read-only; extra roots go into a clone.
func (t *trustSet) pools(extra []*x509.Certificate, excludeBuiltin bool) (roots, inter *x509.CertPool) {
	switch {
	case excludeBuiltin:
		roots, inter = x509.NewCertPool(), x509.NewCertPool()
	case len(extra) == 0:
		return t.rootPool, t.interPool.Clone()
	default:
		roots, inter = t.rootPool.Clone(), t.interPool.Clone()
	}
	for _, c := range extra {
		roots.AddCert(c)
	}
	return roots, inter
}
