package attest

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
)

// ParseCertificates reads one or more certificates from PEM ("CERTIFICATE"
// blocks; other blocks are skipped) or from a single DER certificate. It is
// the parser for certificate files given on a command line or in a form.
// Errors wrap ErrMalformed.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	if !bytes.Contains(data, []byte("-----BEGIN")) {
		c, err := x509.ParseCertificate(data)
		if err != nil {
			return nil, fail(ErrMalformed, err, "the data is neither PEM nor a DER certificate")
		}
		return []*x509.Certificate{c}, nil
	}
	var out []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fail(ErrMalformed, err, "certificate number %d in the PEM data does not parse", len(out)+1)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fail(ErrMalformed, nil, "the PEM data holds no CERTIFICATE block")
	}
	return out, nil
}

// ParseCertificate reads exactly one certificate (PEM or DER).
// Errors wrap ErrMalformed.
func ParseCertificate(data []byte) (*x509.Certificate, error) {
	certs, err := ParseCertificates(data)
	if err != nil {
		return nil, err
	}
	if len(certs) != 1 {
		return nil, fail(ErrMalformed, nil, "expected one certificate, found %d", len(certs))
	}
	return certs[0], nil
}

// ParseCSR returns the DER bytes of a certificate signing request given as
// PEM ("CERTIFICATE REQUEST" or "NEW CERTIFICATE REQUEST") or DER, ready for
// VerifyPIVCSR. Errors wrap ErrMalformed.
func ParseCSR(data []byte) ([]byte, error) {
	if !bytes.Contains(data, []byte("-----BEGIN")) {
		return data, nil
	}
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fail(ErrMalformed, nil, "the PEM data holds no CERTIFICATE REQUEST block")
		}
		if block.Type == "CERTIFICATE REQUEST" || block.Type == "NEW CERTIFICATE REQUEST" {
			return block.Bytes, nil
		}
	}
}
