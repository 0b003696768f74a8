package attest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Yubico's PIV attestation extensions, under 1.3.6.1.4.1.41482.3.
var (
	oidFirmware   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 3}  // 3 raw bytes
	oidSerial     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 7}  // DER INTEGER, slot cert only
	oidPolicy     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 8}  // PIN policy, touch policy bytes
	oidFormFactor = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 9}  // 1 byte, 0x80 = FIPS
	oidFIPSMarker = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 10} // on the F9 cert of FIPS devices
)

// slotCNPrefix starts the subject CN of every slot attestation certificate;
// the slot number follows in hex.
const slotCNPrefix = "YubiKey PIV Attestation "

// PIVOptions configure VerifyPIV and VerifyPIVCSR. The zero value is not
// usable: Time is required.
type PIVOptions struct {
	// Time is the verification time. Required: a zero Time returns
	// ErrInvalidOptions (the package never reads the clock).
	Time time.Time
	// Roots are extra trusted roots (a test CA, a virtual key's CA),
	// trusted in addition to Yubico's built-in roots. Nil means Yubico's
	// roots only.
	Roots []*x509.Certificate
	// ExcludeBuiltinRoots trusts Roots alone, without Yubico's roots.
	ExcludeBuiltinRoots bool
	// ExpectedPublicKey is the key the caller expects the slot to hold
	// (from the enrolment it is completing). A slot certificate for any
	// other key returns ErrKeyMismatch. Nil skips the check: only for
	// offline inspection, never for enrolment.
	ExpectedPublicKey crypto.PublicKey
}

// VerifyPIV verifies a YubiKey PIV attestation: the slot attestation
// certificate (from the attest command on a slot), signed by the F9 device
// attestation certificate, which chains to Yubico's roots (or opts.Roots)
// at opts.Time. It returns the facts the slot certificate attests.
//
// The device identity is the serial in the slot certificate. The F9
// certificate is never an identity: firmware 5.7.4+ devices can share
// byte-identical F9 certificates.
//
// Errors (all *Error): ErrInvalidOptions, ErrMalformed, ErrDeviceMismatch,
// ErrExpired, ErrUntrustedChain, ErrMissingExtension, ErrKeyMismatch.
func VerifyPIV(slotCert, deviceCert *x509.Certificate, opts PIVOptions) (*Evidence, error) {
	if opts.Time.IsZero() {
		return nil, fail(ErrInvalidOptions, nil, "no verification time was given")
	}
	if slotCert == nil || deviceCert == nil {
		return nil, fail(ErrMalformed, nil, "both the slot certificate and the device (F9) certificate are needed")
	}
	chain, err := verifyPIVChain(slotCert, deviceCert, opts)
	if err != nil {
		return nil, err
	}
	if err := checkExpectedKey(slotCert.PublicKey, opts.ExpectedPublicKey,
		"the slot certificate attests a different key than the one expected"); err != nil {
		return nil, err
	}
	ev, err := pivEvidence(slotCert, deviceCert)
	if err != nil {
		return nil, err
	}
	ev.Chain = chain
	return ev, nil
}

// verifyPIVChain checks slot → F9 → (intermediates) → root at opts.Time and
// returns the chain as DER, leaf first.
func verifyPIVChain(slot, device *x509.Certificate, opts PIVOptions) ([][]byte, error) {
	roots, inter := pivTrust().pools(opts.Roots, opts.ExcludeBuiltinRoots)
	dev := asCA(device)
	inter.AddCert(dev)
	chains, err := slot.Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, CurrentTime: opts.Time,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, pivChainError(slot, dev, opts.Time, err)
	}
	for _, c := range chains {
		// The path must run through the given F9 certificate, not around it.
		if len(c) >= 3 && c[1] == dev {
			return chainDER(c), nil
		}
	}
	return nil, fail(ErrDeviceMismatch, nil, "the slot certificate does not chain through the given device (F9) certificate")
}

