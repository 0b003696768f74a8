package vkey

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/attest"
)

func TestIdentity(t *testing.T) {
	tc := newTestCard(t, Options{Serial: 23456789, Firmware: [3]byte{5, 4, 3}, FormFactor: 0x03})
	if v := tc.mustOK(0xfd, 0, 0, nil); !bytes.Equal(v, []byte{5, 4, 3}) {
		t.Fatalf("version %x", v)
	}
	if s := tc.mustOK(0xf8, 0, 0, nil); binary.BigEndian.Uint32(s) != 23456789 {
		t.Fatalf("serial %x", s)
	}
	sel := tc.mustOK(0xa4, 0x04, 0x00, aidMgmt)
	if !strings.Contains(string(sel), "5.4.3") {
		t.Fatalf("management select %q", sel)
	}
	info := tc.mustOK(0x1d, 0, 0, nil)
	items, ok := parseTLV(info[1:])
	ff, _ := findTLV(items, 0x04)
	serial, _ := findTLV(items, 0x02)
	if !ok || int(info[0]) != len(info)-1 || !bytes.Equal(ff, []byte{0x03}) || binary.BigEndian.Uint32(serial) != 23456789 {
		t.Fatalf("device info %x", info)
	}
	tc.wantSW(swFileNotFound, 0xa4, 0x04, 0x00, []byte{0xa0, 0, 0, 0, 0x99, 1})
}

func TestSerialOnYubiKey4ComesFromTheOTPApplet(t *testing.T) {
	tc := newTestCard(t, Options{Serial: 4444444, Firmware: [3]byte{4, 3, 7}})
	tc.wantSW(swInsNotSupported, 0xf8, 0, 0, nil)
	for _, aid := range [][]byte{aidOTP, append(bytes.Clone(aidOTP), 0x01)} { // ykman's, and yubico-piv-tool's and piv-go's
		tc.mustOK(0xa4, 0x04, 0x00, aid)
		if s := tc.mustOK(0x01, 0x10, 0, nil); binary.BigEndian.Uint32(s) != 4444444 {
			t.Fatalf("serial %x after selecting %x", s, aid)
		}
	}
}

func TestPINLifecycle(t *testing.T) {
	tc := newTestCard(t, Options{})
	steps := []struct {
		name string
		ins  byte
		p2   byte
		data []byte
		want uint16
	}{
		{"the retries query shows three tries", 0x20, 0x80, nil, 0x63c3},
		{"a wrong PIN leaves two", 0x20, 0x80, padPIN("000000"), 0x63c2},
		{"the default PIN verifies and restores the counter", 0x20, 0x80, padPIN(DefaultPIN), swOK},
		{"a verified PIN answers the query with 9000", 0x20, 0x80, nil, swOK},
		{"a PIN shorter than six is refused", 0x24, 0x80, append(padPIN(DefaultPIN), padPIN("12345")...), swWrongData},
		{"the PIN changes", 0x24, 0x80, append(padPIN(DefaultPIN), padPIN("24681357")...), swOK},
		{"the old PIN fails", 0x20, 0x80, padPIN(DefaultPIN), 0x63c2},
		{"again", 0x20, 0x80, padPIN(DefaultPIN), 0x63c1},
		{"the last try fails", 0x20, 0x80, padPIN(DefaultPIN), 0x63c0},
		{"now the PIN is blocked", 0x20, 0x80, padPIN("24681357"), swAuthBlocked},
		{"the query says blocked", 0x20, 0x80, nil, swAuthBlocked},
		{"a wrong PUK cannot unblock", 0x2c, 0x80, append(padPIN("87654321"), padPIN("555555")...), 0x63c2},
		{"the PUK unblocks with a new PIN", 0x2c, 0x80, append(padPIN(DefaultPUK), padPIN("555555")...), swOK},
		{"the new PIN verifies", 0x20, 0x80, padPIN("555555"), swOK},
		{"the PUK changes", 0x24, 0x81, append(padPIN(DefaultPUK), padPIN("99887766")...), swOK},
		{"a bad PIN length is refused", 0x20, 0x80, []byte("1234"), swWrongData},
	}
	for _, s := range steps {
		if _, sw := tc.send(s.ins, 0, s.p2, s.data); sw != s.want {
			t.Fatalf("%s: status %04x, want %04x", s.name, sw, s.want)
		}
	}
}

