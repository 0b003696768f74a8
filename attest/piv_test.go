package attest

import (
	"bytes"
	"crypto/x509/pkix"
	"errors"
	"slices"
	"testing"
	"time"
)

type pivWant struct {
	serial               uint32
	firmware, formFactor string
	pin, touch, slot     string
	fips                 bool
	model, alg           string
	advisories           []string
}

var pivVectors = []struct {
	name, device, slot string
	want               pivWant
}{
	{"a 5.4.3 nano chaining to the 2016 PIV root verifies", "pivgo-2016root-f9-device.pem", "pivgo-2016root-9a-slot.pem",
		pivWant{15732500, "5.4.3", "USB-C Nano", "once", "never", "9a", false, "YubiKey 5", "EC-P256", []string{"YSA-2024-03"}}},
	{"a YubiKey 4 whose F9 certificate is issued by the U2F root verifies", "pivgo-2018-u2froot-f9-device.pem", "pivgo-2018-u2froot-9a-slot.pem",
		pivWant{0, "4.3.7", "", "once", "never", "9a", false, "YubiKey 4", "EC-P256", nil}},
	{"a YubiKey 4 F9 certificate without basicConstraints verifies", "ovh-fw435-f9-device.pem", "ovh-fw435-9a-slot.pem",
		pivWant{5970478, "4.3.5", "", "always", "never", "9a", false, "YubiKey 4", "RSA-2048", nil}},
	{"a 5.7.4 key chaining through Attestation Root 1 verifies", "ovh-fw574-f9-device.pem", "ovh-fw574-9a-slot.pem",
		pivWant{32718477, "5.7.4", "USB-C Nano", "always", "never", "9a", false, "YubiKey 5", "RSA-2048", nil}},
	{"a FIPS key with the F9 FIPS marker verifies as FIPS", "docker-tuf/25515003_SlotF9Intermediate.pem", "docker-tuf/25515003_Slot9CAttestation.pem",
		pivWant{25515003, "5.4.3", "USB-C Keychain", "always", "never", "9c", true, "YubiKey 5 FIPS", "EC-P384", []string{"YSA-2024-03"}}},
	{"a second docker FIPS key verifies", "docker-tuf/25599865_SlotF9Intermediate.pem", "docker-tuf/25599865_Slot9CAttestation.pem",
		pivWant{25599865, "5.4.3", "USB-C Keychain", "always", "never", "9c", true, "YubiKey 5 FIPS", "EC-P384", []string{"YSA-2024-03"}}},
	{"a third docker FIPS key verifies", "docker-tuf/28751288_SlotF9Intermediate.pem", "docker-tuf/28751288_Slot9CAttestation.pem",
		pivWant{28751288, "5.4.3", "USB-C Keychain", "always", "never", "9c", true, "YubiKey 5 FIPS", "EC-P384", []string{"YSA-2024-03"}}},
	{"docker's valid FIPS test key verifies", "docker-tuf/test-25516106_SlotF9Intermediate.pem", "docker-tuf/test-25516106_Slot9CAttestation.pem",
		pivWant{25516106, "5.4.3", "USB-C Keychain", "always", "never", "9c", true, "YubiKey 5 FIPS", "EC-P384", []string{"YSA-2024-03"}}},
	{"docker's non-FIPS test key verifies and reports no FIPS", "docker-tuf/test-26551025_SlotF9Intermediate.pem", "docker-tuf/test-26551025_Slot9CAttestation.pem",
		pivWant{26551025, "5.4.3", "USB-A Keychain", "always", "never", "9c", false, "YubiKey 5", "EC-P384", []string{"YSA-2024-03"}}},
	{"docker's serial-mismatch test key reports the serial its certificate holds", "docker-tuf/test-12345678_SlotF9Intermediate.pem", "docker-tuf/test-12345678_Slot9CAttestation.pem",
		pivWant{26551025, "5.4.3", "USB-A Keychain", "always", "never", "9c", false, "YubiKey 5", "EC-P384", []string{"YSA-2024-03"}}},
	{"a 5.4.3 keychain whose file name says ECC-384 verifies with the P-256 key it holds", "tamemycerts/5_4_3_Always_Never_UsbAKeychain_9a_Normal_ECC_384.f9-device.pem", "tamemycerts/5_4_3_Always_Never_UsbAKeychain_9a_Normal_ECC_384.slot-ext3.11.pem",
		pivWant{19661687, "5.4.3", "USB-A Keychain", "always", "never", "9a", false, "YubiKey 5", "EC-P256", []string{"YSA-2024-03"}}},
	{"a FIPS form factor bit alone marks the key FIPS", "tamemycerts/5_4_3_Once_Cached_UsbAKeychain_9a_FIPS_RSA_2048.f9-device.pem", "tamemycerts/5_4_3_Once_Cached_UsbAKeychain_9a_FIPS_RSA_2048.slot-ext3.11.pem",
		pivWant{28989702, "5.4.3", "USB-A Keychain", "once", "cached", "9a", true, "YubiKey 5 FIPS", "RSA-2048", []string{"YSA-2024-03"}}},
	{"an RSA key from a 5.4.3 keychain verifies", "tamemycerts/5_4_3_Once_Never_UsbAKeychain_9a_Normal_RSA_2048.f9-device.pem", "tamemycerts/5_4_3_Once_Never_UsbAKeychain_9a_Normal_RSA_2048.slot-ext3.11.pem",
		pivWant{19661687, "5.4.3", "USB-A Keychain", "once", "never", "9a", false, "YubiKey 5", "RSA-2048", []string{"YSA-2024-03"}}},
	{"a 5.7.1 key still chaining to the old PIV root verifies", "tamemycerts/5_7_1_Always_Always_UsbCKeychain_9c_Normal_ECC_384.f9-device.pem", "tamemycerts/5_7_1_Always_Always_UsbCKeychain_9c_Normal_ECC_384.slot-ext3.11.pem",
		pivWant{30041834, "5.7.1", "USB-C Keychain", "always", "always", "9c", false, "YubiKey 5", "EC-P384", nil}},
	{"a 5.2.7 key verifies", "tamemycerts/resource_5_2_7.f9-device.pem", "tamemycerts/resource_5_2_7.slot-ext3.11.pem",
		pivWant{15890263, "5.2.7", "USB-A Keychain", "once", "never", "9a", false, "YubiKey 5", "RSA-2048", []string{"YSA-2024-03"}}},
	{"a 5.7.2 USB-C Bio key verifies with its form factor named", "tamemycerts/resource_5_7_2.f9-device.pem", "tamemycerts/resource_5_7_2.slot-ext3.11.pem",
		pivWant{30000948, "5.7.2", "USB-C Bio Keychain", "once", "never", "9a", false, "YubiKey Bio", "RSA-2048", nil}},
	{"a slot certificate from extension 3.1 verifies", "tamemycerts/resource_attestation_1.f9-device.pem", "tamemycerts/resource_attestation_1.slot-ext3.1.pem",
		pivWant{19661687, "5.4.3", "USB-A Keychain", "once", "cached", "9a", false, "YubiKey 5", "EC-P384", []string{"YSA-2024-03"}}},
	{"a slot certificate from extension 3.11 verifies", "tamemycerts/resource_attestation_11.f9-device.pem", "tamemycerts/resource_attestation_11.slot-ext3.11.pem",
		pivWant{19661687, "5.4.3", "USB-A Keychain", "once", "cached", "9a", false, "YubiKey 5", "EC-P384", []string{"YSA-2024-03"}}},
	{"a 5.7.4 key with a shared F9 certificate verifies by its slot serial", "tamemycerts/resource_csr_5_7_4_standard.f9-device.pem", "tamemycerts/resource_csr_5_7_4_standard.slot-ext3.1.pem",
		pivWant{33064031, "5.7.4", "USB-C Keychain", "once", "cached", "9a", false, "YubiKey 5", "EC-P384", nil}},
}

