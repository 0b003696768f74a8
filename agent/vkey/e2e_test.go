package vkey_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-piv/piv-go/v2/piv"

	"github.com/keyfleet/keyfleet/agent/vkey"
	"github.com/keyfleet/keyfleet/agent/vkey/vkeytest"
	"github.com/keyfleet/keyfleet/attest"
)

// pcsc is the one private pcscd of this test binary; when it could not
// start, the end-to-end tests fail, naming the packages (needPCSC).
var pcsc *vkeytest.Shared

func TestMain(m *testing.M) {
	pcsc = vkeytest.StartShared()
	code := m.Run()
	pcsc.Stop()
	os.Exit(code)
}

func needPCSC(tb testing.TB) {
	tb.Helper()
	pcsc.Need(tb)
}

// plugCard starts a virtual key in slot i and opens it with piv-go.
func plugCard(tb testing.TB, i int, o vkey.Options) (*vkey.Card, *piv.YubiKey) {
	tb.Helper()
	card := plugOnly(tb, i, o)
	yk := openWhenReady(tb, pcsc.Slots[i].Reader)
	tb.Cleanup(func() { yk.Close() })
	return card, yk
}

// plugOnly starts a virtual key in slot i and waits until PC/SC sees it,
// leaving the reader free for another client.
func plugOnly(tb testing.TB, i int, o vkey.Options) *vkey.Card {
	tb.Helper()
	needPCSC(tb)
	card, err := vkey.New(o)
	if err != nil {
		tb.Fatal(err)
	}
	unplug, err := pcsc.Plug(card, i)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(unplug)
	openWhenReady(tb, pcsc.Slots[i].Reader).Close()
	return card
}

// openWhenReady opens the card in reader once pcscd has seen it.
func openWhenReady(tb testing.TB, reader string) *piv.YubiKey {
	tb.Helper()
	yk, err := vkeytest.OpenWhenReady(reader)
	if err != nil {
		tb.Fatal(err)
	}
	return yk
}

