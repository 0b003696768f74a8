package attest

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/attest/attesttest"
)

func TestVerifyPIVReportsWhatTheTestCAMinted(t *testing.T) {
	ca := attesttest.NewCA(t)
	tests := []struct {
		name       string
		opts       attesttest.PIVOptions
		check      func(*Evidence) bool
		advisories []string
	}{
		{"a default key is a 5.7.4 YubiKey 5 without advisories", attesttest.PIVOptions{},
			func(e *Evidence) bool { return e.Firmware == "5.7.4" && e.Model == "YubiKey 5" && e.Serial == 12345678 }, nil},
		{"an RSA key from firmware 4.3.4 carries the ROCA advisory", attesttest.PIVOptions{Firmware: [3]byte{4, 3, 4}, KeyAlgorithm: "RSA-2048"},
			func(e *Evidence) bool { return e.KeyAlgorithm == "RSA-2048" && e.Model == "YubiKey 4" }, []string{"YSA-2017-01"}},
		{"an EC key from firmware 4.3.4 is not affected by ROCA", attesttest.PIVOptions{Firmware: [3]byte{4, 3, 4}},
			func(e *Evidence) bool { return e.KeyAlgorithm == "EC-P256" }, nil},
		{"firmware 5.6.9 carries the EUCLEAK advisory", attesttest.PIVOptions{Firmware: [3]byte{5, 6, 9}},
			func(e *Evidence) bool { return true }, []string{"YSA-2024-03"}},
		{"a Bio key at 5.7.1 still carries the EUCLEAK advisory", attesttest.PIVOptions{Firmware: [3]byte{5, 7, 1}, FormFactor: 0x07},
			func(e *Evidence) bool { return e.Model == "YubiKey Bio" && e.FormFactor == "USB-C Bio Keychain" }, []string{"YSA-2024-03"}},
		{"a Bio key at 5.7.2 is fixed", attesttest.PIVOptions{Firmware: [3]byte{5, 7, 2}, FormFactor: 0x06},
			func(e *Evidence) bool { return e.FormFactor == "USB-A Bio Keychain" }, nil},
		{"a FIPS key is reported as FIPS with its base form factor", attesttest.PIVOptions{FIPS: true, FormFactor: 0x04},
			func(e *Evidence) bool { return e.FIPS && e.FormFactor == "USB-C Nano" && e.Model == "YubiKey 5 FIPS" }, nil},
		{"match policies and cached touch are named", attesttest.PIVOptions{PINPolicy: 5, TouchPolicy: 3, Slot: 0x9c},
			func(e *Evidence) bool {
				return e.PINPolicy == "match-always" && e.TouchPolicy == "cached" && e.Slot == "9c"
			}, nil},
		{"an unknown form factor is reported, not rejected", attesttest.PIVOptions{FormFactor: 0x3e},
			func(e *Evidence) bool { return e.FormFactor == "unknown (0x3e)" }, nil},
		{"an Ed25519 key is reported", attesttest.PIVOptions{KeyAlgorithm: "Ed25519"},
			func(e *Evidence) bool { return e.KeyAlgorithm == "Ed25519" }, nil},
		{"a device certificate without basicConstraints is accepted", attesttest.PIVOptions{DeviceWithoutBasicConstraints: true},
			func(e *Evidence) bool { return len(e.Chain) == 3 }, nil},
		{"a slot certificate without serial or form factor still verifies", attesttest.PIVOptions{Omit: []asn1.ObjectIdentifier{attesttest.OIDSerial, attesttest.OIDFormFactor}},
			func(e *Evidence) bool { return e.Serial == 0 && e.FormFactor == "" }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			slot, device, key := ca.MintPIV(tc.opts)
			ev, err := VerifyPIV(slot, device, PIVOptions{Time: attesttest.ValidAt, Roots: []*x509.Certificate{ca.Root()}, ExpectedPublicKey: key.Public()})
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, a := range ev.Advisories {
				ids = append(ids, a.ID)
			}
			if !tc.check(ev) || !slices.Equal(ids, tc.advisories) {
				t.Errorf("unexpected evidence %+v (advisories %v, want %v)", ev, ids, tc.advisories)
			}
		})
	}
}

func TestVerifyPIVRejectsBrokenMintedChains(t *testing.T) {
	ca, other := attesttest.NewCA(t), attesttest.NewCA(t)
	good := PIVOptions{Time: attesttest.ValidAt, Roots: []*x509.Certificate{ca.Root()}}
	slotA, devA, _ := ca.MintPIV(attesttest.PIVOptions{})
	slotB, devB, keyB := ca.MintPIV(attesttest.PIVOptions{})
	tests := []struct {
		name         string
		slot, device *x509.Certificate
		opts         PIVOptions
		want         error
	}{
		{"a chain from a CA that is not configured is untrusted", slotA, devA, PIVOptions{Time: attesttest.ValidAt, Roots: []*x509.Certificate{other.Root()}}, ErrUntrustedChain},
		{"a test CA is not trusted by default", slotA, devA, PIVOptions{Time: attesttest.ValidAt}, ErrUntrustedChain},
		{"a slot certificate with another key's device certificate is a device mismatch", slotA, devB, good, ErrDeviceMismatch},
		{"a slot certificate for another key than expected is a key mismatch", slotA, devA, withKey(good, keyB.Public()), ErrKeyMismatch},
		{"a chain checked after it expired is expired", slotB, devB, PIVOptions{Time: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), Roots: good.Roots}, ErrExpired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := VerifyPIV(tc.slot, tc.device, tc.opts); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func withKey(o PIVOptions, k any) PIVOptions { o.ExpectedPublicKey = k; return o }

func TestVerifyPIVRejectsSlotCertificatesWithMissingOrBadExtensions(t *testing.T) {
	ca := attesttest.NewCA(t)
	tests := []struct {
		name string
		omit asn1.ObjectIdentifier
		want error
	}{
		{"a slot certificate without a PIN/touch policy is rejected", attesttest.OIDPolicy, ErrMissingExtension},
		{"a slot certificate without a firmware version is rejected", attesttest.OIDFirmware, ErrMissingExtension},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			slot, dev, _ := ca.MintPIV(attesttest.PIVOptions{Omit: []asn1.ObjectIdentifier{tc.omit}})
			_, err := VerifyPIV(slot, dev, PIVOptions{Time: attesttest.ValidAt, Roots: []*x509.Certificate{ca.Root()}})
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseCertificateRejectsTruncatedDER(t *testing.T) {
	slot, _, _ := attesttest.NewCA(t).MintPIV(attesttest.PIVOptions{})
	for _, n := range []int{1, 10, len(slot.Raw) / 2} {
		if _, err := ParseCertificate(attesttest.Truncated(slot.Raw, n)); !errors.Is(err, ErrMalformed) {
			t.Errorf("cut by %d bytes: got %v, want ErrMalformed", n, err)
		}
	}
}
