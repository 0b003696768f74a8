package vkey

// Status words (ISO/IEC 7816-4 §5.6, NIST SP 800-73-4 part 2 §3).
const (
	swOK                    = 0x9000
	swMoreData              = 0x6100 // | bytes remaining (00 = 256 or more)
	swVerifyFail            = 0x63c0 // | retries left
	swWrongLength           = 0x6700
	swSecurityStatus        = 0x6982
	swAuthBlocked           = 0x6983
	swConditions            = 0x6985
	swWrongData             = 0x6a80
	swFuncNotSupported      = 0x6a81
	swFileNotFound          = 0x6a82
	swNotEnoughMemory       = 0x6a84
	swIncorrectP1P2         = 0x6a86
	swRefNotFound           = 0x6a88
	swInsNotSupported       = 0x6d00
	swClaNotSupported       = 0x6e00
	swUnknown               = 0x6f00
	claChainingBit     byte = 0x10
	insGetResponse     byte = 0xc0
	insSelect          byte = 0xa4
	shortLeMax              = 256
)

// command is a parsed command APDU.
type command struct {
	cla, ins, p1, p2 byte
	data             []byte
	le               int // expected length; 0 when absent
	extended         bool
}

// parseCommand parses the four ISO/IEC 7816-4 §5.1 cases in short and
// extended form. It reports false for a malformed APDU.
func parseCommand(b []byte) (command, bool) {
	if len(b) < 4 {
		return command{}, false
	}
	c := command{cla: b[0], ins: b[1], p1: b[2], p2: b[3]}
	body := b[4:]
	switch {
	case len(body) == 0: // case 1
		return c, true
	case len(body) == 1: // case 2S
		c.le = leShort(body[0])
		return c, true
	case body[0] != 0: // case 3S / 4S
		return parseShortBody(c, body)
	default: // extended: 00 then two length bytes
		return parseExtendedBody(c, body)
	}
}

func leShort(b byte) int {
	if b == 0 {
		return shortLeMax
	}
	return int(b)
}

func parseShortBody(c command, body []byte) (command, bool) {
	lc := int(body[0])
	switch len(body) {
	case 1 + lc:
	case 2 + lc:
		c.le = leShort(body[1+lc])
	default:
		return c, false
	}
	c.data = body[1 : 1+lc]
	return c, true
}

func parseExtendedBody(c command, body []byte) (command, bool) {
	if len(body) < 3 {
		return c, false
	}
	c.extended = true
	n := int(body[1])<<8 | int(body[2])
	if len(body) == 3 { // case 2E
		if n == 0 {
			n = 65536
		}
		c.le = n
		return c, true
	}
	switch len(body) {
	case 3 + n:
	case 5 + n:
		le := int(body[3+n])<<8 | int(body[4+n])
		if le == 0 {
			le = 65536
		}
		c.le = le
	default:
		return c, false
	}
	if n == 0 {
		return c, false
	}
	c.data = body[3 : 3+n]
	return c, true
}

// response is what an applet answers: data and a status word.
type response struct {
	data []byte
	sw   uint16
}

func ok(data []byte) response   { return response{data: data, sw: swOK} }
func status(sw uint16) response { return response{sw: sw} }
func (r response) bytes() []byte {
	out := make([]byte, 0, len(r.data)+2)
	out = append(out, r.data...)
	return append(out, byte(r.sw>>8), byte(r.sw))
}
