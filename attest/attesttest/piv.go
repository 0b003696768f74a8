package attesttest

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"slices"
	"time"
)

// PIVOptions choose what a minted attestation says. The zero value mints a
// YubiKey 5.7.4, serial 12345678, USB-A Keychain, slot 9a, EC P-256 key,
// PIN once, touch never, valid 2024-2099.
type PIVOptions struct {
	Firmware    [3]byte // default 5.7.4
	Serial      uint32  // default 12345678
	Slot        byte    // default 0x9a
	PINPolicy   byte    // 1 never, 2 once (default), 3 always, 4 match-once, 5 match-always
	TouchPolicy byte    // 1 never (default), 2 always, 3 cached
	FormFactor  byte    // default 0x01 USB-A Keychain; the FIPS bit is added by FIPS
	FIPS        bool    // set the 0x80 form-factor bit and the F9 FIPS marker
	// KeyAlgorithm of the attested key: "EC-P256" (default), "EC-P384",
	// "RSA-2048", "RSA-1024" or "Ed25519".
	KeyAlgorithm string
	// Key, when set, is attested instead of a fresh key.
	Key crypto.Signer

	NotBefore, NotAfter time.Time // of both certificates; default 2024-01-01 to 2099-12-31

	// Negative cases and quirks.
	Omit                          []asn1.ObjectIdentifier // leave these extensions off the slot certificate
	DeviceWithoutBasicConstraints bool                    // YubiKey 4 F9 certificates have none
}

func (o *PIVOptions) defaults() {
	if o.Firmware == [3]byte{} {
		o.Firmware = [3]byte{5, 7, 4}
	}
	if o.Serial == 0 {
		o.Serial = 12345678
	}
	if o.Slot == 0 {
		o.Slot = 0x9a
	}
	if o.PINPolicy == 0 {
		o.PINPolicy = 2
	}
	if o.TouchPolicy == 0 {
		o.TouchPolicy = 1
	}
	if o.FormFactor == 0 {
		o.FormFactor = 0x01
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = defaultNotBefore
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = defaultNotAfter
	}
}

// MintPIV mints an F9 device certificate under the root and a slot
// attestation certificate signed by it, for a new key (or o.Key). It
// returns the slot certificate, the device certificate and the attested
// key.
func (ca *CA) MintPIV(o PIVOptions) (slot, device *x509.Certificate, key crypto.Signer) {
	o.defaults()
	devKey := ca.newKey("EC-P256")
	device = ca.sign(ca.deviceTemplate(o), ca.root, devKey.Public(), ca.key)
	key = o.Key
	if key == nil {
		key = ca.newKey(o.KeyAlgorithm)
	}
	slot = ca.sign(ca.slotTemplate(o), device, key.Public(), devKey)
	return slot, device, key
}

func (ca *CA) deviceTemplate(o PIVOptions) *x509.Certificate {
	t := &x509.Certificate{
		SerialNumber: ca.serial(),
		Subject:      pkix.Name{CommonName: "Yubico PIV Attestation"},
		NotBefore:    o.NotBefore, NotAfter: o.NotAfter,
		ExtraExtensions: []pkix.Extension{{Id: OIDFirmware, Value: o.Firmware[:]}},
	}
	if !o.DeviceWithoutBasicConstraints {
		t.BasicConstraintsValid, t.IsCA, t.MaxPathLenZero = true, true, true
	}
	if o.FIPS {
		t.ExtraExtensions = append(t.ExtraExtensions, pkix.Extension{Id: OIDFIPS, Value: mustDER(7)})
	}
	return t
}

func (ca *CA) slotTemplate(o PIVOptions) *x509.Certificate {
	ff := o.FormFactor
	if o.FIPS {
		ff |= 0x80
	}
	exts := []pkix.Extension{
		{Id: OIDFirmware, Value: o.Firmware[:]},
		{Id: OIDSerial, Value: mustDER(int64(o.Serial))},
		{Id: OIDPolicy, Value: []byte{o.PINPolicy, o.TouchPolicy}},
		{Id: OIDFormFactor, Value: []byte{ff}},
	}
	exts = slices.DeleteFunc(exts, func(e pkix.Extension) bool {
		return slices.ContainsFunc(o.Omit, e.Id.Equal)
	})
	return &x509.Certificate{
		SerialNumber:    ca.serial(),
		Subject:         pkix.Name{CommonName: fmt.Sprintf("YubiKey PIV Attestation %02x", o.Slot)},
		NotBefore:       o.NotBefore,
		NotAfter:        o.NotAfter,
		ExtraExtensions: exts,
	}
}

func (ca *CA) serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		ca.failf("serial: %v", err)
	}
	return n
}

func mustDER(v any) []byte {
	b, err := asn1.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// MintPIVCSR mints a PIV attestation as MintPIV does and wraps it in a CSR
// signed by the attested key, with the slot certificate in extension
// 1.3.6.1.4.1.41482.3.11 and the F9 certificate in .3.2, as
// yubico-piv-tool writes them. csrKey, when set, signs the CSR (and is its
// key) instead: a CSR for another key than the attested one.
func (ca *CA) MintPIVCSR(o PIVOptions, csrKey crypto.Signer) (csrDER []byte, key crypto.Signer) {
	slot, device, key := ca.MintPIV(o)
	if csrKey == nil {
		csrKey = key
	}
	tmpl := &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "keyfleet test"},
		ExtraExtensions: []pkix.Extension{
			{Id: OIDCSRSlot, Value: slot.Raw},
			{Id: OIDCSRDevice, Value: device.Raw},
		},
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, csrKey)
	if err != nil {
		ca.failf("creating the CSR: %v", err)
	}
	return der, key
}
