package fido2

import (
	"encoding/asn1"
	"fmt"
	"math/big"
	"strings"

	"github.com/keyfleet/keyfleet/attest"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// Yubico's extensions in FIDO attestation certificates.
var (
	// oidYubicoFirmware: the firmware version, an OCTET STRING of three
	// bytes (major, minor, patch).
	oidYubicoFirmware = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 13, 1}
	// oidYubicoSerial: the device serial, present only in enterprise
	// attestation certificates (YubiKey 5.7+).
	oidYubicoSerial = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 13, 2}
)

// deviceOf returns the physical key a credential lives on, or nil when
// the registration does not identify one. Only an attestation that
// chained to a trusted root is believed; only a serial makes a device
// (the core files devices by vendor and serial, and AAGUIDs are shared by
// a whole model), so plain batch attestation registers the credential
// without a device record.
func deviceOf(ev *attest.Evidence) *sdk.Device {
	if !ev.AAGUIDAttested {
		return nil
	}
	c := leaf(ev)
	if c == nil {
		return nil
	}
	serial, firmware := "", ""
	for _, e := range c.Extensions {
		switch {
		case e.Id.Equal(oidYubicoSerial):
			serial = parseSerial(e.Value)
		case e.Id.Equal(oidYubicoFirmware):
			firmware = parseFirmware(e.Value)
		}
	}
	if serial == "" {
		return nil
	}
	model := ev.Model
	if model == "" {
		model = "FIDO2 key (AAGUID " + ev.AAGUID + ")"
	}
	return &sdk.Device{Vendor: vendorName(ev.Vendor), Model: model, Serial: serial, Firmware: firmware}
}

// vendorName files a key under the name its PIV attestation uses, so that
// the PIV and FIDO2 applets of one YubiKey are one device. Yubico's FIDO
// attestation certificates say "Yubico AB" where its PIV ones say nothing
// and package attest reports "Yubico".
func vendorName(org string) string {
	if strings.HasPrefix(org, "Yubico") {
		return "Yubico"
	}
	return org
}

// parseSerial reads the serial extension. Hardware quirk: the encoding
// is a DER INTEGER on the keys whose certificates we have seen; an OCTET
// STRING holding a big-endian number is accepted too, as some tools
// describe it that way.
func parseSerial(v []byte) string {
	var n *big.Int
	if _, err := asn1.Unmarshal(v, &n); err == nil && n != nil && n.Sign() > 0 {
		return n.String()
	}
	var b []byte
	if _, err := asn1.Unmarshal(v, &b); err == nil && len(b) > 0 && len(b) <= 8 {
		return new(big.Int).SetBytes(b).String()
	}
	return ""
}

// parseFirmware reads the firmware extension: an OCTET STRING of three
// bytes, as the PIV attestation's 1.3.6.1.4.1.41482.3.3 but wrapped.
func parseFirmware(v []byte) string {
	var b []byte
	if _, err := asn1.Unmarshal(v, &b); err != nil || len(b) != 3 {
		return ""
	}
	return fmt.Sprintf("%d.%d.%d", b[0], b[1], b[2])
}
