package attest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"
)

// mintU2FCert mints an RSA-2048-signed leaf and breaks its signature's
// unused-bits byte, as the flawed Yubico U2F certificates do.
func mintU2FCert(t *testing.T, cn string) (broken []byte, issuer *x509.Certificate) {
	t.Helper()
	rootKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "root"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<32, 0), KeyUsage: x509.KeyUsageCertSign}
	rootDER, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, rootKey.Public(), rootKey)
	root, _ := x509.ParseCertificate(rootDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn}, NotBefore: tmpl.NotBefore, NotAfter: tmpl.NotAfter}
	der, err := x509.CreateCertificate(rand.Reader, leafTmpl, root, leafKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	der[len(der)-257] = 0x04 // non-zero unused bits before the 256-byte signature
	return der, root
}

func TestParseU2FCertificateRepairsOnlyTheKnownYubicoCertificates(t *testing.T) {
	tests := []struct {
		name     string
		cn       string
		repaired bool
	}{
		{"a listed Yubico U2F certificate is repaired and verifies", "Yubico U2F EE Serial 776137165", true},
		{"an unlisted certificate with the same flaw is not repaired", "Yubico U2F EE Serial 1", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			der, root := mintU2FCert(t, tc.cn)
			c, err := parseU2FCertificate(der)
			verified := err == nil && c.CheckSignatureFrom(root) == nil
			if verified != tc.repaired {
				t.Fatalf("verified %v (parse error %v), want %v", verified, err, tc.repaired)
			}
		})
	}
}
