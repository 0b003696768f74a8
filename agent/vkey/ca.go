package vkey

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"time"
)

// Yubico's attestation extensions, under 1.3.6.1.4.1.41482.3.
var (
	oidFirmware   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 3}
	oidSerial     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 7}
	oidPolicy     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 8}
	oidFormFactor = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 9}
	oidFIPS       = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 10}
)

// Certificate validity of everything a CA mints: wide, so that tests and
// demos pinned to any plausible date verify.
var (
	certNotBefore = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	certNotAfter  = time.Date(2099, 12, 31, 23, 59, 59, 0, time.UTC)
)

// CA is a virtual key's attestation root: it certifies each card's F9
// device attestation key, which signs the slot attestation certificates.
// Several cards may share one CA, as YubiKeys share Yubico's.
type CA struct {
	key  crypto.Signer
	cert *x509.Certificate
}

// NewCA makes a CA with a fresh P-256 key. rand defaults to crypto/rand.
func NewCA(r io.Reader) (*CA, error) {
	if r == nil {
		r = rand.Reader
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), r)
	if err != nil {
		return nil, fmt.Errorf("generating the attestation root key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(r),
		Subject:               pkix.Name{CommonName: "keyfleet virtual YubiKey attestation root", Organization: []string{"keyfleet"}},
		NotBefore:             certNotBefore,
		NotAfter:              certNotAfter,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true, IsCA: true, MaxPathLen: 1,
	}
	der, err := x509.CreateCertificate(r, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("signing the attestation root: %w", err)
	}
	cert, _ := x509.ParseCertificate(der) // just created
	return &CA{key: key, cert: cert}, nil
}

// Root returns the root certificate, to trust in a verifier.
func (ca *CA) Root() *x509.Certificate { return ca.cert }

// RootPEM returns the root certificate as PEM.
func (ca *CA) RootPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
}

// LoadOrCreateCA reads a CA file (PEM: a PRIVATE KEY and a CERTIFICATE),
// or creates one (mode 0600) when path does not exist. Errors wrap
// ErrBadState for a file that does not parse.
func LoadOrCreateCA(path string) (*CA, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		ca, err := NewCA(nil)
		if err != nil {
			return nil, err
		}
		return ca, writeFileAtomic(path, ca.marshalPEM())
	}
	if err != nil {
		return nil, fmt.Errorf("reading the attestation CA: %w", err)
	}
	return parseCAPEM(b)
}

func (ca *CA) marshalPEM() []byte {
	k, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		panic("vkey: CA key does not marshal") // an ECDSA key always does
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k})
	return append(out, ca.RootPEM()...)
}

func parseCAPEM(b []byte) (*CA, error) {
	var ca CA
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		switch blk.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			if s, ok := k.(crypto.Signer); err == nil && ok {
				ca.key = s
			}
		case "CERTIFICATE":
			ca.cert, _ = x509.ParseCertificate(blk.Bytes)
		}
	}
	if ca.key == nil || ca.cert == nil {
		return nil, fmt.Errorf("%w: the attestation CA file needs a PRIVATE KEY and a CERTIFICATE", ErrBadState)
	}
	return &ca, nil
}

// mintDevice makes a card's F9 attestation key and certificate.
func (ca *CA) mintDevice(r io.Reader, firmware [3]byte, fips bool) (keyDER, certDER []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), r)
	if err != nil {
		return nil, nil, fmt.Errorf("generating the device attestation key: %w", err)
	}
	exts := []pkix.Extension{{Id: oidFirmware, Value: firmware[:]}}
	if fips {
		exts = append(exts, pkix.Extension{Id: oidFIPS, Value: []byte{0x02, 0x01, 0x07}})
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(r),
		Subject:      pkix.Name{CommonName: "Yubico PIV Attestation"},
		NotBefore:    certNotBefore, NotAfter: certNotAfter,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true, IsCA: true, MaxPathLenZero: true,
		ExtraExtensions: exts,
	}
	certDER, err = x509.CreateCertificate(r, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("signing the device attestation certificate: %w", err)
	}
	keyDER, err = x509.MarshalPKCS8PrivateKey(key)
	return keyDER, certDER, err
}

// slotFacts is what a slot attestation certificate states.
type slotFacts struct {
	slot                   byte
	serial                 uint32
	firmware               [3]byte
	pinPolicy, touchPolicy byte
	formFactor             byte
}

// mintSlot signs a slot attestation certificate for pub with the F9 key.
func mintSlot(r io.Reader, devKey crypto.Signer, devCert *x509.Certificate, pub crypto.PublicKey, f slotFacts) ([]byte, error) {
	serial, err := asn1.Marshal(int64(f.serial))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(r),
		Subject:      pkix.Name{CommonName: fmt.Sprintf("YubiKey PIV Attestation %02x", f.slot)},
		NotBefore:    devCert.NotBefore, NotAfter: devCert.NotAfter,
		ExtraExtensions: []pkix.Extension{
			{Id: oidFirmware, Value: f.firmware[:]},
			{Id: oidSerial, Value: serial},
			{Id: oidPolicy, Value: []byte{f.pinPolicy, f.touchPolicy}},
			{Id: oidFormFactor, Value: []byte{f.formFactor}},
		},
	}
	return x509.CreateCertificate(r, tmpl, devCert, pub, devKey)
}

func randomSerial(r io.Reader) *big.Int {
	n, err := rand.Int(r, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return big.NewInt(time.Now().UnixNano()) // a broken reader: still unique enough
	}
	return n.Add(n, big.NewInt(1))
}
