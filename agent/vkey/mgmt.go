package vkey

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Application identifiers.
var (
	aidPIV  = []byte{0xa0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00}
	aidMgmt = []byte{0xa0, 0x00, 0x00, 0x05, 0x27, 0x47, 0x11, 0x17}
	aidOTP  = []byte{0xa0, 0x00, 0x00, 0x05, 0x27, 0x20, 0x01}
)

// Capability bits of the management applet's configuration (USB).
const (
	capPIV   = 0x0010
	capFIDO2 = 0x0200
)

// aidMatches accepts a full AID or a truncated one (ISO/IEC 7816-4
// §5.3.1.1: selection by a right-truncated DF name); PIV clients send
// A000000308 alone.
func aidMatches(full, given []byte) bool {
	return len(given) >= 5 && bytes.HasPrefix(full, given)
}

func (c *Card) selectApplet(cmd command) response {
	if cmd.p1 != 0x04 {
		return status(swIncorrectP1P2)
	}
	switch {
	case aidMatches(aidPIV, cmd.data):
		c.enter(appletPIV)
		// Application property template (SP 800-73-4 part 2 §3.1.1).
		return ok(tlv(0x61, concat(
			tlv(0x4f, []byte{0x00, 0x00, 0x10, 0x00, 0x01, 0x00}),
			tlv(0x79, tlv(0x4f, aidPIV[:5])),
		)))
	case aidMatches(aidMgmt, cmd.data):
		c.enter(appletMgmt)
		// ykman reads the version from the text the management applet
		// answers SELECT with.
		return ok([]byte(c.versionString()))
	case aidMatches(aidFIDO, cmd.data) && c.opts.FIDO2 != nil:
		c.enter(appletFIDO)
		return ok([]byte("FIDO_2_0")) // CTAP 2.1 §11.3.3: "U2F_V2" would offer CTAP1 too
	case aidMatches(aidOTP, cmd.data) || bytes.Equal(cmd.data, append(aidOTP[:len(aidOTP):len(aidOTP)], 0x01)):
		// A YubiKey also answers its OTP AID with an instance byte
		// (A000000527200101), as yubico-piv-tool and piv-go select it to
		// read a YubiKey 4's serial.
		c.enter(appletOTP)
		v := c.st.Firmware
		return ok([]byte{v[0], v[1], v[2], 0x01, 0x00, 0x00})
	}
	return status(swFileNotFound)
}

// enter makes applet the selected one with a fresh security status. A
// YubiKey forgets the verified PIN and the management key authentication
// whenever an applet is selected, the PIV applet again included: PIN
// policy "once" means once per selection of the PIV applet, not once per
// power-up (Yubico's PIV guide, "PIN policy"). A cached touch is a timer
// on the key and survives.
func (c *Card) enter(applet int) {
	c.sess = session{applet: applet, touchUntil: c.sess.touchUntil}
}

func (c *Card) versionString() string {
	v := c.st.Firmware
	return fmt.Sprintf("keyfleet virtual YubiKey - FW version %d.%d.%d", v[0], v[1], v[2])
}

// mgmt is the management applet: INS 1D reads the device configuration.
func (c *Card) mgmt(cmd command) response {
	if cmd.ins != 0x1d {
		return status(swInsNotSupported)
	}
	return ok(c.deviceInfo())
}

// deviceInfo is the management applet's configuration: one length byte,
// then TLVs (01 USB capabilities, 02 serial, 03 enabled capabilities,
// 04 form factor, 05 firmware).
func (c *Card) deviceInfo() []byte {
	capBits := uint16(capPIV)
	if c.opts.FIDO2 != nil {
		capBits |= capFIDO2
	}
	caps := binary.BigEndian.AppendUint16(nil, capBits)
	serial := binary.BigEndian.AppendUint32(nil, c.st.Serial)
	v := c.st.Firmware
	body := concat(
		tlv(0x01, caps),
		tlv(0x02, serial),
		tlv(0x03, caps),
		tlv(0x04, []byte{c.st.FormFactor}),
		tlv(0x05, v[:]),
	)
	return append([]byte{byte(len(body))}, body...)
}

// otp is the OTP applet, kept for one command: the serial on firmware
// below 5, where the PIV applet has no GET SERIAL (INS 01, P1 10).
func (c *Card) otp(cmd command) response {
	if cmd.ins == 0x01 && cmd.p1 == 0x10 {
		return ok(binary.BigEndian.AppendUint32(nil, c.st.Serial))
	}
	return status(swInsNotSupported)
}

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
