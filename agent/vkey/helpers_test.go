package vkey

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/rand"
	"sync"
	"testing"
)

var (
	sharedCAOnce sync.Once
	sharedCA     *CA
)

func testCA(t testing.TB) *CA {
	sharedCAOnce.Do(func() {
		ca, err := NewCA(nil)
		if err != nil {
			t.Fatal(err)
		}
		sharedCA = ca
	})
	return sharedCA
}

// testCard is a card driven the way piv-go drives one: short APDUs,
// command chaining above 255 bytes, GET RESPONSE after 61xx.
type testCard struct {
	t *testing.T
	c *Card
}

func newTestCard(t *testing.T, o Options) *testCard {
	t.Helper()
	if o.CA == nil {
		o.CA = testCA(t)
	}
	if o.Serial == 0 {
		o.Serial = 31337001
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	tc := &testCard{t: t, c: c}
	tc.mustOK(0xa4, 0x04, 0x00, aidPIV[:5])
	return tc
}

func (tc *testCard) send(ins, p1, p2 byte, data []byte) ([]byte, uint16) {
	var out []byte
	for len(data) > 255 {
		r := tc.c.Transmit(append([]byte{0x10, ins, p1, p2, 0xff}, data[:255]...))
		if sw := swOf(r); sw != swOK {
			return nil, sw
		}
		data = data[255:]
	}
	apdu := []byte{0x00, ins, p1, p2}
	if len(data) > 0 {
		apdu = append(append(apdu, byte(len(data))), data...)
	}
	r := tc.c.Transmit(apdu)
	for swOf(r)&0xff00 == swMoreData {
		out = append(out, r[:len(r)-2]...)
		r = tc.c.Transmit([]byte{0x00, 0xc0, 0x00, 0x00, 0x00})
	}
	return append(out, r[:len(r)-2]...), swOf(r)
}

func swOf(r []byte) uint16 { return uint16(r[len(r)-2])<<8 | uint16(r[len(r)-1]) }

func (tc *testCard) mustOK(ins, p1, p2 byte, data []byte) []byte {
	tc.t.Helper()
	out, sw := tc.send(ins, p1, p2, data)
	if sw != swOK {
		tc.t.Fatalf("INS %02x P1 %02x P2 %02x: status %04x", ins, p1, p2, sw)
	}
	return out
}

func (tc *testCard) wantSW(want uint16, ins, p1, p2 byte, data []byte) []byte {
	tc.t.Helper()
	out, sw := tc.send(ins, p1, p2, data)
	if sw != want {
		tc.t.Fatalf("INS %02x P1 %02x P2 %02x: status %04x, want %04x", ins, p1, p2, sw, want)
	}
	return out
}

func (tc *testCard) verifyPIN(pin string) uint16 {
	_, sw := tc.send(0x20, 0x00, 0x80, padPIN(pin))
	return sw
}

// authMgmt runs the mutual management key authentication of SP 800-73-4
// part 2 Appendix A.1 and returns the final status.
func (tc *testCard) authMgmt(alg byte, key []byte) uint16 {
	tc.t.Helper()
	var block cipher.Block
	var err error
	if alg == alg3DES {
		block, err = des.NewTripleDESCipher(key)
	} else {
		block, err = aes.NewCipher(key)
	}
	if err != nil {
		tc.t.Fatal(err)
	}
	n := block.BlockSize()
	resp, sw := tc.send(0x87, alg, 0x9b, []byte{0x7c, 0x02, 0x80, 0x00})
	if sw != swOK {
		return sw
	}
	if len(resp) != 4+n || !bytes.Equal(resp[:4], []byte{0x7c, byte(n + 2), 0x80, byte(n)}) {
		tc.t.Fatalf("witness answer %x", resp)
	}
	witness := make([]byte, n)
	block.Decrypt(witness, resp[4:])
	challenge := make([]byte, n)
	rand.Read(challenge)
	data := concat(tlv(0x80, witness), tlv(0x81, challenge))
	resp, sw = tc.send(0x87, alg, 0x9b, tlv(0x7c, data))
	if sw != swOK {
		return sw
	}
	want := make([]byte, n)
	block.Encrypt(want, challenge)
	if !bytes.Equal(resp, tlv(0x7c, tlv(0x82, want))) {
		tc.t.Fatalf("the card's response does not prove the key")
	}
	return sw
}

func (tc *testCard) mustAuthDefault() {
	tc.t.Helper()
	alg := byte(alg3DES)
	if fwAtLeast(tc.c.Firmware(), 5, 7, 0) {
		alg = algAES192
	}
	if sw := tc.authMgmt(alg, DefaultManagementKey); sw != swOK {
		tc.t.Fatalf("management key authentication: %04x", sw)
	}
}

func genTemplate(alg, pp, tp byte) []byte {
	return tlv(0xac, concat(tlv(0x80, []byte{alg}), tlv(0xaa, []byte{pp}), tlv(0xab, []byte{tp})))
}