func TestManagementKeyAuthentication(t *testing.T) {
	aes128 := bytes.Repeat([]byte{0x42}, 16)
	tests := []struct {
		name     string
		firmware [3]byte
		alg      byte
	}{
		{"firmware 5.4 ships a 3DES default key", [3]byte{5, 4, 3}, alg3DES},
		{"firmware 5.7 ships an AES-192 default key", [3]byte{5, 7, 4}, algAES192},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := newTestCard(t, Options{Firmware: tt.firmware})
			meta := tc.mustOK(0xf7, 0, 0x9b, nil)
			if meta[2] != tt.alg {
				t.Fatalf("metadata alg %02x", meta[2])
			}
			if sw := tc.authMgmt(tt.alg, bytes.Repeat([]byte{9}, 24)); sw != swSecurityStatus {
				t.Fatalf("a wrong key: %04x", sw)
			}
			tc.wantSW(swSecurityStatus, 0x47, 0, 0x9a, genTemplate(algECP256, 2, 1))
			if sw := tc.authMgmt(tt.alg, DefaultManagementKey); sw != swOK {
				t.Fatalf("the default key: %04x", sw)
			}
			tc.mustOK(0xff, 0xff, 0xff, concat([]byte{algAES128, 0x9b, 16}, aes128))
			if sw := tc.authMgmt(algAES128, aes128); sw != swOK {
				t.Fatalf("the new AES-128 key: %04x", sw)
			}
		})
	}
}

func TestKeysSignAndAttest(t *testing.T) {
	tests := []struct {
		name   string
		alg    byte
		algStr string
		slot   byte
		pp, tp byte
	}{
		{"EC P-256 in 9a with PIN once", algECP256, "EC-P256", 0x9a, pinOnce, touchNever},
		{"EC P-384 in 9c with PIN always and touch always", algECP384, "EC-P384", 0x9c, pinAlways, touchAlways},
		{"RSA 2048 in 9d with touch cached", algRSA2048, "RSA-2048", 0x9d, pinOnce, touchCached},
		{"EC P-256 in 9e with PIN never", algECP256, "EC-P256", 0x9e, pinNever, touchNever},
	}
	ca := testCA(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := newTestCard(t, Options{Serial: 5550123, FormFactor: 0x03})
			tc.mustAuthDefault()
			pub := tc.generate(tt.slot, tt.alg, tt.pp, tt.tp)
			der := tc.mustOK(0xf9, tt.slot, 0, nil)
			slotCert, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := attest.VerifyPIV(slotCert, tc.c.devCert, attest.PIVOptions{
				Time: time.Now(), Roots: []*x509.Certificate{ca.Root()}, ExcludeBuiltinRoots: true, ExpectedPublicKey: pub,
			})
			if err != nil {
				t.Fatal(err)
			}
			if ev.Serial != 5550123 || ev.Firmware != "5.7.4" || ev.KeyAlgorithm != tt.algStr || ev.FormFactor != "USB-C Keychain" {
				t.Fatalf("evidence %+v", ev)
			}
			tc.checkSign(tt.slot, tt.alg, tt.pp, pub)
		})
	}
}

func (tc *testCard) generate(slot, alg, pp, tp byte) crypto.PublicKey {
	tc.t.Helper()
	resp := tc.mustOK(0x47, 0, slot, genTemplate(alg, pp, tp))
	items, ok := parseTLV(resp)
	inner, found := findTLV(items, 0x7f49)
	fields, ok2 := parseTLV(inner)
	if !ok || !found || !ok2 {
		tc.t.Fatalf("generate answer %x", resp)
	}
	if p, found := findTLV(fields, 0x86); found {
		curve := elliptic.P256()
		if alg == algECP384 {
			curve = elliptic.P384()
		}
		k, err := ecdsa.ParseUncompressedPublicKey(curve, p)
		if err != nil {
			tc.t.Fatal(err)
		}
		return k
	}
	n, _ := findTLV(fields, 0x81)
	e, _ := findTLV(fields, 0x82)
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
}

func (tc *testCard) checkSign(slot, alg, pp byte, pub crypto.PublicKey) {
	tc.t.Helper()
	digest := sha256.Sum256([]byte("enrolment challenge"))
	in := digest[:]
	if k, isRSA := pub.(*rsa.PublicKey); isRSA {
		in = pkcs1Pad(tc.t, k, digest[:])
	}
	req := tlv(0x7c, concat([]byte{0x82, 0x00}, tlv(0x81, in)))
	if pp != pinNever {
		tc.wantSW(swSecurityStatus, 0x87, alg, slot, req)
		tc.verifyPIN(DefaultPIN)
	}
	resp := tc.mustOK(0x87, alg, slot, req)
	if pp == pinAlways {
		tc.wantSW(swSecurityStatus, 0x87, alg, slot, req) // PIN always: once per VERIFY
	}
	outer, _ := parseTLV(resp)
	inner, _ := findTLV(outer, 0x7c)
	items, _ := parseTLV(inner)
	sig, _ := findTLV(items, 0x82)
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(k, digest[:], sig) {
			tc.t.Fatal("the ECDSA signature does not verify")
		}
	case *rsa.PublicKey:
		if err := rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig); err != nil {
			tc.t.Fatal(err)
		}
	}
}

