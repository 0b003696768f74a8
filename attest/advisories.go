package attest

import (
	"slices"
	"strings"
)

// Advisory names a published vulnerability that affects the attested
// hardware. attest only reports advisories; policy decides what to do.
type Advisory struct {
	ID      string `json:"id"`
	Summary string `json:"summary"`
}

// AdvisoryRule is one entry of the built-in table of vulnerable hardware:
// the advisory, where it is published, and which devices it affects.
type AdvisoryRule struct {
	Advisory
	URL string
	// Affected says in words which devices are affected.
	Affected string
	// affects decides from the device facts.
	affects func(DeviceFacts) bool
}

// Affects reports whether the rule applies to the device.
func (r AdvisoryRule) Affects(d DeviceFacts) bool { return r.affects(d) }

// DeviceFacts are the attested facts the advisory table is matched on.
type DeviceFacts struct {
	Vendor string
	// Model is Evidence.Model ("YubiKey Bio - FIDO Edition"); may be empty.
	Model string
	// Firmware is the exact firmware; zero when unknown.
	Firmware Version
	// FirmwareRange bounds the firmware when the exact version is unknown
	// (FIDO2: the AAGUID pins a range). A rule matches on a range only when
	// every version in it is affected; a range that straddles a fix decides
	// nothing.
	FirmwareRange VersionRange
	FormFactor    byte // YubiKey form factor byte; 0 when unknown
	// KeyAlgorithm is Evidence.KeyAlgorithm of a key generated on the device.
	KeyAlgorithm string
}

// The built-in table. Sources: Yubico Security Advisories YSA-2024-03 and
// YSA-2017-01 (https://www.yubico.com/support/security-advisories/).
var advisoryRules = []AdvisoryRule{
	{
		Advisory: Advisory{
			ID:      "YSA-2024-03",
			Summary: "EUCLEAK: a side channel in Infineon's ECDSA code lets an attacker with the key in hand and lab equipment recover ECDSA private keys",
		},
		URL:      "https://www.yubico.com/support/security-advisories/ysa-2024-03/",
		Affected: "YubiKey 5 series (including FIPS and CSPN) and Security Key series below firmware 5.7.0; YubiKey Bio series below 5.7.2",
		affects: func(d DeviceFacts) bool {
			if d.Vendor != VendorYubico || d.major() != 5 {
				return false
			}
			if isBio(d.FormFactor) || strings.HasPrefix(d.Model, "YubiKey Bio") {
				return d.firmwareBelow(Version{5, 7, 2})
			}
			return d.firmwareBelow(Version{5, 7, 0})
		},
	},
	{
		Advisory: Advisory{
			ID:      "YSA-2017-01",
			Summary: "ROCA: RSA keys generated on the device by Infineon's library can be factored from the public key",
		},
		URL:      "https://www.yubico.com/support/security-advisories/ysa-2017-01/",
		Affected: "YubiKey 4, 4 Nano and 4C with firmware 4.2.6 to 4.3.4, for RSA keys generated on the device",
		affects: func(d DeviceFacts) bool {
			return d.Vendor == VendorYubico &&
				!d.Firmware.Less(Version{4, 2, 6}) && !(Version{4, 3, 4}).Less(d.Firmware) &&
				len(d.KeyAlgorithm) > 4 && d.KeyAlgorithm[:4] == "RSA-"
		},
	},
}

// major is the firmware's major version, exact or from the range; 0 when
// unknown.
func (d DeviceFacts) major() int {
	if d.Firmware != (Version{}) {
		return d.Firmware.Major
	}
	if d.FirmwareRange.Known() && d.FirmwareRange.Min.Major == d.FirmwareRange.Below.Major {
		return d.FirmwareRange.Min.Major
	}
	return 0
}

// firmwareBelow reports whether the firmware is certainly older than v: the
// exact version when known, else the whole range.
func (d DeviceFacts) firmwareBelow(v Version) bool {
	if d.Firmware != (Version{}) {
		return d.Firmware.Less(v)
	}
	return d.FirmwareRange.Known() && !v.Less(d.FirmwareRange.Below)
}

// KnownAdvisories returns a copy of the built-in advisory table.
func KnownAdvisories() []AdvisoryRule {
	return slices.Clone(advisoryRules)
}

// AdvisoriesFor returns the advisories that affect a device, sorted by ID,
// or nil when none does.
func AdvisoriesFor(d DeviceFacts) []Advisory {
	var out []Advisory
	for _, r := range advisoryRules {
		if r.affects(d) {
			out = append(out, r.Advisory)
		}
	}
	slices.SortFunc(out, func(a, b Advisory) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}
