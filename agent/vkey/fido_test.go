package vkey

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// echoCTAP answers every CTAP request with status 00 and the request.
type echoCTAP struct{}

func (echoCTAP) CTAP(req []byte) []byte { return append([]byte{0x00}, req...) }

func TestFIDOApplet(t *testing.T) {
	t.Run("a card without an authenticator has no FIDO applet", func(t *testing.T) {
		tc := newTestCard(t, Options{})
		tc.wantSW(swFileNotFound, 0xa4, 0x04, 0x00, aidFIDO)
	})
	t.Run("a card with one selects it, carries CTAP and reports FIDO2", func(t *testing.T) {
		tc := newTestCard(t, Options{FIDO2: echoCTAP{}})
		if v := tc.mustOK(0xa4, 0x04, 0x00, aidFIDO); string(v) != "FIDO_2_0" {
			t.Fatalf("select answered %q", v)
		}
		req := append([]byte{0x04}, bytes.Repeat([]byte{0xa5}, 300)...) // longer than one short APDU: chained
		var out []byte
		for rest := req; ; rest = rest[250:] {
			if len(rest) <= 250 {
				r := tc.c.Transmit(append([]byte{0x80, 0x10, 0x80, 0x00, byte(len(rest))}, append(rest, 0x00)...))
				for swOf(r)&0xff00 == swMoreData {
					out = append(out, r[:len(r)-2]...)
					r = tc.c.Transmit([]byte{0x00, 0xc0, 0x00, 0x00, 0x00})
				}
				out = append(out, r[:len(r)-2]...)
				break
			}
			if r := tc.c.Transmit(append([]byte{0x90, 0x10, 0x80, 0x00, 250}, rest[:250]...)); swOf(r) != swOK {
				t.Fatalf("chained part: %x", r)
			}
		}
		if !bytes.Equal(out, append([]byte{0x00}, req...)) {
			t.Fatalf("CTAP answer %x", out)
		}
		tc.wantSW(swClaNotSupported, 0x10, 0x00, 0x00, []byte{0x04})
		tc.mustOK(0xa4, 0x04, 0x00, aidMgmt)
		items, _ := parseTLV(tc.mustOK(0x1d, 0, 0, nil)[1:])
		caps, _ := findTLV(items, 0x01)
		if binary.BigEndian.Uint16(caps)&capFIDO2 == 0 {
			t.Fatalf("capabilities %x lack FIDO2", caps)
		}
	})
}
