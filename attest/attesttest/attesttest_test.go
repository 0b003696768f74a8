package attesttest_test

import (
	"crypto/x509"
	"fmt"
	"testing"

	"github.com/keyfleet/keyfleet/attest"
	"github.com/keyfleet/keyfleet/attest/attesttest"
)

func TestMintPIVWorksWithoutATestingT(t *testing.T) {
	ca := attesttest.NewCA(nil)
	slot, device, key := ca.MintPIV(attesttest.PIVOptions{Serial: 7, KeyAlgorithm: "EC-P384"})
	ev, err := attest.VerifyPIV(slot, device, attest.PIVOptions{Time: attesttest.ValidAt, Roots: []*x509.Certificate{ca.Root()}, ExpectedPublicKey: key.Public()})
	if err != nil || ev.Serial != 7 || ev.KeyAlgorithm != "EC-P384" {
		t.Fatalf("evidence %+v, error %v", ev, err)
	}
	if roots, err := attest.ParseCertificates(ca.RootPEM()); err != nil || !roots[0].Equal(ca.Root()) {
		t.Fatalf("RootPEM does not hold the root: %v", err)
	}
}

func TestNewCAWithoutATestingTPanicsOnAnUnknownKeyAlgorithm(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	attesttest.NewCA(nil).MintPIV(attesttest.PIVOptions{KeyAlgorithm: "DSA"})
}

func Example() {
	ca := attesttest.NewCA(nil)
	slot, device, key := ca.MintPIV(attesttest.PIVOptions{Serial: 30000948, FormFactor: 0x07, Firmware: [3]byte{5, 7, 2}, TouchPolicy: 2})
	ev, err := attest.VerifyPIV(slot, device, attest.PIVOptions{
		Time:              attesttest.ValidAt,
		Roots:             []*x509.Certificate{ca.Root()}, // trusted by configuration only
		ExpectedPublicKey: key.Public(),
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(ev.Model, ev.Serial, ev.Firmware, ev.FormFactor, ev.PINPolicy, ev.TouchPolicy)
	// Output: YubiKey Bio 30000948 5.7.2 USB-C Bio Keychain once always
}
