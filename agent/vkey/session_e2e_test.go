package vkey_test

import (
	"crypto/rand"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/go-piv/piv-go/v2/piv"

	"github.com/keyfleet/keyfleet/agent/vkey"
)

// TestPINPolicyThroughPCSC drives the PIN policies through piv-go,
// libpcsclite, pcscd and vpcd: a "once" key signs without the PIN for the
// rest of the session after one VERIFY, and needs it again after the card
// is opened anew (piv-go selects the PIV applet on Open); an "always" key
// needs the PIN before every signature.
func TestPINPolicyThroughPCSC(t *testing.T) {
	_, yk := plugCard(t, 0, vkey.Options{CA: mustCA(t)})
	once := generate(t, yk, piv.SlotAuthentication, piv.PINPolicyOnce)
	always := generate(t, yk, piv.SlotSignature, piv.PINPolicyAlways)
	withPIN := piv.KeyAuth{PIN: piv.DefaultPIN}
	// PINPolicyNever makes piv-go send no VERIFY: the card decides.
	noPIN := piv.KeyAuth{PINPolicy: piv.PINPolicyNever}

	mustSign(t, yk, piv.SlotAuthentication, once, withPIN)
	mustSign(t, yk, piv.SlotAuthentication, once, noPIN) // verified once this session
	yk.Close()

	yk = openWhenReady(t, pcsc.Slots[0].Reader)
	t.Cleanup(func() { yk.Close() })
	if err := sign(yk, piv.SlotAuthentication, once, noPIN); !securityStatus(err) {
		t.Fatalf("a once key in a new session signed without the PIN: %v", err)
	}
	mustSign(t, yk, piv.SlotAuthentication, once, withPIN)

	mustSign(t, yk, piv.SlotSignature, always, withPIN)
	if err := sign(yk, piv.SlotSignature, always, noPIN); !securityStatus(err) {
		t.Fatalf("an always key signed twice after one VERIFY: %v", err)
	}
	mustSign(t, yk, piv.SlotSignature, always, withPIN)
}

func generate(t *testing.T, yk *piv.YubiKey, slot piv.Slot, pp piv.PINPolicy) any {
	t.Helper()
	pub, err := yk.GenerateKey(piv.DefaultManagementKey, slot, piv.Key{Algorithm: piv.AlgorithmEC256, PINPolicy: pp, TouchPolicy: piv.TouchPolicyNever})
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func sign(yk *piv.YubiKey, slot piv.Slot, pub any, auth piv.KeyAuth) error {
	priv, err := yk.PrivateKey(slot, pub, auth)
	if err != nil {
		return err
	}
	digest := sha256.Sum256([]byte("session"))
	_, err = priv.(*piv.ECDSAPrivateKey).Sign(rand.Reader, digest[:], nil)
	return err
}

func mustSign(t *testing.T, yk *piv.YubiKey, slot piv.Slot, pub any, auth piv.KeyAuth) {
	t.Helper()
	if err := sign(yk, slot, pub, auth); err != nil {
		t.Fatalf("signing with slot %v: %v", slot, err)
	}
}

// securityStatus reports piv-go's error for status 6982 (piv-go has no
// sentinel for it).
func securityStatus(err error) bool {
	return err != nil && strings.Contains(err.Error(), "security status not satisfied")
}