func TestVerifyPIVAcceptsEveryRealDevicePair(t *testing.T) {
	for _, tc := range pivVectors {
		t.Run(tc.name, func(t *testing.T) {
			slot := certVector(t, "piv/"+tc.slot)
			ev, err := VerifyPIV(slot, certVector(t, "piv/"+tc.device),
				PIVOptions{Time: vectorTime, ExpectedPublicKey: slot.PublicKey})
			if err != nil {
				t.Fatalf("VerifyPIV: %v", err)
			}
			var adv []string
			for _, a := range ev.Advisories {
				adv = append(adv, a.ID)
			}
			got := pivWant{ev.Serial, ev.Firmware, ev.FormFactor, ev.PINPolicy, ev.TouchPolicy, ev.Slot, ev.FIPS, ev.Model, ev.KeyAlgorithm, adv}
			if !pivWantEqual(got, tc.want) {
				t.Errorf("evidence\n got %+v\nwant %+v", got, tc.want)
			}
			if ev.Format != "piv" || ev.Vendor != "Yubico" || len(ev.Chain) < 3 || string(ev.PublicKey) != string(slot.RawSubjectPublicKeyInfo) {
				t.Errorf("format %q vendor %q chain %d, public key matches %v", ev.Format, ev.Vendor, len(ev.Chain), string(ev.PublicKey) == string(slot.RawSubjectPublicKeyInfo))
			}
		})
	}
}

