package fido2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/agent"
)

// The FIDO applet over ISO 7816 (CTAP 2.1 §11.3.3: NFC, and a YubiKey's
// CCID interface alike).
var aidFIDO = []byte{0xa0, 0x00, 0x00, 0x06, 0x47, 0x2f, 0x00, 0x01}

// PCSCPrefix starts the path of a FIDO2 key reached through PC/SC.
const PCSCPrefix = "pcsc:"

// ErrNoFIDOApplet: the card in the reader has no FIDO applet (a PIV-only
// card, a YubiKey with FIDO2 disabled over CCID).
var ErrNoFIDOApplet = errors.New("the key in this reader has no FIDO2 applet")

// card is one PC/SC connection: it sends a command APDU and returns the
// response APDU (data, SW1, SW2).
type card interface {
	transmit(apdu []byte) ([]byte, error)
	close() error
}

// nfcCTAP carries CTAP2 in NFCCTAP_MSG APDUs (CLA 80, INS 10, P1 80:
// the client accepts keep-alives) and polls NFCCTAP_GETRESPONSE (INS 11)
// while the key answers 9100 (still processing, e.g. waiting for touch).
type nfcCTAP struct {
	c card
}

var _ CTAPTransport = nfcCTAP{}

// selectFIDO selects the FIDO applet; it returns the version string it
// answers ("FIDO_2_0", or "U2F_V2" for a key that also speaks CTAP1).
func selectFIDO(c card) (string, error) {
	resp, sw, err := exchange(c, []byte{0x00, 0xa4, 0x04, 0x00}, aidFIDO)
	if err != nil {
		return "", err
	}
	if sw != 0x9000 {
		return "", ErrNoFIDOApplet
	}
	return string(resp), nil
}

func (n nfcCTAP) CTAP(req []byte) ([]byte, error) {
	resp, sw, err := exchange(n.c, []byte{0x80, 0x10, 0x80, 0x00}, req)
	for i := 0; err == nil && sw == 0x9100; i++ {
		if i > 3000 { // 30 s at 10 ms: longer than a key waits for touch
			return nil, agent.ErrTouchTimeout
		}
		time.Sleep(10 * time.Millisecond) // polling interval while the key waits for touch
		resp, sw, err = exchange(n.c, []byte{0x80, 0x11, 0x00, 0x00}, nil)
	}
	if err != nil {
		return nil, err
	}
	if sw != 0x9000 {
		return nil, fmt.Errorf("the FIDO2 applet answered status %04x", sw)
	}
	return resp, nil
}

func (n nfcCTAP) Close() error { return n.c.close() }

// exchange sends header and data as one APDU (extended when the data
// needs it; ISO/IEC 7816-4 §5.1) and collects 61xx continuations with
// GET RESPONSE.
func exchange(c card, header, data []byte) ([]byte, uint16, error) {
	apdu := append([]byte(nil), header...)
	switch {
	case len(data) == 0:
		apdu = append(apdu, 0x00)
	case len(data) <= 255:
		apdu = append(append(append(apdu, byte(len(data))), data...), 0x00)
	default:
		apdu = append(apdu, 0x00, byte(len(data)>>8), byte(len(data)))
		apdu = append(append(apdu, data...), 0x00, 0x00)
	}
	var out []byte
	for {
		r, err := c.transmit(apdu)
		if err != nil {
			return nil, 0, err
		}
		if len(r) < 2 {
			return nil, 0, errors.New("the card answered without a status word")
		}
		out = append(out, r[:len(r)-2]...)
		sw := binary.BigEndian.Uint16(r[len(r)-2:])
		if sw>>8 != 0x61 {
			return out, sw, nil
		}
		apdu = []byte{0x00, 0xc0, 0x00, 0x00, byte(sw)}
	}
}

// AIDs CardSerial selects: the PIV applet (GET SERIAL, INS F8, from
// firmware 5) and, for older YubiKeys, the OTP applet (INS 01 P1 10).
var (
	aidPIV = []byte{0xa0, 0x00, 0x00, 0x03, 0x08}
	aidOTP = []byte{0xa0, 0x00, 0x00, 0x05, 0x27, 0x20, 0x01, 0x01}
)

