package attest

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"testing"
)

// The benchmarks put each verification beside raw crypto/x509 chain
// verification of the same certificates, with pools built once, in the same
// run. Run with: go test ./attest -run '^$' -bench . -benchtime 2s

func BenchmarkPIV(b *testing.B) {
	pairs := []struct{ name, device, slot string }{
		{"fw5.4.3-PIV-root", "piv/pivgo-2016root-f9-device.pem", "piv/pivgo-2016root-9a-slot.pem"},
		{"fw5.7.4-Root1", "piv/ovh-fw574-f9-device.pem", "piv/ovh-fw574-9a-slot.pem"},
	}
	for _, p := range pairs {
		device, slot := certVector(b, p.device), certVector(b, p.slot)
		opts := PIVOptions{Time: vectorTime, ExpectedPublicKey: slot.PublicKey}
		b.Run(p.name+"/VerifyPIV", func(b *testing.B) {
			for b.Loop() {
				if _, err := VerifyPIV(slot, device, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
		roots, inter := pivTrust().pools(nil, false)
		inter.AddCert(device)
		vo := x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: vectorTime,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
		b.Run(p.name+"/raw-x509", func(b *testing.B) {
			for b.Loop() {
				if _, err := slot.Verify(vo); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkFIDO2(b *testing.B) {
	for _, v := range []struct{ name, file string }{
		{"packed-YubiKey", "py_webauthn/reg_packed__verify_attestation_from_yubikey_firefox.json"},
		{"fido-u2f-YubiKey", "py_webauthn/reg_fido_u2f__verify_attestation_from_yubikey_firefox.json"},
	} {
		reg, exp := loadWebAuthnVector(b, webauthnVector{file: v.file})
		b.Run(v.name+"/VerifyFIDO2", func(b *testing.B) {
			for b.Loop() {
				if _, err := VerifyFIDO2(reg.AttestationObject, reg.ClientDataJSON, exp); err != nil {
					b.Fatal(err)
				}
			}
		})
		leaf := lastX5C(b, reg) // a one-certificate x5c: the leaf
		roots, inter := fidoTrust().pools(nil, false)
		vo := x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: vectorTime,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
		b.Run(v.name+"/raw-x509", func(b *testing.B) {
			for b.Loop() {
				if _, err := leaf.Verify(vo); err != nil {
					b.Fatal(err)
				}
			}
		})
		// The least crypto any verifier must do: the chain plus the one
		// attestation signature (WebAuthn §7.1 step 19).
		sigCheck := rawAttestationSignatureCheck(b, reg, leaf)
		b.Run(v.name+"/raw-x509+signature", func(b *testing.B) {
			for b.Loop() {
				if _, err := leaf.Verify(vo); err != nil || !sigCheck() {
					b.Fatal("raw check failed", err)
				}
			}
		})
	}
}

// rawAttestationSignatureCheck precomputes the signed message of a packed or
// fido-u2f statement and returns a check of the signature alone.
func rawAttestationSignatureCheck(b *testing.B, reg *Registration, leaf *x509.Certificate) func() bool {
	att, err := parseAttestationObject(reg.AttestationObject)
	if err != nil {
		b.Fatal(err)
	}
	sig := att.AttStatement["sig"].([]byte)
	cdh := sha256.Sum256(reg.ClientDataJSON)
	var msg []byte
	if att.Format == "packed" {
		msg = append(append(msg, att.RawAuthData...), cdh[:]...)
	} else {
		key, _ := parseCredentialKey(att.AuthData.AttData.CredentialPublicKey)
		pub := key.pub.(*ecdsa.PublicKey)
		msg = append(append(append(append([]byte{0}, att.AuthData.RPIDHash...), cdh[:]...), att.AuthData.AttData.CredentialID...), 4)
		msg = append(append(msg, pub.X.FillBytes(make([]byte, 32))...), pub.Y.FillBytes(make([]byte, 32))...)
	}
	digest := sha256.Sum256(msg)
	certKey := leaf.PublicKey.(*ecdsa.PublicKey)
	return func() bool { return ecdsa.VerifyASN1(certKey, digest[:], sig) }
}