func pkcs1Pad(t *testing.T, k *rsa.PublicKey, digest []byte) []byte {
	prefix := []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}
	t.Helper()
	d := append(prefix, digest...)
	out := append([]byte{0x00, 0x01}, bytes.Repeat([]byte{0xff}, k.Size()-3-len(d))...)
	return append(append(out, 0x00), d...)
}

func TestECDH(t *testing.T) {
	tc := newTestCard(t, Options{})
	tc.mustAuthDefault()
	pub := tc.generate(0x9d, algECP256, pinNever, touchNever).(*ecdsa.PublicKey)
	peer, _ := ecdh.P256().GenerateKey(rand.Reader)
	resp := tc.mustOK(0x87, algECP256, 0x9d, tlv(0x7c, concat([]byte{0x82, 0x00}, tlv(0x85, peer.PublicKey().Bytes()))))
	cardPub, _ := pub.ECDH()
	want, _ := peer.ECDH(cardPub)
	if !bytes.Equal(resp[4:], want) {
		t.Fatal("the shared secrets differ")
	}
}

func TestTouchDenied(t *testing.T) {
	touched := 0
	tc := newTestCard(t, Options{Touch: TouchDeny, OnTouch: func() { touched++ }})
	tc.mustAuthDefault()
	tc.generate(0x9a, algECP256, pinNever, touchAlways)
	digest := sha256.Sum256([]byte("x"))
	tc.wantSW(swConditions, 0x87, algECP256, 0x9a, tlv(0x7c, concat([]byte{0x82, 0x00}, tlv(0x81, digest[:]))))
	if touched != 1 {
		t.Fatalf("OnTouch called %d times", touched)
	}
}

func TestTouchTimeout(t *testing.T) {
	tc := newTestCard(t, Options{Touch: TouchTimeout, TouchTimeout: time.Millisecond})
	tc.mustAuthDefault()
	tc.generate(0x9a, algECP256, pinNever, touchCached)
	digest := sha256.Sum256([]byte("x"))
	tc.wantSW(swConditions, 0x87, algECP256, 0x9a, tlv(0x7c, concat([]byte{0x82, 0x00}, tlv(0x81, digest[:]))))
}

func TestMetadataAndImport(t *testing.T) {
	tc := newTestCard(t, Options{})
	tc.wantSW(swRefNotFound, 0xf7, 0, 0x9a, nil)
	tc.mustAuthDefault()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	d, _ := k.Bytes()
	tc.mustOK(0xfe, algECP256, 0x9a, concat(tlv(0x06, d), tlv(0xaa, []byte{pinNever}), tlv(0xab, []byte{touchNever})))
	meta, ok := parseTLV(tc.mustOK(0xf7, 0, 0x9a, nil))
	origin, _ := findTLV(meta, 0x03)
	pol, _ := findTLV(meta, 0x02)
	if !ok || !bytes.Equal(origin, []byte{originImported}) || !bytes.Equal(pol, []byte{pinNever, touchNever}) {
		t.Fatalf("metadata %v", meta)
	}
	tc.wantSW(swWrongData, 0xf9, 0x9a, 0, nil) // imported keys are not attested
	pin, _ := parseTLV(tc.mustOK(0xf7, 0, 0x80, nil))
	if v, _ := findTLV(pin, 0x06); !bytes.Equal(v, []byte{3, 3}) {
		t.Fatalf("PIN retries metadata %x", v)
	}
}