// CardSerial reads the serial of the YubiKey in reader over a shared
// PC/SC connection that it closes on every path. Unlike piv-go's Open,
// which keeps an exclusive handle when a card goes away while it opens
// it, it can poll a reader while a key is unplugged and plugged back in.
// Errors are PC/SC's (no card in the reader, among others) or say the
// card gave no serial.
func CardSerial(reader string) (uint32, error) {
	c, err := connect(reader)
	if err != nil {
		return 0, err
	}
	defer c.close()
	if _, sw, err := exchange(c, []byte{0x00, 0xa4, 0x04, 0x00}, aidPIV); err != nil || sw != 0x9000 {
		return 0, fmt.Errorf("the card in %q has no PIV applet (status %04x, %v)", reader, sw, err)
	}
	resp, sw, err := exchange(c, []byte{0x00, 0xf8, 0x00, 0x00}, nil)
	if err == nil && sw != 0x9000 { // firmware below 5: the OTP applet has it
		if _, sw, err = exchange(c, []byte{0x00, 0xa4, 0x04, 0x00}, aidOTP); err == nil && sw == 0x9000 {
			resp, sw, err = exchange(c, []byte{0x00, 0x01, 0x10, 0x00}, nil)
		}
	}
	if err != nil {
		return 0, err
	}
	if sw != 0x9000 || len(resp) != 4 {
		return 0, fmt.Errorf("the card in %q gave no serial (status %04x)", reader, sw)
	}
	return binary.BigEndian.Uint32(resp), nil
}

// PCSCOpener finds FIDO2 keys through PC/SC: YubiKeys (readers named
// "Yubico"/"YubiKey") whose FIDO applet answers. A workstation reaches a
// YubiKey's FIDO2 over USB HID (Opener); this is the path for NFC, and for
// the virtual key (agent/vkey) behind pcscd, which has no HID. The zero
// value is ready.
type PCSCOpener struct{}

var _ agent.FIDO2Opener = PCSCOpener{}

// Devices lists "pcsc:READER" for every YubiKey reader whose card has a
// FIDO applet.
func (PCSCOpener) Devices() ([]string, error) {
	readers, err := listReaders()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range readers {
		if !isYubiKey(r) {
			continue
		}
		if _, err := ProbePCSC(r); err == nil {
			out = append(out, PCSCPrefix+r)
		}
	}
	return out, nil
}

func isYubiKey(reader string) bool {
	l := strings.ToLower(reader)
	return strings.Contains(l, "yubikey") || strings.Contains(l, "yubico")
}

// ProbePCSC selects the FIDO applet of the card in reader and returns
// its version string. Errors wrap ErrNoFIDOApplet, or are PC/SC's.
func ProbePCSC(reader string) (string, error) {
	c, err := connect(reader)
	if err != nil {
		return "", err
	}
	defer c.close()
	return selectFIDO(c)
}

// Open connects to "pcsc:READER" (or READER) and selects the FIDO applet.
func (PCSCOpener) Open(path string) (agent.FIDO2Token, error) {
	reader := strings.TrimPrefix(path, PCSCPrefix)
	c, err := connect(reader)
	if err != nil {
		return nil, err
	}
	if _, err := selectFIDO(c); err != nil {
		c.close()
		return nil, fmt.Errorf("%s: %w", reader, err)
	}
	return NewCTAPToken(nfcCTAP{c}, PCSCPrefix+reader), nil
}

// HIDThenPCSC finds FIDO2 keys on USB HID first (libfido2) and, when
// there are none, through PC/SC: one physical YubiKey shows on both, and
// HID is its native FIDO transport.
type HIDThenPCSC struct {
	HID, PCSC agent.FIDO2Opener
}

var _ agent.FIDO2Opener = HIDThenPCSC{}

// Devices lists the HID keys, or the PC/SC ones when there are none (a
// build without libfido2 goes straight to PC/SC).
func (o HIDThenPCSC) Devices() ([]string, error) {
	paths, err := o.HID.Devices()
	if err == nil && len(paths) > 0 {
		return paths, nil
	}
	pc, pcErr := o.PCSC.Devices()
	if pcErr != nil && err != nil {
		return nil, fmt.Errorf("%w; and through PC/SC: %w", err, pcErr)
	}
	return pc, pcErr
}

// Open opens a "pcsc:" path through PC/SC and any other through HID.
func (o HIDThenPCSC) Open(path string) (agent.FIDO2Token, error) {
	if strings.HasPrefix(path, PCSCPrefix) {
		return o.PCSC.Open(path)
	}
	return o.HID.Open(path)
}
