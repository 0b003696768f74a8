package attest

import "testing"

func TestAdvisoriesForMatchesTheAffectedFirmwareRanges(t *testing.T) {
	tests := []struct {
		name string
		d    DeviceFacts
		want string
	}{
		{"an RSA key on 4.2.5 predates ROCA", DeviceFacts{Vendor: "Yubico", Firmware: Version{4, 2, 5}, KeyAlgorithm: "RSA-2048"}, ""},
		{"an RSA key on 4.2.6 is affected by ROCA", DeviceFacts{Vendor: "Yubico", Firmware: Version{4, 2, 6}, KeyAlgorithm: "RSA-2048"}, "YSA-2017-01"},
		{"an RSA key on 4.3.4 is affected by ROCA", DeviceFacts{Vendor: "Yubico", Firmware: Version{4, 3, 4}, KeyAlgorithm: "RSA-1024"}, "YSA-2017-01"},
		{"an RSA key on 4.3.5 is fixed", DeviceFacts{Vendor: "Yubico", Firmware: Version{4, 3, 5}, KeyAlgorithm: "RSA-2048"}, ""},
		{"a YubiKey 5 on 5.0.0 is affected by EUCLEAK", DeviceFacts{Vendor: "Yubico", Firmware: Version{5, 0, 0}}, "YSA-2024-03"},
		{"a YubiKey 5 on 5.7.0 is fixed", DeviceFacts{Vendor: "Yubico", Firmware: Version{5, 7, 0}}, ""},
		{"a YubiKey Bio on 5.7.1 is affected by EUCLEAK", DeviceFacts{Vendor: "Yubico", Firmware: Version{5, 7, 1}, FormFactor: 0x07}, "YSA-2024-03"},
		{"another vendor's 5.4.3 is not matched", DeviceFacts{Vendor: "Other", Firmware: Version{5, 4, 3}}, ""},
		{"a YubiKey 5 whose AAGUID pins 5.2 to 5.4 is affected by EUCLEAK", DeviceFacts{Vendor: "Yubico", FirmwareRange: VersionRange{Version{5, 2, 0}, Version{5, 5, 0}}}, "YSA-2024-03"},
		{"a range ending at the fix is affected", DeviceFacts{Vendor: "Yubico", FirmwareRange: VersionRange{Version{5, 4, 0}, Version{5, 7, 0}}}, "YSA-2024-03"},
		{"a range straddling the fix decides nothing", DeviceFacts{Vendor: "Yubico", FirmwareRange: VersionRange{Version{5, 4, 0}, Version{5, 8, 0}}}, ""},
		{"a range from the fix on is not affected", DeviceFacts{Vendor: "Yubico", FirmwareRange: VersionRange{Version{5, 7, 0}, Version{5, 8, 0}}}, ""},
		{"a YubiKey Bio by model on 5.7.0 to 5.7.1 is affected", DeviceFacts{Vendor: "Yubico", Model: "YubiKey Bio - FIDO Edition", FirmwareRange: VersionRange{Version{5, 7, 0}, Version{5, 7, 2}}}, "YSA-2024-03"},
		{"no firmware at all decides nothing", DeviceFacts{Vendor: "Yubico", Model: "YubiKey 5 Series"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := AdvisoriesFor(tc.d)
			if (tc.want == "" && len(got) != 0) || (tc.want != "" && (len(got) != 1 || got[0].ID != tc.want)) {
				t.Fatalf("got %v, want %q", got, tc.want)
			}
		})
	}
}

func TestKnownAdvisoriesIsACopy(t *testing.T) {
	rules := KnownAdvisories()
	rules[0].ID = "changed"
	if KnownAdvisories()[0].ID == "changed" {
		t.Fatal("KnownAdvisories exposes the built-in table")
	}
}
