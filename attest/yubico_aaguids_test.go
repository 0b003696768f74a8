package attest

import (
	"crypto/x509"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/attest/attesttest"
)

func TestVerifyFIDO2NamesYubicoModelsAndTheirAdvisories(t *testing.T) {
	tests := []struct {
		file, model, firmware string
		advisories            []string
	}{
		// YubiKey 5Ci, an AAGUID Yubico issued for firmware 5.2 and 5.4: EUCLEAK.
		{"py_webauthn/reg_packed__verify_attestation_with_okp_public_key.json", "YubiKey 5Ci", ">=5.2.0 <5.5.0", []string{"YSA-2024-03"}},
		// Security Key NFC, the AAGUID of firmware 5.1: EUCLEAK too.
		{"py_webauthn/reg_packed__verify_attestation_from_yubikey_firefox.json", "Security Key NFC by Yubico", ">=5.1.0 <5.2.0", []string{"YSA-2024-03"}},
		{"simplewebauthn/verifyRegistrationResponse__should_verify_packed_x5c_attestation.json", "Security Key NFC by Yubico", ">=5.1.0 <5.2.0", []string{"YSA-2024-03"}},
		// A U2F registration carries a zero AAGUID: no model.
		{"py_webauthn/reg_fido_u2f__verify_attestation_from_yubikey_firefox.json", "", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			reg, exp := loadWebAuthnVector(t, webauthnVector{file: tc.file})
			ev, err := VerifyFIDO2(reg.AttestationObject, reg.ClientDataJSON, exp)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, a := range ev.Advisories {
				ids = append(ids, a.ID)
			}
			if ev.Model != tc.model || ev.FirmwareRange != tc.firmware || !slices.Equal(ids, tc.advisories) {
				t.Fatalf("model %q firmware %q advisories %v, want %q %q %v", ev.Model, ev.FirmwareRange, ids, tc.model, tc.firmware, tc.advisories)
			}
		})
	}
}

// TestTheTableKnowsEveryCurrentYubicoKey: the AAGUIDs a person meets on
// keys bought today, with the model and firmware a relying party sees.
func TestTheTableKnowsEveryCurrentYubicoKey(t *testing.T) {
	tests := []struct {
		aaguid, model, firmware string
		eucleak                 bool
	}{
		{"f8a011f3-8c0a-4d15-8006-17111f9edc7d", "Security Key by Yubico", ">=5.1.0 <5.2.0", true},
		{"b92c3f9a-c014-4056-887f-140a2501163b", "Security Key by Yubico", ">=5.2.0 <5.5.0", true},
		{"a25342c0-3cdc-4414-8e46-f4807fca511c", "YubiKey 5 Series with NFC", ">=5.7.0 <5.8.0", false},
		{"19083c3d-8383-4b18-bc03-8f1c9ab2fd1b", "YubiKey 5 Series", ">=5.7.0 <5.8.0", false},
		{"e77e3c64-05e3-428b-8824-0cbeb04b829d", "Security Key NFC by Yubico", ">=5.7.0 <5.8.0", false},
		{"662ef48a-95e2-4aaa-a6c1-5b9c40375824", "YubiKey 5 Series with NFC - Enhanced PIN", ">=5.7.0 <5.8.0", false},
		// A Bio key's 5.7 range straddles the 5.7.2 fix: no verdict.
		{"dd86a2da-86a0-4cbe-b462-4bd31f57bc6f", "YubiKey Bio FIDO Edition", ">=5.7.0 <5.8.0", false},
		{"d8522d9f-575b-4866-88a9-ba99fa02f35b", "YubiKey Bio - FIDO Edition", ">=5.5.0 <5.7.0", true},
	}
	for _, tc := range tests {
		t.Run(tc.model+" "+tc.aaguid, func(t *testing.T) {
			e, ok := yubicoAAGUIDIndex()[tc.aaguid]
			if !ok || e.Model != tc.model || e.Firmware.String() != tc.firmware {
				t.Fatalf("entry %+v (%v)", e, ok)
			}
			adv := AdvisoriesFor(DeviceFacts{Vendor: VendorYubico, Model: e.Model, FirmwareRange: e.Firmware})
			if got := len(adv) == 1 && adv[0].ID == "YSA-2024-03"; got != tc.eucleak {
				t.Fatalf("advisories %v, want EUCLEAK %v", adv, tc.eucleak)
			}
		})
	}
}

