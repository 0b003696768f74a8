package vkey

// BER-TLV as PIV uses it (ISO/IEC 7816-4 §5.2): one- or multi-byte tags,
// definite lengths in short or long form.

// tlv encodes one tag (up to three bytes, given as an int) and its value.
func tlv(tag int, value []byte) []byte {
	var out []byte
	switch {
	case tag > 0xffff:
		out = append(out, byte(tag>>16), byte(tag>>8), byte(tag))
	case tag > 0xff:
		out = append(out, byte(tag>>8), byte(tag))
	default:
		out = append(out, byte(tag))
	}
	out = append(out, tlvLength(len(value))...)
	return append(out, value...)
}

func tlvLength(n int) []byte {
	switch {
	case n < 0x80:
		return []byte{byte(n)}
	case n <= 0xff:
		return []byte{0x81, byte(n)}
	case n <= 0xffff:
		return []byte{0x82, byte(n >> 8), byte(n)}
	default:
		return []byte{0x83, byte(n >> 16), byte(n >> 8), byte(n)}
	}
}

// tlvItem is one parsed element.
type tlvItem struct {
	tag   int
	value []byte
}

// parseTLV splits b into elements. It reports false for malformed input.
func parseTLV(b []byte) ([]tlvItem, bool) {
	var items []tlvItem
	for len(b) > 0 {
		tag, rest, ok := readTag(b)
		if !ok {
			return nil, false
		}
		n, rest, ok := readLength(rest)
		if !ok || n > len(rest) {
			return nil, false
		}
		items = append(items, tlvItem{tag: tag, value: rest[:n]})
		b = rest[n:]
	}
	return items, true
}

func readTag(b []byte) (int, []byte, bool) {
	tag := int(b[0])
	b = b[1:]
	if tag&0x1f != 0x1f {
		return tag, b, true
	}
	for i := 0; i < 2; i++ {
		if len(b) == 0 {
			return 0, nil, false
		}
		tag = tag<<8 | int(b[0])
		more := b[0]&0x80 != 0
		b = b[1:]
		if !more {
			return tag, b, true
		}
	}
	return 0, nil, false
}

func readLength(b []byte) (int, []byte, bool) {
	if len(b) == 0 {
		return 0, nil, false
	}
	first := b[0]
	b = b[1:]
	if first < 0x80 {
		return int(first), b, true
	}
	k := int(first & 0x7f)
	if k == 0 || k > 3 || len(b) < k {
		return 0, nil, false
	}
	n := 0
	for _, x := range b[:k] {
		n = n<<8 | int(x)
	}
	return n, b[k:], true
}

// findTLV returns the value of the first element with tag, or false.
func findTLV(items []tlvItem, tag int) ([]byte, bool) {
	for _, it := range items {
		if it.tag == tag {
			return it.value, true
		}
	}
	return nil, false
}
