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
	// Sources are the letters of the sources below the entry comes from.
	Sources string
}

// The table: every Yubico AAGUID current when it was last checked. Sources
// (where each fact comes from; no AAGUID is listed without one):
//
//	[D] Yubico's vendor metadata for its java-webauthn-server demo,
//	    testdata/attest/mds/yubico-java-webauthn-server-demo-metadata.json
//	    (Yubico/java-webauthn-server webauthn-server-demo/src/main/
//	    resources/metadata.json @ 0e71ebbf647e5a5a7876fff1801298a7f1670bc3,
//	    version 19): AAGUID (x509 extension 1.3.6.1.4.1.45724.1.1.4
//	    selector) → displayName. Entries from [D] keep its displayName.
//	[F] Yubico's support article "YubiKey Hardware FIDO2 AAGUIDs" (columns
//	    Product Name, Firmware, FIDO2 AAGUID), read in the copy kept at
//	    https://blog.workinghardinit.work/category/identity/ ("Yubikey FIDO2
//	    AAGUID lists"); that copy predates firmware 5.7.
//	[J] The YubiKey AAGUID list (model, firmware, AAGUID, FIDO
//	    certification level) at JMarkstrom/aaguids aaguids.csv @
//	    74945e43c4f53ce222d3c497fb7dfcc2f3c7f0a0 (2025-11-08), which follows
//	    the same Yubico article with the 5.7 keys. "5.2 / 5.4" there is
//	    written >=5.2.0 <5.5.0 here, "5.7" >=5.7.0 <5.8.0.
//	[M] The FIDO Metadata Service's names, as passkeydeveloper/
//	    passkey-authenticator-aaguids publishes them (combined_aaguid.json,
//	    dist/<aaguid>/meta.json @ b976141b732e0ded22d4dca0a505660eac3fa1d6).
//	    Entries not in [D] take their model name from [M]. The "Preview"
//	    AAGUIDs (pre-release firmware) are in [M] only: no firmware.
//
// The FIDO conformance MDS3 blob in testdata/attest/mds holds only FAKE
// authenticators (no Yubico entry), so it contributes nothing here.
var yubicoAAGUIDs = []YubicoAAGUID{
	{"f8a011f3-8c0a-4d15-8006-17111f9edc7d", "Security Key by Yubico", VersionRange{Version{5, 1, 0}, Version{5, 2, 0}}, "MJ"},                                               // [J] 5.1
	{"b92c3f9a-c014-4056-887f-140a2501163b", "Security Key by Yubico", VersionRange{Version{5, 2, 0}, Version{5, 5, 0}}, "DJ"},                                               // [J] 5.2 / 5.4
	{"6d44ba9b-f6ec-2e49-b930-0c8fe920cb73", "Security Key NFC by Yubico", VersionRange{Version{5, 1, 0}, Version{5, 2, 0}}, "DJ"},                                           // [J] 5.1
	{"149a2021-8ef6-4133-96b8-81f8d5b7f1f5", "Security Key NFC by Yubico", VersionRange{Version{5, 2, 0}, Version{5, 5, 0}}, "DJ"},                                           // [J] 5.2 / 5.4
	{"a4e9fc6d-4cbe-4758-b8ba-37598bb5bbaa", "Security Key NFC by Yubico", VersionRange{Version{5, 4, 0}, Version{5, 5, 0}}, "DJ"},                                           // [J] 5.4
	{"b7d3f68e-88a6-471e-9ecf-2df26d041ede", "Security Key NFC by Yubico", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"},                                           // [J] 5.7
	{"e77e3c64-05e3-428b-8824-0cbeb04b829d", "Security Key NFC by Yubico", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"},                                           // [J] 5.7
	{"0bb43545-fd2c-4185-87dd-feb0b2916ace", "Security Key NFC by Yubico - Enterprise Edition", VersionRange{Version{5, 4, 0}, Version{5, 5, 0}}, "DJ"},                      // [J] 5.4
	{"47ab2fb4-66ac-4184-9ae1-86be814012d5", "Security Key NFC by Yubico - Enterprise Edition", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"},                      // [J] 5.7
	{"ed042a3a-4b22-4455-bb69-a267b652ae7e", "Security Key NFC by Yubico - Enterprise Edition", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"},                      // [J] 5.7
	{"72c6b72d-8512-4c66-8359-9d3d10d9222f", "Security Key NFC by Yubico - Enterprise Edition (Enterprise Profile)", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"}, // [J] 5.7
	{"9ff4cc65-6154-4fff-ba09-9e2af7882ad2", "Security Key NFC by Yubico - Enterprise Edition (Enterprise Profile)", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"}, // [J] 5.7
	{"2772ce93-eb4b-4090-8b73-330f48477d73", "Security Key NFC by Yubico - Enterprise Edition Preview", VersionRange{}, "M"},                                                 // firmware not in [J]
	{"760eda36-00aa-4d29-855b-4012a182cdeb", "Security Key NFC by Yubico Preview", VersionRange{}, "M"},                                                                      // firmware not in [J]
	{"73bb0cd4-e502-49b8-9c6f-b59445bf720b", "YubiKey 5 FIPS series", VersionRange{Version{5, 4, 0}, Version{5, 5, 0}}, "DFJ"},                                               // [J] 5.4
	{"57f7de54-c807-4eab-b1c6-1c9be7984e92", "YubiKey 5 FIPS Series", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"},                                                // [J] 5.7
	{"905b4cb4-ed6f-4da9-92fc-45e0d4e9b5c7", "YubiKey 5 FIPS Series (Enterprise Profile)", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"},                           // [J] 5.7
	{"7b96457d-e3cd-432b-9ceb-c9fdd7ef7432", "YubiKey 5 FIPS Series with Lightning", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"},                                 // [J] 5.7
	{"3a662962-c6d4-4023-bebb-98ae92e78e20", "YubiKey 5 FIPS Series with Lightning (Enterprise Profile)", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"},            // [J] 5.7
	{"5b0e46ba-db02-44ac-b979-ca9b84f5e335", "YubiKey 5 FIPS Series with Lightning Preview", VersionRange{}, "M"},                                                            // firmware not in [J]
	{"fcc0118f-cd45-435b-8da1-9782b2da0715", "YubiKey 5 FIPS Series with NFC", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"},                                       // [J] 5.7
	{"79f3c8ba-9e35-484b-8f47-53a5a0f5c630", "YubiKey 5 FIPS Series with NFC (Enterprise Profile)", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"},                  // [J] 5.7
	{"62e54e98-c209-4df3-b692-de71bb6a8528", "YubiKey 5 FIPS Series with NFC Preview", VersionRange{}, "M"},                                                                  // firmware not in [J]
	{"fa2b99dc-9e39-4257-8f92-4a30d23c4118", "YubiKey 5 NFC", VersionRange{Version{5, 1, 0}, Version{5, 2, 0}}, "DFJ"},                                                       // [J] 5.1
	{"cb69481e-8ff7-4039-93ec-0a2729a154a8", "YubiKey 5 Series", VersionRange{Version{5, 1, 0}, Version{5, 2, 0}}, "DFJ"},                                                    // [J] 5.1
	{"ee882879-721c-4913-9775-3dfcce97072a", "YubiKey 5 Series", VersionRange{Version{5, 2, 0}, Version{5, 5, 0}}, "DFJ"},                                                    // [J] 5.2 / 5.4, 5.4
	{"19083c3d-8383-4b18-bc03-8f1c9ab2fd1b", "YubiKey 5 Series", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"},                                                     // [J] 5.7
	{"ff4dac45-ede8-4ec2-aced-cf66103f4335", "YubiKey 5 Series", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"},                                                     // [J] 5.7
	{"20ac7a17-c814-4833-93fe-539f0d5e3389", "YubiKey 5 Series (Enterprise Profile)", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"},                                // [J] 5.7
	{"4599062e-6926-4fe7-9566-9e8fb1aedaa0", "YubiKey 5 Series (Enterprise Profile)", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"},                                // [J] 5.7
	{"24673149-6c86-42e7-98d9-433fb5b73296", "YubiKey 5 Series with Lightning", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"},                                      // [J] 5.7
	{"a02167b9-ae71-4ac7-9a07-06432ebb6f1c", "YubiKey 5 Series with Lightning", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"},                                      // [J] 5.7
	{"3b24bf49-1d45-4484-a917-13175df0867b", "YubiKey 5 Series with Lightning (Enterprise Profile)", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"},                 // [J] 5.7
	{"b90e7dc1-316e-4fee-a25a-56a666a670fe", "YubiKey 5 Series with Lightning (Enterprise Profile)", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"},                 // [J] 5.7
	{"3124e301-f14e-4e38-876d-fbeeb090e7bf", "YubiKey 5 Series with Lightning Preview", VersionRange{}, "M"},                                                                 // firmware not in [J]
	{"a25342c0-3cdc-4414-8e46-f4807fca511c", "YubiKey 5 Series with NFC", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"},                                            // [J] 5.7
	{"d7781e5d-e353-46aa-afe2-3ca49f13332a", "YubiKey 5 Series with NFC", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"},                                            // [J] 5.7
	{"1ac71f64-468d-4fe0-bef1-0e5f2f551f18", "YubiKey 5 Series with NFC (Enterprise Profile)", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"},                       // [J] 5.7
	{"6ab56fad-881f-4a43-acb2-0be065924522", "YubiKey 5 Series with NFC (Enterprise Profile)", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"},                       // [J] 5.7 (also listed there under Security Key NFC Enterprise Ed.; [M] names the YubiKey 5)
	{"662ef48a-95e2-4aaa-a6c1-5b9c40375824", "YubiKey 5 Series with NFC - Enhanced PIN", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"},                             // [J] 5.7
	{"34f5766d-1536-4a24-9033-0e294e510fb0", "YubiKey 5 Series with NFC Preview", VersionRange{}, "M"},                                                                       // firmware not in [J]
	{"2fc0579f-8113-47ea-b116-bb5a8db9202a", "YubiKey 5/5C NFC", VersionRange{Version{5, 2, 0}, Version{5, 5, 0}}, "DFJ"},                                                    // [J] 5.2 / 5.4, 5.4
	{"c1f9a0bc-1dd2-404a-b27f-8e29047a43fd", "YubiKey 5/5C NFC FIPS", VersionRange{Version{5, 4, 0}, Version{5, 5, 0}}, "DFJ"},                                               // [J] 5.4
	{"c5ef55ff-ad9a-4b9f-b580-adebafe026d0", "YubiKey 5Ci", VersionRange{Version{5, 2, 0}, Version{5, 5, 0}}, "DFJ"},                                                         // [J] 5.2 / 5.4, 5.4
	{"85203421-48f9-4355-9bc8-8a53846e5083", "YubiKey 5Ci FIPS", VersionRange{Version{5, 4, 0}, Version{5, 5, 0}}, "DJ"},                                                     // [J] 5.4
	{"d8522d9f-575b-4866-88a9-ba99fa02f35b", "YubiKey Bio - FIDO Edition", VersionRange{Version{5, 5, 0}, Version{5, 7, 0}}, "DJ"},                                           // [J] 5.5 / 5.6
	{"dd86a2da-86a0-4cbe-b462-4bd31f57bc6f", "YubiKey Bio FIDO Edition", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"},                                             // [J] 5.7
	{"83c47309-aabb-4108-8470-8be838b573cb", "YubiKey Bio Series (Enterprise Profile)", VersionRange{Version{5, 6, 0}, Version{5, 7, 0}}, "MJ"},                              // [J] 5.6
	{"8c39ee86-7f9a-4a95-9ba3-f6b097e5c2ee", "YubiKey Bio Series (Enterprise Profile)", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"},                              // [J] 5.7
	{"7409272d-1ff9-4e10-9fc9-ac0019c124fd", "YubiKey Bio Series - FIDO Edition", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"},                                    // [J] 5.7
	{"ad08c78a-4e41-49b9-86a2-ac15b06899e2", "YubiKey Bio Series - FIDO Edition (Enterprise Profile)", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"},               // [J] 5.7
	{"7d1351a6-e097-4852-b8bf-c9ac5c9ce4a3", "YubiKey Bio Series - Multi-protocol Edition", VersionRange{Version{5, 6, 0}, Version{5, 7, 0}}, "MJ"},                          // [J] 5.6
	{"34744913-4f57-4e6e-a527-e9ec3c4b94e6", "YubiKey Bio Series - Multi-protocol Edition", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"},                          // [J] 5.7
	{"90636e1f-ef82-43bf-bdcf-5255f139d12f", "YubiKey Bio Series - Multi-protocol Edition", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"},                          // [J] 5.7
	{"6ec5cff2-a0f9-4169-945b-f33b563f7b99", "YubiKey Bio Series - Multi-protocol Edition (Enterprise Profile)", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"},     // [J] 5.7
	{"97e6a830-c952-4740-95fc-7c78dc97ce47", "YubiKey Bio Series - Multi-protocol Edition (Enterprise Profile)", VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}, "MJ"},     // [J] 5.7
	{"58276709-bb4b-4bb3-baf1-60eea99282a7", "YubiKey Bio Series - Multi-protocol Edition 1VDJSN", VersionRange{}, "M"},                                                      // firmware not in [J]
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
	ev.Advisories = AdvisoriesFor(DeviceFacts{Vendor: VendorYubico, Model: e.Model, FirmwareRange: e.Firmware, KeyAlgorithm: ev.KeyAlgorithm})
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