func pivWantEqual(a, b pivWant) bool {
	return slices.Equal(a.advisories, b.advisories) && a.serial == b.serial &&
		[9]string{a.firmware, a.formFactor, a.pin, a.touch, a.slot, a.model, a.alg} ==
			[9]string{b.firmware, b.formFactor, b.pin, b.touch, b.slot, b.model, b.alg} && a.fips == b.fips
}

func TestVerifyPIVRejects(t *testing.T) {
	other := certVector(t, "piv/ovh-fw574-9a-slot.pem")
	tests := []struct {
		name, device, slot string
		opts               PIVOptions
		want               error
	}{
		{"a 2016-root device certificate with a 2018 slot certificate is a cross-device pair",
			"pivgo-2016root-f9-device.pem", "pivgo-2018-u2froot-9a-slot.pem", PIVOptions{Time: vectorTime}, ErrDeviceMismatch},
		{"a 2018 device certificate with a 2016-root slot certificate is a cross-device pair",
			"pivgo-2018-u2froot-f9-device.pem", "pivgo-2016root-9a-slot.pem", PIVOptions{Time: vectorTime}, ErrDeviceMismatch},
		{"a slot certificate for another key than expected is a key mismatch",
			"pivgo-2016root-f9-device.pem", "pivgo-2016root-9a-slot.pem", PIVOptions{Time: vectorTime, ExpectedPublicKey: other.PublicKey}, ErrKeyMismatch},
		{"a chain checked after its certificates expire is expired",
			"pivgo-2016root-f9-device.pem", "pivgo-2016root-9a-slot.pem", PIVOptions{Time: time.Date(2053, 1, 1, 0, 0, 0, 0, time.UTC)}, ErrExpired},
		{"a chain checked before its certificates were issued is expired",
			"ovh-fw574-f9-device.pem", "ovh-fw574-9a-slot.pem", PIVOptions{Time: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}, ErrExpired},
		{"a genuine chain is untrusted when Yubico's roots are excluded",
			"pivgo-2016root-f9-device.pem", "pivgo-2016root-9a-slot.pem", PIVOptions{Time: vectorTime, ExcludeBuiltinRoots: true}, ErrUntrustedChain},
		{"a verification without a time is refused",
			"pivgo-2016root-f9-device.pem", "pivgo-2016root-9a-slot.pem", PIVOptions{}, ErrInvalidOptions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := VerifyPIV(certVector(t, "piv/"+tc.slot), certVector(t, "piv/"+tc.device), tc.opts)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			var e *Error
			if !errors.As(err, &e) || e.Detail == "" {
				t.Fatalf("error %v is not an *Error with a detail", err)
			}
		})
	}
}

func TestVerifyPIVLeavesTheCallersDeviceCertificateUnchanged(t *testing.T) {
	dev := certVector(t, "piv/ovh-fw435-f9-device.pem")
	if _, err := VerifyPIV(certVector(t, "piv/ovh-fw435-9a-slot.pem"), dev, PIVOptions{Time: vectorTime}); err != nil {
		t.Fatal(err)
	}
	if dev.BasicConstraintsValid || dev.IsCA {
		t.Fatal("VerifyPIV marked the caller's F9 certificate as a CA")
	}
}

// pivExts builds the four Yubico slot extensions from raw values.
func pivExts(fw, serial, policy, ff []byte) []pkix.Extension {
	return []pkix.Extension{
		{Id: oidFirmware, Value: fw},
		{Id: oidSerial, Value: serial},
		{Id: oidPolicy, Value: policy},
		{Id: oidFormFactor, Value: ff},
	}
}

