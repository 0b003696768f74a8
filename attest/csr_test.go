package attest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/attest/attesttest"
)

func TestVerifyPIVCSRAcceptsEveryRealCSR(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(testdata, "piv", "tamemycerts", "*.csr.pem"))
	if len(files) != 9 {
		t.Fatalf("found %d CSR vectors, want 9", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			der, err := ParseCSR(readVector(t, strings.TrimPrefix(f, testdata+"/")))
			if err != nil {
				t.Fatal(err)
			}
			ev, err := VerifyPIVCSR(der, PIVOptions{Time: vectorTime})
			if err != nil {
				t.Fatal(err)
			}
			slotFile := strings.TrimSuffix(f, ".csr.pem")
			matches, _ := filepath.Glob(slotFile + ".slot-ext3.*.pem")
			slot := certVector(t, strings.TrimPrefix(matches[0], testdata+"/"))
			if string(ev.PublicKey) != string(slot.RawSubjectPublicKeyInfo) || ev.Serial == 0 {
				t.Errorf("evidence does not describe the slot certificate's key: %+v", ev)
			}
		})
	}
}

func TestVerifyPIVCSRRejects(t *testing.T) {
	ca := attesttest.NewCA(t)
	good, _ := ca.MintPIVCSR(attesttest.PIVOptions{}, nil)
	_, _, stranger := ca.MintPIV(attesttest.PIVOptions{})
	forOtherKey, _ := ca.MintPIVCSR(attesttest.PIVOptions{}, stranger)
	roots := []*x509.Certificate{ca.Root()}
	tests := []struct {
		name string
		csr  []byte
		opts PIVOptions
		want error
	}{
		{"a CSR for another key than the attested one is a key mismatch", forOtherKey, PIVOptions{Time: attesttest.ValidAt, Roots: roots}, ErrKeyMismatch},
		{"a CSR for another key than expected is a key mismatch", good, PIVOptions{Time: attesttest.ValidAt, Roots: roots, ExpectedPublicKey: stranger.Public()}, ErrKeyMismatch},
		{"a truncated CSR is malformed", attesttest.Truncated(good, 20), PIVOptions{Time: attesttest.ValidAt, Roots: roots}, ErrMalformed},
		{"a CSR from an unconfigured CA is untrusted", good, PIVOptions{Time: attesttest.ValidAt}, ErrUntrustedChain},
		{"a CSR without attestation extensions is missing them", plainCSR(t), PIVOptions{Time: attesttest.ValidAt, Roots: roots}, ErrMissingExtension},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := VerifyPIVCSR(tc.csr, tc.opts); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := VerifyPIVCSR(good, PIVOptions{Time: attesttest.ValidAt, Roots: roots}); err != nil {
		t.Fatalf("the minted CSR itself must verify: %v", err)
	}
}

// plainCSR is a well-formed CSR that carries no attestation.
func plainCSR(t *testing.T) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