func TestDataObjectsChainingAndGetResponse(t *testing.T) {
	tc := newTestCard(t, Options{})
	tag := tlv(0x5c, []byte{0x5f, 0xc1, 0x05})
	tc.wantSW(swFileNotFound, 0xcb, 0x3f, 0xff, tag)
	obj := concat(tlv(0x70, bytes.Repeat([]byte{0x5a}, 1200)), tlv(0x71, []byte{0}), tlv(0xfe, nil))
	put := concat(tag, tlv(0x53, obj))
	tc.wantSW(swSecurityStatus, 0xdb, 0x3f, 0xff, put)
	tc.mustAuthDefault()
	tc.mustOK(0xdb, 0x3f, 0xff, put) // 1.2 kB: five chained short APDUs
	if got := tc.mustOK(0xcb, 0x3f, 0xff, tag); !bytes.Equal(got, tlv(0x53, obj)) {
		t.Fatal("the object read back differs (GET RESPONSE)")
	}
	ext := concat([]byte{0x00, 0xcb, 0x3f, 0xff, 0x00, 0x00, byte(len(tag))}, tag, []byte{0, 0})
	if r := tc.c.Transmit(ext); swOf(r) != swOK || !bytes.Equal(r[:len(r)-2], tlv(0x53, obj)) {
		t.Fatalf("an extended APDU gets the whole object at once: %04x", swOf(r))
	}
	f9 := tc.mustOK(0xcb, 0x3f, 0xff, tlv(0x5c, []byte{0x5f, 0xff, 0x01}))
	if !bytes.Contains(f9, tc.c.devCert.Raw) {
		t.Fatal("the F9 certificate object is missing")
	}
	tc.wantSW(swSecurityStatus, 0xcb, 0x3f, 0xff, tlv(0x5c, []byte{0x5f, 0xc1, 0x09}))
}

func TestSetRetriesAndReset(t *testing.T) {
	tc := newTestCard(t, Options{})
	tc.wantSW(swSecurityStatus, 0xfa, 5, 4, nil)
	tc.mustAuthDefault()
	tc.verifyPIN(DefaultPIN)
	tc.mustOK(0xfa, 5, 4, nil)
	tc.wantSW(0x63c5, 0x20, 0, 0x80, nil)
	tc.generate(0x9a, algECP256, pinOnce, touchNever)
	tc.wantSW(swConditions, 0xfb, 0, 0, nil) // not blocked yet
	for tc.verifyPIN("000000") != 0x63c0 {
	}
	for {
		if _, sw := tc.send(0x24, 0, 0x81, append(padPIN("00000000"), padPIN("00000000")...)); sw == 0x63c0 {
			break
		}
	}
	tc.mustOK(0xfb, 0, 0, nil)
	tc.wantSW(swRefNotFound, 0xf7, 0, 0x9a, nil)
	if sw := tc.verifyPIN(DefaultPIN); sw != swOK {
		t.Fatalf("the default PIN after reset: %04x", sw)
	}
}

func TestStatePersistsAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	store := FileStore{Path: filepath.Join(dir, "card.json")}
	tc := newTestCard(t, Options{Store: store, Serial: 7654321})
	tc.mustAuthDefault()
	pub := tc.generate(0x9a, algECP256, pinNever, touchNever)
	tc.mustOK(0x24, 0, 0x80, append(padPIN(DefaultPIN), padPIN("314159")...))
	fi, err := os.Stat(store.Path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v", fi.Mode(), err)
	}
	again := newTestCard(t, Options{Store: store, Serial: 1})
	if again.c.Serial() != 7654321 {
		t.Fatalf("serial %d after restart", again.c.Serial())
	}
	if sw := again.verifyPIN("314159"); sw != swOK {
		t.Fatalf("the changed PIN after restart: %04x", sw)
	}
	meta, _ := parseTLV(again.mustOK(0xf7, 0, 0x9a, nil))
	pk, _ := findTLV(meta, 0x04)
	if !bytes.Equal(pk, encodePublic(pub)) {
		t.Fatal("the key did not survive the restart")
	}
}

func TestSecretsNeverLogged(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// The store write fails: the card logs the error, and still no secret.
	c, err := New(Options{CA: testCA(t), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	c.opts.Store = FileStore{Path: "/nonexistent-dir/x/state.json"}
	c.Transmit([]byte{0, 0xa4, 4, 0, 5, 0xa0, 0, 0, 3, 8})
	c.Transmit(append([]byte{0, 0x24, 0, 0x80, 16}, append(padPIN(DefaultPIN), padPIN("97531864")...)...))
	out := logs.String() + c.st.String() + errString(New(Options{CA: testCA(t), Store: FileStore{Path: "/nonexistent-dir/x/state.json"}}))
	for _, secret := range []string{"97531864", DefaultPIN, "3937353331383634", "010203040506070801020304"} {
		if strings.Contains(out, secret) {
			t.Fatalf("a secret appears in logs or errors: %q", out)
		}
	}
	if !strings.Contains(out, "apdu") {
		t.Fatal("the debug log is empty: the test proves nothing")
	}
}

func errString(_ *Card, err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