// asCA returns the F9 certificate as a CA. YubiKey quirk: YubiKey 4 F9
// certificates carry no basicConstraints, which RFC 5280 §4.2.1.9 requires of
// an issuer; treat them as a CA (on a copy, never the caller's value).
func asCA(device *x509.Certificate) *x509.Certificate {
	if device.BasicConstraintsValid {
		return device
	}
	c := *device
	c.BasicConstraintsValid, c.IsCA = true, true
	c.MaxPathLen, c.MaxPathLenZero = 0, true
	return &c
}

// pivChainError turns an x509 failure into the reason a person can act on.
func pivChainError(slot, dev *x509.Certificate, at time.Time, err error) error {
	if sigErr := slot.CheckSignatureFrom(dev); sigErr != nil {
		return fail(ErrDeviceMismatch, sigErr, "the slot certificate was not signed by this device (F9) certificate: the two files come from different YubiKeys or were altered")
	}
	var invalid x509.CertificateInvalidError
	if errors.As(err, &invalid) && invalid.Reason == x509.Expired {
		return fail(ErrExpired, err, "a certificate of the chain (%s) is not valid at %s",
			invalid.Cert.Subject.CommonName, at.UTC().Format(time.RFC3339))
	}
	var unknown x509.UnknownAuthorityError
	if errors.As(err, &unknown) {
		return fail(ErrUntrustedChain, err, "the device certificate (issued by %q) does not chain to a trusted root; it is not from a genuine YubiKey or its CA is not configured",
			dev.Issuer.CommonName)
	}
	return fail(ErrUntrustedChain, err, "the attestation chain does not verify")
}

func chainDER(chain []*x509.Certificate) [][]byte {
	out := make([][]byte, len(chain))
	for i, c := range chain {
		out[i] = c.Raw
	}
	return out
}

// checkExpectedKey returns ErrKeyMismatch unless want is nil or equal to got.
func checkExpectedKey(got, want crypto.PublicKey, detail string) error {
	if want == nil {
		return nil
	}
	k, ok := got.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !k.Equal(want) {
		return fail(ErrKeyMismatch, nil, "%s", detail)
	}
	return nil
}

// pivEvidence reads the Yubico extensions of a verified pair.
func pivEvidence(slot, device *x509.Certificate) (*Evidence, error) {
	ext, err := parsePIVExtensions(slot.Extensions)
	if err != nil {
		return nil, err
	}
	if !ext.hasFirmware {
		return nil, fail(ErrMissingExtension, nil, "the slot certificate has no firmware version extension (1.3.6.1.4.1.41482.3.3)")
	}
	if !ext.hasPolicy {
		return nil, fail(ErrMissingExtension, nil, "the slot certificate has no PIN/touch policy extension (1.3.6.1.4.1.41482.3.8)")
	}
	alg, err := keyAlgorithm(slot.PublicKey)
	if err != nil {
		return nil, err
	}
	ev := &Evidence{
		Format: "piv", Vendor: VendorYubico, Serial: ext.serial,
		Firmware:    ext.firmware.String(),
		FIPS:        ext.formFactor&0x80 != 0 || hasExtension(device, oidFIPSMarker),
		PINPolicy:   policyName(pinPolicyNames, ext.policy[0]),
		TouchPolicy: policyName(touchPolicyNames, ext.policy[1]),
		Slot:        slotName(slot.Subject.CommonName),
		// A PIV slot certificate is signed by a key unique to the device,
		// certified by Yubico: attestation CA, in WebAuthn §6.5.4 terms.
		AttestationType: AttestationCA,
		KeyAlgorithm:    alg,
		PublicKey:       slot.RawSubjectPublicKeyInfo,
	}
	if ext.hasFormFactor {
		ev.FormFactor = FormFactorName(ext.formFactor)
	}
	ev.Model = YubiKeyModel(ext.firmware, ext.formFactor, ev.FIPS)
	ev.Advisories = AdvisoriesFor(DeviceFacts{Vendor: VendorYubico, Firmware: ext.firmware,
		FormFactor: ext.formFactor, KeyAlgorithm: alg})
	return ev, nil
}

