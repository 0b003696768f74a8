package attest

import (
	"fmt"
	"strconv"
	"strings"
)

// Evidence is what a verified attestation proves about a key and the device
// that holds it. It marshals to JSON deterministically (no maps; Chain and
// Advisories in a fixed order) and holds no secrets: only public keys,
// certificates and facts printed in them.
//
// Fields that do not apply to a format are left zero and omitted from JSON.
type Evidence struct {
	// Format is "piv" or the WebAuthn attestation statement format
	// ("packed", "fido-u2f", "tpm", "android-key", "android-safetynet",
	// "apple", "none").
	Format string `json:"format"`

	// The device. For PIV these come from the slot certificate; never from
	// the F9 certificate, which several devices can share.
	Vendor   string `json:"vendor,omitempty"`
	Model    string `json:"model,omitempty"`    // model line, e.g. "YubiKey 5", "YubiKey 5 FIPS"
	Serial   uint32 `json:"serial,omitempty"`   // device serial; 0 when the device does not attest one
	Firmware string `json:"firmware,omitempty"` // "5.7.4"
	// FirmwareRange is set instead of Firmware when only a range is known:
	// FIDO2 evidence whose AAGUID pins one (">=5.2.0 <5.5.0").
	FirmwareRange string `json:"firmware_range,omitempty"`
	FormFactor    string `json:"form_factor,omitempty"` // "USB-C Nano"; empty when not attested
	FIPS          bool   `json:"fips"`                  // a FIPS-series device

	// The PIV slot and its policies.
	PINPolicy   string `json:"pin_policy,omitempty"`   // never, once, always, match-once, match-always
	TouchPolicy string `json:"touch_policy,omitempty"` // never, always, cached
	Slot        string `json:"slot,omitempty"`         // "9a", "9c", ...

	// The attested key.
	KeyAlgorithm string `json:"key_algorithm"` // "RSA-2048", "EC-P256", "EC-P384", "Ed25519"
	PublicKey    []byte `json:"public_key"`    // DER SubjectPublicKeyInfo

	// FIDO2 / WebAuthn.
	AAGUID          string `json:"aaguid,omitempty"`
	AAGUIDAttested  bool   `json:"aaguid_attested"` // true only when a full chain to a trusted root verified
	AttestationType string `json:"attestation_type"`
	CredentialID    []byte `json:"credential_id,omitempty"`
	Flags           *Flags `json:"flags,omitempty"`
	SignCount       uint32 `json:"sign_count,omitempty"`

	// Chain is the verified chain, leaf first, as DER certificates, root
	// last. Empty for self and none attestation.
	Chain [][]byte `json:"chain,omitempty"`

	// Advisories lists known vulnerabilities of this hardware, by ID.
	Advisories []Advisory `json:"advisories,omitempty"`
}

// Attestation types, as WebAuthn §6.5.4 names them.
const (
	AttestationBasic = "basic" // a batch attestation key (shared by many devices)
	AttestationCA    = "attca" // a device-specific key certified by the vendor's CA
	AttestationSelf  = "self"  // signed by the credential key itself: proves nothing about the device
	AttestationNone  = "none"  // no attestation
)

// Flags are the authenticator data flags a policy may care about
// (WebAuthn §6.1).
type Flags struct {
	UserPresent    bool `json:"up"`
	UserVerified   bool `json:"uv"`
	BackupEligible bool `json:"be"` // a synced (multi-device) passkey may be
	BackupState    bool `json:"bs"` // the credential is backed up now
}

// Version is a firmware version.
type Version struct {
	Major, Minor, Patch int
}

// String returns "major.minor.patch".
func (v Version) String() string {
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
}

// Less reports whether v is older than w.
func (v Version) Less(w Version) bool {
	if v.Major != w.Major {
		return v.Major < w.Major
	}
	if v.Minor != w.Minor {
		return v.Minor < w.Minor
	}
	return v.Patch < w.Patch
}

// ParseVersion parses "5.7.4" (as in Evidence.Firmware).
func ParseVersion(s string) (Version, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return Version{}, fail(ErrMalformed, nil, "firmware version %q is not of the form major.minor.patch", s)
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 || v > 255 {
			return Version{}, fail(ErrMalformed, err, "firmware version %q has a bad number %q", s, p)
		}
		n[i] = v
	}
	return Version{n[0], n[1], n[2]}, nil
}

// formFactorNames maps the YubiKey form factor byte (FIPS bit cleared) to
// its name, as the management application reports it.
var formFactorNames = map[byte]string{
	0x01: "USB-A Keychain",
	0x02: "USB-A Nano",
	0x03: "USB-C Keychain",
	0x04: "USB-C Nano",
	0x05: "USB-C/Lightning Keychain",
	0x06: "USB-A Bio Keychain",
	0x07: "USB-C Bio Keychain",
}

// FormFactorName names a YubiKey form factor byte. The FIPS bit (0x80) is
// ignored here (see Evidence.FIPS); unknown values are named
// "unknown (0xNN)" rather than rejected, so newer devices still verify.
func FormFactorName(b byte) string {
	if name, ok := formFactorNames[b&0x7f]; ok {
		return name
	}
	return fmt.Sprintf("unknown (0x%02x)", b)
}

func isBio(formFactor byte) bool {
	ff := formFactor & 0x7f
	return ff == 0x06 || ff == 0x07
}

var pinPolicyNames = map[byte]string{1: "never", 2: "once", 3: "always", 4: "match-once", 5: "match-always"}
var touchPolicyNames = map[byte]string{1: "never", 2: "always", 3: "cached"}

func policyName(names map[byte]string, b byte) string {
	if name, ok := names[b]; ok {
		return name
	}
	return fmt.Sprintf("unknown (0x%02x)", b)
}