func TestParsePIVExtensionsRejectsWrongSizes(t *testing.T) {
	tests := []struct {
		name                   string
		fw, serial, policy, ff []byte
	}{
		{"a two-byte firmware version is malformed", []byte{5, 7}, []byte{2, 1, 1}, []byte{2, 1}, []byte{1}},
		{"a serial that is not an INTEGER is malformed", []byte{5, 7, 4}, []byte{4, 1, 1}, []byte{2, 1}, []byte{1}},
		{"a negative serial is malformed", []byte{5, 7, 4}, []byte{2, 1, 0xff}, []byte{2, 1}, []byte{1}},
		{"a three-byte policy is malformed", []byte{5, 7, 4}, []byte{2, 1, 1}, []byte{2, 1, 1}, []byte{1}},
		{"an empty form factor is malformed", []byte{5, 7, 4}, []byte{2, 1, 1}, []byte{2, 1}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parsePIVExtensions(pivExts(tc.fw, tc.serial, tc.policy, tc.ff)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
}

func TestTwoDevicesSharingOneF9CertificateKeepTheirOwnSerials(t *testing.T) {
	ovh := certVector(t, "piv/ovh-fw574-f9-device.pem")
	tmc := certVector(t, "piv/tamemycerts/resource_csr_5_7_4_standard.f9-device.pem")
	if !ovh.Equal(tmc) {
		t.Fatal("the two 5.7.4 vectors no longer share their F9 certificate")
	}
	a, errA := VerifyPIV(certVector(t, "piv/ovh-fw574-9a-slot.pem"), ovh, PIVOptions{Time: vectorTime})
	b, errB := VerifyPIV(certVector(t, "piv/tamemycerts/resource_csr_5_7_4_standard.slot-ext3.1.pem"), ovh, PIVOptions{Time: vectorTime})
	if errA != nil || errB != nil || a.Serial == b.Serial {
		t.Fatalf("serials %d and %d (errors %v, %v)", a.Serial, b.Serial, errA, errB)
	}
}

// TestAnF9CertificateIsNoDeviceIdentity: several keys carry one
// byte-identical F9 certificate, on firmware 5.4.3 as on 5.7.4, so two
// keys are told apart only by the serial in their slot certificates.
func TestAnF9CertificateIsNoDeviceIdentity(t *testing.T) {
	pairs := []struct {
		name        string
		f9a, slotA  string
		f9b, slotB  string
		serialA, sB uint32
	}{
		{"two 5.4.3 FIPS keys of docker's ceremony",
			"docker-tuf/25515003_SlotF9Intermediate.pem", "docker-tuf/25515003_Slot9CAttestation.pem",
			"docker-tuf/test-25516106_SlotF9Intermediate.pem", "docker-tuf/test-25516106_Slot9CAttestation.pem", 25515003, 25516106},
		{"a 5.4.3 FIPS key of docker's and one of TameMyCerts'",
			"docker-tuf/28751288_SlotF9Intermediate.pem", "docker-tuf/28751288_Slot9CAttestation.pem",
			"tamemycerts/5_4_3_Once_Cached_UsbAKeychain_9a_FIPS_RSA_2048.f9-device.pem", "tamemycerts/5_4_3_Once_Cached_UsbAKeychain_9a_FIPS_RSA_2048.slot-ext3.11.pem", 28751288, 28989702},
		{"two 5.7.4 keys of OVH and TameMyCerts",
			"ovh-fw574-f9-device.pem", "ovh-fw574-9a-slot.pem",
			"tamemycerts/resource_csr_5_7_4_standard.f9-device.pem", "tamemycerts/resource_csr_5_7_4_standard.slot-ext3.1.pem", 32718477, 33064031},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			devA, devB := mustParse(readVector(t, "piv/"+p.f9a))[0], mustParse(readVector(t, "piv/"+p.f9b))[0]
			if !bytes.Equal(devA.Raw, devB.Raw) {
				t.Fatal("the F9 certificates differ")
			}
			evA, errA := VerifyPIV(mustParse(readVector(t, "piv/"+p.slotA))[0], devA, PIVOptions{Time: vectorTime})
			evB, errB := VerifyPIV(mustParse(readVector(t, "piv/"+p.slotB))[0], devB, PIVOptions{Time: vectorTime})
			if errA != nil || errB != nil || evA.Serial != p.serialA || evB.Serial != p.sB {
				t.Fatalf("serials %v / %v, errors %v / %v", evA, evB, errA, errB)
			}
		})
	}
}

// TestAKeysDeviceCertificateAloneTellsWhetherItsChainIsTrusted: the check
// an agent makes before changing a key; a device certificate under an
// unconfigured root is untrusted.
func TestAKeysDeviceCertificateAloneTellsWhetherItsChainIsTrusted(t *testing.T) {
	dev := mustParse(readVector(t, "piv/ovh-fw574-f9-device.pem"))[0]
	fw, fips, err := VerifyPIVDevice(dev, PIVOptions{Time: vectorTime})
	if err != nil || fw != "5.7.4" || fips {
		t.Fatalf("a 5.7.4 key: firmware %q fips %v, %v", fw, fips, err)
	}
	if _, fips, err := VerifyPIVDevice(mustParse(readVector(t, "piv/docker-tuf/25515003_SlotF9Intermediate.pem"))[0], PIVOptions{Time: vectorTime}); err != nil || !fips {
		t.Fatalf("a FIPS key: fips %v, %v", fips, err)
	}
	if _, _, err := VerifyPIVDevice(dev, PIVOptions{Time: vectorTime, ExcludeBuiltinRoots: true}); !errors.Is(err, ErrUntrustedChain) {
		t.Fatalf("without Yubico's roots: %v", err)
	}
}
