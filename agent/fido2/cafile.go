package fido2

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// LoadOrCreateCA reads a CA written by an earlier call (the private key
// and the root, PEM, mode 0600), or makes one and writes it to path.
func LoadOrCreateCA(path string) (*CA, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		ca, err := NewCA()
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(ca.key)
		if err != nil {
			return nil, err
		}
		out := append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), ca.RootPEM()...)
		return ca, os.WriteFile(path, out, 0o600)
	}
	if err != nil {
		return nil, err
	}
	return parseCAFile(path, b)
}

func parseCAFile(path string, b []byte) (*CA, error) {
	ca := &CA{}
	for blk, rest := pem.Decode(b); blk != nil; blk, rest = pem.Decode(rest) {
		switch blk.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			if ec, ok := k.(*ecdsa.PrivateKey); err == nil && ok {
				ca.key = ec
			}
		case "CERTIFICATE":
			ca.root, _ = x509.ParseCertificate(blk.Bytes)
		}
	}
	if ca.key == nil || ca.root == nil {
		return nil, fmt.Errorf("%s is not a FIDO2 attestation CA file (an EC private key and its root certificate): move it away to make a new CA", path)
	}
	return ca, nil
}
