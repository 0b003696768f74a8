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
		// Security Key NFC: the table knows no firmware for this AAGUID, so
		// no advisory can be decided.
		{"py_webauthn/reg_packed__verify_attestation_from_yubikey_firefox.json", "Security Key NFC by Yubico", "", nil},
		{"simplewebauthn/verifyRegistrationResponse__should_verify_packed_x5c_attestation.json", "Security Key NFC by Yubico", "", nil},
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

// Every AAGUID of the table must come from Yubico's metadata file in
// testdata, under the same model name: none is invented.
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
		if got := names[strings.ReplaceAll(e.AAGUID, "-", "")]; got != e.Model {
			t.Errorf("%s is %q in the table but %q in Yubico's metadata", e.AAGUID, e.Model, got)
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
