package attest

import (
	"crypto/x509"
	"encoding/asn1"
)

// Where yubico-piv-tool and similar tools put the attestation in a CSR.
var (
	oidCSRSlotCert    = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 11} // slot certificate (yubico-piv-tool)
	oidCSRSlotCertAlt = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 1}  // slot certificate (older tools)
	oidCSRDeviceCert  = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 2}  // F9 device certificate
)

// VerifyPIVCSR verifies a certificate signing request that carries its own
// PIV attestation: the slot certificate in extension
// 1.3.6.1.4.1.41482.3.11 (or .3.1) and the F9 device certificate in .3.2,
// each as a DER certificate. The CSR's self-signature must verify and its
// key must be the attested key; if opts.ExpectedPublicKey is set, it must be
// that key too. csrDER is DER (see ParseCSR for PEM).
//
// Errors (all *Error): those of VerifyPIV, plus ErrMalformed for a CSR that
// does not parse or whose signature fails, ErrMissingExtension when either
// certificate is absent, and ErrKeyMismatch when the CSR is for another key.
func VerifyPIVCSR(csrDER []byte, opts PIVOptions) (*Evidence, error) {
	csr, slot, device, err := parsePIVCSR(csrDER)
	if err != nil {
		return nil, err
	}
	if err := checkExpectedKey(csr.PublicKey, opts.ExpectedPublicKey,
		"the CSR is for a different key than the one expected"); err != nil {
		return nil, err
	}
	if err := checkExpectedKey(slot.PublicKey, csr.PublicKey,
		"the CSR is for a different key than the one the YubiKey attested"); err != nil {
		return nil, err
	}
	opts.ExpectedPublicKey = csr.PublicKey
	return VerifyPIV(slot, device, opts)
}

// parsePIVCSR parses untrusted CSR bytes and pulls out the two certificates.
func parsePIVCSR(der []byte) (csr *x509.CertificateRequest, slot, device *x509.Certificate, err error) {
	csr, err = x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, nil, nil, fail(ErrMalformed, err, "the certificate signing request does not parse")
	}
	if err = csr.CheckSignature(); err != nil {
		return nil, nil, nil, fail(ErrMalformed, err, "the certificate signing request's own signature does not verify")
	}
	var slotDER, deviceDER []byte
	for _, e := range csr.Extensions {
		switch {
		case e.Id.Equal(oidCSRSlotCert), e.Id.Equal(oidCSRSlotCertAlt) && slotDER == nil:
			slotDER = e.Value
		case e.Id.Equal(oidCSRDeviceCert):
			deviceDER = e.Value
		}
	}
	if slotDER == nil {
		return nil, nil, nil, fail(ErrMissingExtension, nil, "the CSR carries no slot attestation certificate (extension 1.3.6.1.4.1.41482.3.11 or .3.1)")
	}
	if deviceDER == nil {
		return nil, nil, nil, fail(ErrMissingExtension, nil, "the CSR carries no device (F9) certificate (extension 1.3.6.1.4.1.41482.3.2)")
	}
	if slot, err = x509.ParseCertificate(slotDER); err != nil {
		return nil, nil, nil, fail(ErrMalformed, err, "the slot attestation certificate in the CSR does not parse")
	}
	if device, err = x509.ParseCertificate(deviceDER); err != nil {
		return nil, nil, nil, fail(ErrMalformed, err, "the device (F9) certificate in the CSR does not parse")
	}
	return csr, slot, device, nil
}
