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
