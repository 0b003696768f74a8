package attest

import (
	"crypto/x509"
	"errors"
	"time"
)

// VerifyPIVDevice checks that a YubiKey's F9 device attestation
// certificate chains to Yubico's roots (or opts.Roots) at opts.Time, and
// returns the firmware and FIPS marker it carries. It is the check an
// agent can have made before it changes anything on a key: the slot
// certificate, and so the serial, policies and key, exist only after a
// key is generated (VerifyPIV). The F9 certificate is no identity: keys
// share it. opts.ExpectedPublicKey is ignored.
//
// Errors (all *Error): ErrInvalidOptions, ErrMalformed, ErrExpired,
// ErrUntrustedChain.
func VerifyPIVDevice(deviceCert *x509.Certificate, opts PIVOptions) (firmware string, fips bool, err error) {
	if opts.Time.IsZero() {
		return "", false, fail(ErrInvalidOptions, nil, "no verification time was given")
	}
	if deviceCert == nil {
		return "", false, fail(ErrMalformed, nil, "the device (F9) certificate is needed")
	}
	roots, inter := pivTrust().pools(opts.Roots, opts.ExcludeBuiltinRoots)
	dev := asCA(deviceCert)
	if _, err := dev.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: opts.Time,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return "", false, deviceChainError(dev, opts.Time, err)
	}
	exts, err := parsePIVExtensions(deviceCert.Extensions)
	if err != nil {
		return "", false, err
	}
	if exts.hasFirmware {
		firmware = exts.firmware.String()
	}
	return firmware, hasExtension(deviceCert, oidFIPSMarker), nil
}

func deviceChainError(dev *x509.Certificate, at time.Time, err error) error {
	var invalid x509.CertificateInvalidError
	if errors.As(err, &invalid) && invalid.Reason == x509.Expired {
		return fail(ErrExpired, err, "the key's device certificate (or its issuer) is not valid at %s", at.UTC().Format(time.RFC3339))
	}
	return fail(ErrUntrustedChain, err, "the key's device certificate (issued by %q) does not chain to a trusted root; it is not from a genuine YubiKey, or its CA (for firmware 5.7.4 and later, an intermediate) is not configured in attestation.piv_roots",
		dev.Issuer.CommonName)
}
