package attest

import (
	"bytes"
	"fmt"
	"sync"
)

// VersionRange is a span of firmware versions: Min included, Below
// excluded. The zero value is "unknown".
type VersionRange struct {
	Min, Below Version
}

// Known reports whether the range says anything.
func (r VersionRange) Known() bool { return r.Below != (Version{}) }

// String returns ">=5.2.0 <5.5.0", or "" when unknown.
func (r VersionRange) String() string {
	if !r.Known() {
		return ""
	}
	return fmt.Sprintf(">=%s <%s", r.Min, r.Below)
}

// YubicoAAGUID is one entry of the built-in table of Yubico FIDO2 AAGUIDs:
// the model an AAGUID names and, where one is known, the firmware range it
// was issued for. Yubico gives a model a new AAGUID with new firmware
// (with 5.2 and again with 5.7), so an AAGUID can pin the firmware of a
// key that reports none in its FIDO2 attestation.
type YubicoAAGUID struct {
	AAGUID string
	Model  string
	// Firmware is the range the AAGUID was issued for; zero when this table
	// does not know it (the AAGUID then decides no firmware advisory).
	Firmware VersionRange
}

// The table. Sources (where each fact comes from; no AAGUID is listed
// without one):
//
//	[D] Yubico's vendor metadata for its java-webauthn-server demo,
//	    testdata/attest/mds/yubico-java-webauthn-server-demo-metadata.json
//	    (Yubico/java-webauthn-server webauthn-server-demo/src/main/
//	    resources/metadata.json @ 0e71ebbf647e5a5a7876fff1801298a7f1670bc3,
//	    version 19): AAGUID (x509 extension 1.3.6.1.4.1.45724.1.1.4
//	    selector) → displayName. The model names below are its displayName.
//	[F] Yubico's support article "YubiKey Hardware FIDO2 AAGUIDs" (columns
//	    Product Name, Firmware, FIDO2 AAGUID), read in the copy kept at
//	    https://blog.workinghardinit.work/category/identity/ ("Yubikey FIDO2
//	    AAGUID lists"), as Yubico's page itself was not reachable offline.
//	    "5.2, 5.4" there is written >=5.2.0 <5.5.0 here.
//
// The FIDO conformance MDS3 blob in testdata/attest/mds holds only FAKE
// authenticators (no Yubico entry), so it contributes nothing here.
var yubicoAAGUIDs = []YubicoAAGUID{
	{"cb69481e-8ff7-4039-93ec-0a2729a154a8", "YubiKey 5 Series", VersionRange{Version{5, 1, 0}, Version{5, 2, 0}}},      // [D] [F] 5.1
	{"ee882879-721c-4913-9775-3dfcce97072a", "YubiKey 5 Series", VersionRange{Version{5, 2, 0}, Version{5, 5, 0}}},      // [D] [F] 5.2, 5.4
	{"fa2b99dc-9e39-4257-8f92-4a30d23c4118", "YubiKey 5 NFC", VersionRange{Version{5, 1, 0}, Version{5, 2, 0}}},         // [D] [F] 5.1
	{"2fc0579f-8113-47ea-b116-bb5a8db9202a", "YubiKey 5/5C NFC", VersionRange{Version{5, 2, 0}, Version{5, 5, 0}}},      // [D] [F] 5.2, 5.4
	{"c5ef55ff-ad9a-4b9f-b580-adebafe026d0", "YubiKey 5Ci", VersionRange{Version{5, 2, 0}, Version{5, 5, 0}}},           // [D] [F] 5.2, 5.4
	{"c1f9a0bc-1dd2-404a-b27f-8e29047a43fd", "YubiKey 5/5C NFC FIPS", VersionRange{Version{5, 4, 0}, Version{5, 5, 0}}}, // [D] [F] 5.4
	{"73bb0cd4-e502-49b8-9c6f-b59445bf720b", "YubiKey 5 FIPS series", VersionRange{Version{5, 4, 0}, Version{5, 5, 0}}}, // [D] [F] 5.4
	{"85203421-48f9-4355-9bc8-8a53846e5083", "YubiKey 5Ci FIPS", VersionRange{}},                                        // [D]; firmware not in [F]'s copy
	{"d8522d9f-575b-4866-88a9-ba99fa02f35b", "YubiKey Bio - FIDO Edition", VersionRange{}},                              // [D]; firmware not in [F]'s copy
	{"6d44ba9b-f6ec-2e49-b930-0c8fe920cb73", "Security Key NFC by Yubico", VersionRange{}},                              // [D]; firmware not in [F]'s copy
	{"149a2021-8ef6-4133-96b8-81f8d5b7f1f5", "Security Key NFC by Yubico", VersionRange{}},                              // [D]; firmware not in [F]'s copy
	{"a4e9fc6d-4cbe-4758-b8ba-37598bb5bbaa", "Security Key NFC by Yubico", VersionRange{}},                              // [D]; firmware not in [F]'s copy
	{"0bb43545-fd2c-4185-87dd-feb0b2916ace", "Security Key NFC by Yubico - Enterprise Edition", VersionRange{}},         // [D]; firmware not in [F]'s copy
	{"b92c3f9a-c014-4056-887f-140a2501163b", "Security Key by Yubico", VersionRange{}},                                  // [D]; firmware not in [F]'s copy
}

// KnownYubicoAAGUIDs returns a copy of the built-in AAGUID table.
func KnownYubicoAAGUIDs() []YubicoAAGUID {
	return append([]YubicoAAGUID(nil), yubicoAAGUIDs...)
}

var yubicoAAGUIDIndex = sync.OnceValue(func() map[string]YubicoAAGUID {
	m := make(map[string]YubicoAAGUID, len(yubicoAAGUIDs))
	for _, e := range yubicoAAGUIDs {
		m[e.AAGUID] = e
	}
	return m
})

// applyYubicoModel fills the model, firmware range and advisories of FIDO2
// evidence whose chain verified to one of Yubico's built-in roots. An
// AAGUID proves nothing unless Yubico's CA vouched for it, so evidence
// that chains to a configured root, or is unattested, is left alone.
func applyYubicoModel(ev *Evidence) {
	if !ev.AAGUIDAttested || !chainsToYubico(ev.Chain) {
		return
	}
	e, ok := yubicoAAGUIDIndex()[ev.AAGUID]
	if !ok {
		return
	}
	ev.Model = e.Model
	ev.FirmwareRange = e.Firmware.String()
	ev.Advisories = AdvisoriesFor(DeviceFacts{Vendor: vendorYubico, Model: e.Model, FirmwareRange: e.Firmware, KeyAlgorithm: ev.KeyAlgorithm})
}

// chainsToYubico reports whether a verified chain (root last) ends at one
// of Yubico's built-in FIDO roots.
func chainsToYubico(chain [][]byte) bool {
	if len(chain) == 0 {
		return false
	}
	root := chain[len(chain)-1]
	for _, c := range fidoTrust().roots {
		if bytes.Equal(c.Raw, root) {
			return true
		}
	}
	return false
}