func TestAYubicoAAGUIDCountsOnlyUnderYubicosRoots(t *testing.T) {
	ca := attesttest.NewCA(t)
	var yk5 [16]byte // c5ef55ff-ad9a-4b9f-b580-adebafe026d0, YubiKey 5Ci
	copy(yk5[:], []byte{0xc5, 0xef, 0x55, 0xff, 0xad, 0x9a, 0x4b, 0x9f, 0xb5, 0x80, 0xad, 0xeb, 0xaf, 0xe0, 0x26, 0xd0})
	reg := ca.MintTPM(attesttest.TPMOptions{WebAuthnOptions: attesttest.WebAuthnOptions{AAGUID: yk5}})
	exp := FIDO2Expectation{Challenge: reg.Challenge, Origins: reg.Origins, RPID: reg.RPID,
		Time: attesttest.ValidAt, Roots: []*x509.Certificate{ca.Root()}}
	ev, err := VerifyFIDO2(reg.AttestationObject, reg.ClientDataJSON, exp)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Model != "" || ev.FirmwareRange != "" || len(ev.Advisories) != 0 {
		t.Fatalf("a configured root vouched for a Yubico AAGUID and got model %q, firmware %q, advisories %v", ev.Model, ev.FirmwareRange, ev.Advisories)
	}
}

// Every AAGUID of the table names its sources; one from Yubico's metadata
// file in testdata ([D]) carries its model name there, and a firmware
// range comes from [J] (or [F]): none is invented.
func TestYubicoAAGUIDTableComesFromYubicosMetadata(t *testing.T) {
	var md struct {
		Devices []struct {
			DisplayName string `json:"displayName"`
			Selectors   []struct {
				Parameters struct {
					Value json.RawMessage `json:"value"`
				} `json:"parameters"`
			} `json:"selectors"`
		} `json:"devices"`
	}
	if err := json.Unmarshal(readVector(t, "mds/yubico-java-webauthn-server-demo-metadata.json"), &md); err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, d := range md.Devices {
		for _, s := range d.Selectors {
			var v struct{ Value string }
			if json.Unmarshal(s.Parameters.Value, &v) == nil && len(v.Value) == 32 {
				names[v.Value] = d.DisplayName
			}
		}
	}
	form := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for _, e := range KnownYubicoAAGUIDs() {
		if !form.MatchString(e.AAGUID) || seen[e.AAGUID] {
			t.Errorf("%s is malformed or listed twice", e.AAGUID)
		}
		seen[e.AAGUID] = true
		if e.Sources == "" || strings.Trim(e.Sources, "DFJM") != "" {
			t.Errorf("%s names sources %q", e.AAGUID, e.Sources)
		}
		inD := strings.Contains(e.Sources, "D")
		if got := names[strings.ReplaceAll(e.AAGUID, "-", "")]; inD != (got != "") || (inD && got != e.Model) {
			t.Errorf("%s is %q in the table (sources %s) but %q in Yubico's metadata", e.AAGUID, e.Model, e.Sources, got)
		}
		if e.Firmware.Known() != strings.ContainsAny(e.Sources, "FJ") {
			t.Errorf("%s has firmware %q but sources %s", e.AAGUID, e.Firmware, e.Sources)
		}
		if r := e.Firmware; r.Known() && !r.Min.Less(r.Below) {
			t.Errorf("%s has an empty firmware range %s", e.AAGUID, r)
		}
	}
}

func TestEmbeddedIntermediatesChainToAttestationRoot1(t *testing.T) {
	roots := x509.NewCertPool()
	roots.AddCert(mustParse(pemAttestationRoot1)[0])
	all := concat(mustParse(pemIntermediates), mustParse(pemFIDOB2))
	inter := x509.NewCertPool()
	for _, c := range all {
		inter.AddCert(c)
	}
	if len(all) != 11 {
		t.Fatalf("%d embedded intermediates, want 11 (see roots/SOURCE)", len(all))
	}
	for _, c := range all {
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: vectorTime,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("%s: %v", c.Subject.CommonName, err)
		}
	}
	var fido []string
	for _, c := range yubicoIntermediates("FIDO") {
		fido = append(fido, c.Subject.CommonName)
	}
	if !slices.Contains(fido, "Yubico FIDO Attestation B2 1") || slices.Contains(fido, "Yubico PIV Attestation A 1") {
		t.Fatalf("FIDO intermediates: %v", fido)
	}
}