func TestPIVGoEndToEnd(t *testing.T) {
	ca, err := vkey.NewCA(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, yk := plugCard(t, 0, vkey.Options{CA: ca, Serial: 20260001, FormFactor: 0x04})
	if v := yk.Version(); v != (piv.Version{Major: 5, Minor: 7, Patch: 4}) {
		t.Fatalf("version %v", v)
	}
	if s, err := yk.Serial(); err != nil || s != 20260001 {
		t.Fatalf("serial %d, %v", s, err)
	}
	if ff, err := yk.FormFactor(); err != nil || ff != piv.Formfactor(0x04) {
		t.Fatalf("form factor %v, %v", ff, err)
	}
	mk := make([]byte, 24)
	rand.Read(mk)
	if err := yk.SetManagementKey(piv.DefaultManagementKey, mk); err != nil {
		t.Fatal(err)
	}
	if err := yk.SetPIN(piv.DefaultPIN, "86420135"); err != nil {
		t.Fatal(err)
	}
	pub, err := yk.GenerateKey(mk, piv.SlotAuthentication, piv.Key{
		Algorithm: piv.AlgorithmEC256, PINPolicy: piv.PINPolicyOnce, TouchPolicy: piv.TouchPolicyAlways,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkAttestation(t, yk, ca, pub)
	checkSignAndECDH(t, yk, pub)
	checkCertificateAndMetadata(t, yk, mk, pub)
}

func checkAttestation(t *testing.T, yk *piv.YubiKey, ca *vkey.CA, pub any) {
	t.Helper()
	slot, err := yk.Attest(piv.SlotAuthentication)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := yk.AttestationCertificate()
	if err != nil {
		t.Fatal(err)
	}
	ev, err := attest.VerifyPIV(slot, dev, attest.PIVOptions{Time: time.Now(), Roots: []*x509.Certificate{ca.Root()}, ExpectedPublicKey: pub})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Serial != 20260001 || ev.TouchPolicy != "always" || ev.PINPolicy != "once" || ev.FormFactor != "USB-C Nano" {
		t.Fatalf("evidence %+v", ev)
	}
	// piv-go's own verifier, given the virtual CA as its root, agrees.
	pool := x509.NewCertPool()
	pool.AddCert(ca.Root())
	v := piv.Verifier{Roots: pool}
	if a, err := v.Verify(dev, slot); err != nil || a.Serial != 20260001 {
		t.Fatalf("piv-go verifier: %+v %v", a, err)
	}
	if _, err := attest.VerifyPIV(slot, dev, attest.PIVOptions{Time: time.Now(), ExpectedPublicKey: pub}); !errors.Is(err, attest.ErrUntrustedChain) {
		t.Fatalf("without the virtual CA configured the chain must be untrusted: %v", err)
	}
}

func checkSignAndECDH(t *testing.T, yk *piv.YubiKey, pub any) {
	t.Helper()
	priv, err := yk.PrivateKey(piv.SlotAuthentication, pub, piv.KeyAuth{PIN: "86420135"})
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("keyfleet"))
	sig, err := priv.(*piv.ECDSAPrivateKey).Sign(rand.Reader, digest[:], nil)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest[:], sig) {
		t.Fatal("signature does not verify")
	}
	peer, _ := ecdh.P256().GenerateKey(rand.Reader)
	secret, err := priv.(*piv.ECDSAPrivateKey).ECDH(peer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	cardPub, _ := pub.(*ecdsa.PublicKey).ECDH()
	if want, _ := peer.ECDH(cardPub); !bytes.Equal(secret, want) {
		t.Fatal("ECDH secrets differ")
	}
}

func checkCertificateAndMetadata(t *testing.T, yk *piv.YubiKey, mk []byte, pub any) {
	t.Helper()
	cert := selfSigned(t)
	if err := yk.SetCertificate(mk, piv.SlotAuthentication, cert); err != nil {
		t.Fatal(err)
	}
	got, err := yk.Certificate(piv.SlotAuthentication)
	if err != nil || !bytes.Equal(got.Raw, cert.Raw) {
		t.Fatalf("certificate read back: %v", err)
	}
	if err := yk.SetMetadata(mk, &piv.Metadata{ManagementKey: &mk}); err != nil {
		t.Fatal(err)
	}
	md, err := yk.Metadata("86420135")
	if err != nil || md.ManagementKey == nil || !bytes.Equal(*md.ManagementKey, mk) {
		t.Fatalf("PIN-protected management key: %v", err)
	}
	ki, err := yk.KeyInfo(piv.SlotAuthentication)
	if err != nil || ki.Origin != piv.OriginGenerated || ki.TouchPolicy != piv.TouchPolicyAlways {
		t.Fatalf("key info %+v, %v", ki, err)
	}
	if _, err := yk.KeyInfo(piv.SlotSignature); !errors.Is(err, piv.ErrNotFound) {
		t.Fatalf("an empty slot: %v", err)
	}
}

func selfSigned(t *testing.T) *x509.Certificate {
	t.Helper()
	k, _ := rsaKey()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: strings.Repeat("long subject ", 10)},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func TestWrongPINShowsRetriesThroughPCSC(t *testing.T) {
	_, yk := plugCard(t, 1, vkey.Options{CA: mustCA(t)})
	err := yk.VerifyPIN("999999")
	var ae piv.AuthErr
	if !errors.As(err, &ae) || ae.Retries != 2 {
		t.Fatalf("wrong PIN: %v", err)
	}
	if n, err := yk.Retries(); err != nil || n != 2 {
		t.Fatalf("retries %d, %v", n, err)
	}
	if err := yk.Reset(); err != nil {
		t.Fatalf("reset: %v", err)
	}
	if n, err := yk.Retries(); err != nil || n != 3 {
		t.Fatalf("retries after reset %d, %v", n, err)
	}
}

func mustCA(tb testing.TB) *vkey.CA {
	ca, err := vkey.NewCA(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return ca
}

// BenchmarkAPDURoundTrip measures one APDU (GET SERIAL) through piv-go,
// libpcsclite, pcscd and vpcd to the virtual key and back.
func BenchmarkAPDURoundTrip(b *testing.B) {
	card, yk := plugCard(b, 0, vkey.Options{CA: mustCA(b)})
	before := card.APDUs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := yk.Serial(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(card.APDUs()-before)/float64(b.N), "apdus/op")
}

func Example() {
	ca, _ := vkey.NewCA(nil)
	card, _ := vkey.New(vkey.Options{CA: ca, Serial: 12345678})
	card.Transmit([]byte{0x00, 0xa4, 0x04, 0x00, 0x05, 0xa0, 0x00, 0x00, 0x03, 0x08})
	fmt.Printf("% x\n", card.Transmit([]byte{0x00, 0xf8, 0x00, 0x00}))
	// Output: 00 bc 61 4e 90 00
}

func rsaKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P384(), rand.Reader) }
