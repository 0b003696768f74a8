package attest

import (
	"crypto/x509"
	"slices"
)

// u2fBadPaddingSubjects are the Yubico U2F attestation certificates known
// to encode their signature BIT STRING with a non-zero "unused bits" byte.
// YubiKey quirk: these early U2F devices (2014) shipped the flaw in
// hardware; Yubico's own verifiers repair the byte, and so do we, only for
// these subjects.
var u2fBadPaddingSubjects = []string{
	"Yubico U2F EE Serial 776137165",
	"Yubico U2F EE Serial 1086591525",
	"Yubico U2F EE Serial 1973679733",
	"Yubico U2F EE Serial 13503277888",
	"Yubico U2F EE Serial 13831167861",
	"Yubico U2F EE Serial 14803321578",
}

// u2fSigBitStringHeader precedes the 256-byte RSA signature at the end of
// those certificates: BIT STRING, long length 0x0101, then the unused-bits
// byte.
var u2fSigBitStringHeader = []byte{0x03, 0x82, 0x01, 0x01}

// parseU2FCertificate parses a fido-u2f attestation certificate, repairing
// the signature padding byte of the known-bad Yubico certificates. The
// repaired certificate is used (and reported) only when its subject is on
// the list; any other certificate is parsed as it is.
func parseU2FCertificate(der []byte) (*x509.Certificate, error) {
	c, err := x509.ParseCertificate(der)
	if err == nil && !slices.Contains(u2fBadPaddingSubjects, c.Subject.CommonName) {
		return c, nil
	}
	fixed, ok := fixU2FSignaturePadding(der)
	if !ok {
		return c, err
	}
	f, ferr := x509.ParseCertificate(fixed)
	if ferr != nil || !slices.Contains(u2fBadPaddingSubjects, f.Subject.CommonName) {
		return c, err
	}
	return f, nil
}

// fixU2FSignaturePadding returns a copy of der with the signature's
// unused-bits byte (257 bytes from the end) set to zero, or false when the
// certificate does not end in a 2048-bit signature BIT STRING with a
// non-zero padding byte.
func fixU2FSignaturePadding(der []byte) ([]byte, bool) {
	const fromEnd = 257
	if len(der) < fromEnd+len(u2fSigBitStringHeader) {
		return nil, false
	}
	i := len(der) - fromEnd
	if der[i] == 0 || !slices.Equal(der[i-len(u2fSigBitStringHeader):i], u2fSigBitStringHeader) {
		return nil, false
	}
	fixed := slices.Clone(der)
	fixed[i] = 0
	return fixed, true
}
