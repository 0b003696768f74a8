package vkey

import (
	"bytes"
	"testing"
)

func TestParseCommand(t *testing.T) {
	long := bytes.Repeat([]byte{0xab}, 300)
	tests := []struct {
		name     string
		in       []byte
		ok       bool
		data     int
		le       int
		extended bool
	}{
		{"case 1 has no body", []byte{0, 0xfd, 0, 0}, true, 0, 0, false},
		{"case 2 short reads Le", []byte{0, 0xfd, 0, 0, 0}, true, 0, 256, false},
		{"case 3 short carries data", []byte{0, 0xa4, 4, 0, 2, 1, 2}, true, 2, 0, false},
		{"case 4 short carries data and Le", []byte{0, 0xa4, 4, 0, 2, 1, 2, 0x10}, true, 2, 16, false},
		{"case 2 extended reads a 2-byte Le", []byte{0, 0xcb, 0x3f, 0xff, 0, 0, 0}, true, 0, 65536, true},
		{"case 3 extended carries long data", append([]byte{0, 0xdb, 0x3f, 0xff, 0, 0x01, 0x2c}, long...), true, 300, 0, true},
		{"case 4 extended carries Le", append(append([]byte{0, 0xdb, 0x3f, 0xff, 0, 0x01, 0x2c}, long...), 0, 0), true, 300, 65536, true},
		{"a short Lc longer than the data is refused", []byte{0, 0xa4, 4, 0, 5, 1}, false, 0, 0, false},
		{"three bytes are refused", []byte{0, 0xa4, 4}, false, 0, 0, false},
		{"an extended header without data is refused", []byte{0, 0xdb, 0, 0, 0, 0}, false, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := parseCommand(tt.in)
			if ok != tt.ok {
				t.Fatalf("ok = %v", ok)
			}
			if ok && (len(c.data) != tt.data || c.le != tt.le || c.extended != tt.extended) {
				t.Fatalf("got data %d le %d ext %v", len(c.data), c.le, c.extended)
			}
		})
	}
}

func TestTLVRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 255, 256, 70000} {
		v := bytes.Repeat([]byte{7}, n)
		items, ok := parseTLV(concat(tlv(0x5fc105, v), tlv(0x7f49, nil), tlv(0x53, []byte{1})))
		if !ok || len(items) != 3 || items[0].tag != 0x5fc105 || len(items[0].value) != n || items[1].tag != 0x7f49 {
			t.Fatalf("length %d: %v %v", n, ok, items)
		}
	}
}

func TestATRChecksumIsValid(t *testing.T) {
	var x byte
	for _, b := range ATR[1:] { // TCK: the XOR of T0 to TCK is zero (ISO/IEC 7816-3 §8.2.5)
		x ^= b
	}
	if x != 0 {
		t.Fatalf("ATR checksum off by %02x", x)
	}
}