type pivExtensions struct {
	firmware                              Version
	serial                                uint32
	policy                                [2]byte
	formFactor                            byte
	hasFirmware, hasPolicy, hasFormFactor bool
}

// parsePIVExtensions decodes Yubico's extensions from a slot certificate.
// It parses untrusted bytes; errors wrap ErrMalformed.
func parsePIVExtensions(exts []pkix.Extension) (pivExtensions, error) {
	var p pivExtensions
	for _, e := range exts {
		switch {
		case e.Id.Equal(oidFirmware):
			if len(e.Value) != 3 {
				return p, fail(ErrMalformed, nil, "the firmware version extension holds %d bytes, expected 3", len(e.Value))
			}
			p.firmware = Version{int(e.Value[0]), int(e.Value[1]), int(e.Value[2])}
			p.hasFirmware = true
		case e.Id.Equal(oidSerial):
			s, err := parseSerial(e.Value)
			if err != nil {
				return p, err
			}
			p.serial = s
		case e.Id.Equal(oidPolicy):
			if len(e.Value) != 2 {
				return p, fail(ErrMalformed, nil, "the PIN/touch policy extension holds %d bytes, expected 2", len(e.Value))
			}
			p.policy, p.hasPolicy = [2]byte{e.Value[0], e.Value[1]}, true
		case e.Id.Equal(oidFormFactor):
			if len(e.Value) != 1 {
				return p, fail(ErrMalformed, nil, "the form factor extension holds %d bytes, expected 1", len(e.Value))
			}
			p.formFactor, p.hasFormFactor = e.Value[0], true
		}
	}
	return p, nil
}

func parseSerial(der []byte) (uint32, error) {
	var serial int64
	rest, err := asn1.Unmarshal(der, &serial)
	if err != nil || len(rest) != 0 {
		return 0, fail(ErrMalformed, err, "the serial number extension is not a DER INTEGER")
	}
	if serial < 0 || serial > 0xffffffff {
		return 0, fail(ErrMalformed, nil, "the serial number %d is out of range", serial)
	}
	return uint32(serial), nil
}

func hasExtension(c *x509.Certificate, oid asn1.ObjectIdentifier) bool {
	for _, e := range c.Extensions {
		if e.Id.Equal(oid) {
			return true
		}
	}
	return false
}

// slotName returns the slot ("9a") from "YubiKey PIV Attestation 9a", or ""
// when the CN does not name a slot.
func slotName(cn string) string {
	s, ok := strings.CutPrefix(cn, slotCNPrefix)
	if !ok {
		return ""
	}
	if n, err := strconv.ParseUint(s, 16, 8); err != nil || len(s) != 2 {
		return ""
	} else {
		return fmt.Sprintf("%02x", n)
	}
}

// YubiKeyModel names a YubiKey's model line ("YubiKey 5", "YubiKey Bio",
// "YubiKey 5 FIPS") from its firmware and form factor byte (0 when
// unknown) as Evidence.Model does: the name policy min_firmware keys on.
func YubiKeyModel(fw Version, formFactor byte, fips bool) string {
	name := fmt.Sprintf("YubiKey %d", fw.Major)
	if fw.Major == 5 && isBio(formFactor) {
		name = "YubiKey Bio"
	}
	if fips {
		name += " FIPS"
	}
	return name
}

// keyAlgorithm names a public key as Evidence.KeyAlgorithm does.
func keyAlgorithm(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA-%d", k.N.BitLen()), nil
	case *ecdsa.PublicKey:
		return "EC-" + strings.ReplaceAll(k.Curve.Params().Name, "-", ""), nil
	case ed25519.PublicKey:
		return "Ed25519", nil
	}
	return "", fail(ErrMalformed, nil, "the attested key has an unsupported type %T", pub)
}
