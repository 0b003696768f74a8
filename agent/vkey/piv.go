package vkey

import (
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
)

// PIV instructions (SP 800-73-4 part 2 §3 and Yubico's extensions).
const (
	insVerify     = 0x20
	insChangeRef  = 0x24
	insResetRetry = 0x2c
	insGenerate   = 0x47
	insGenAuth    = 0x87
	insGetData    = 0xcb
	insPutData    = 0xdb
	insGetMeta    = 0xf7
	insGetSerial  = 0xf8
	insAttest     = 0xf9
	insSetRetries = 0xfa
	insReset      = 0xfb
	insGetVersion = 0xfd
	insImportKey  = 0xfe
	insSetMgmtKey = 0xff
)

// Key references.
const (
	refPIN  = 0x80
	refPUK  = 0x81
	refMgmt = 0x9b
)

func (c *Card) piv(cmd command) response {
	switch cmd.ins {
	case insGetVersion:
		v := c.st.Firmware
		return ok(v[:])
	case insGetSerial:
		if !fwAtLeast(c.st.Firmware, 5, 0, 0) {
			return status(swInsNotSupported) // YubiKey 4 has the serial in the OTP applet only
		}
		return ok(binary.BigEndian.AppendUint32(nil, c.st.Serial))
	case insVerify:
		return c.verify(cmd)
	case insChangeRef:
		return c.changeReference(cmd)
	case insResetRetry:
		return c.unblockPIN(cmd)
	case insSetRetries:
		return c.setRetries(cmd)
	case insReset:
		return c.resetPIV()
	case insSetMgmtKey:
		return c.setManagementKey(cmd)
	case insGenAuth:
		return c.generalAuthenticate(cmd)
	case insGetData:
		return c.getData(cmd)
	case insPutData:
		return c.putData(cmd)
	}
	return c.pivKeys(cmd)
}

func (c *Card) pivKeys(cmd command) response {
	switch cmd.ins {
	case insGenerate:
		return c.generate(cmd)
	case insImportKey:
		return c.importKey(cmd)
	case insAttest:
		return c.attest(cmd)
	case insGetMeta:
		return c.metadata(cmd)
	}
	return status(swInsNotSupported)
}

func retriesSW(left int) uint16 {
	return swVerifyFail | uint16(min(left, 15)) // four bits: more than 15 shows as 15
}

// checkSecret compares a padded PIN or PUK and keeps its retry counter.
func (c *Card) checkSecret(want []byte, left *int, reset int, got []byte) uint16 {
	if *left == 0 {
		return swAuthBlocked
	}
	if subtle.ConstantTimeCompare(want, got) == 1 {
		if *left != reset {
			*left, c.dirty = reset, true
		}
		return swOK
	}
	*left--
	c.dirty = true
	return retriesSW(*left)
}

// verify is VERIFY (SP 800-73-4 part 2 §3.2.1): P1 FF logs out, empty data
// asks for the retries left.
func (c *Card) verify(cmd command) response {
	if cmd.p2 != refPIN {
		return status(swRefNotFound)
	}
	switch {
	case cmd.p1 == 0xff:
		c.sess.pinOK = false
		return status(swOK)
	case len(cmd.data) == 0 && c.st.PINLeft == 0:
		return status(swAuthBlocked)
	case len(cmd.data) == 0 && c.sess.pinOK:
		return status(swOK)
	case len(cmd.data) == 0:
		return status(retriesSW(c.st.PINLeft))
	case len(cmd.data) != 8:
		return status(swWrongData)
	}
	sw := c.checkSecret(c.st.PIN, &c.st.PINLeft, c.st.PINRetries, cmd.data)
	c.sess.pinOK = sw == swOK
	return status(sw)
}

// validPIN checks a new padded PIN or PUK: 6 to 8 bytes, then FF padding.
func validPIN(b []byte) bool {
	if len(b) != 8 {
		return false
	}
	n := 8
	for i, x := range b {
		if x == 0xff {
			n = i
			break
		}
	}
	for _, x := range b[n:] {
		if x != 0xff {
			return false
		}
	}
	return n >= 6
}

// changeReference is CHANGE REFERENCE DATA for the PIN (80) or PUK (81).
func (c *Card) changeReference(cmd command) response {
	if len(cmd.data) != 16 {
		return status(swWrongData)
	}
	old, next := cmd.data[:8], cmd.data[8:]
	var sw uint16
	switch cmd.p2 {
	case refPIN:
		sw = c.checkSecret(c.st.PIN, &c.st.PINLeft, c.st.PINRetries, old)
	case refPUK:
		sw = c.checkSecret(c.st.PUK, &c.st.PUKLeft, c.st.PUKRetries, old)
	default:
		return status(swRefNotFound)
	}
	if sw != swOK {
		return status(sw)
	}
	if !validPIN(next) {
		return status(swWrongData)
	}
	if cmd.p2 == refPIN {
		c.st.PIN, c.sess.pinOK = append([]byte(nil), next...), true
	} else {
		c.st.PUK = append([]byte(nil), next...)
	}
	c.dirty = true
	return status(swOK)
}

// unblockPIN is RESET RETRY COUNTER: the PUK sets a new PIN.
func (c *Card) unblockPIN(cmd command) response {
	if cmd.p2 != refPIN {
		return status(swRefNotFound)
	}
	if len(cmd.data) != 16 {
		return status(swWrongData)
	}
	sw := c.checkSecret(c.st.PUK, &c.st.PUKLeft, c.st.PUKRetries, cmd.data[:8])
	if sw != swOK {
		return status(sw)
	}
	if !validPIN(cmd.data[8:]) {
		return status(swWrongData)
	}
	c.st.PIN = append([]byte(nil), cmd.data[8:]...)
	c.st.PINLeft, c.dirty = c.st.PINRetries, true
	return status(swOK)
}

// setRetries (Yubico INS FA) needs the management key and the PIN, and
// puts the PIN and PUK back to their defaults, as a YubiKey does.
func (c *Card) setRetries(cmd command) response {
	if !c.sess.mgmtOK || !c.sess.pinOK {
		return status(swSecurityStatus)
	}
	if cmd.p1 == 0 || cmd.p2 == 0 {
		return status(swIncorrectP1P2)
	}
	c.st.PIN, c.st.PUK = padPIN(DefaultPIN), padPIN(DefaultPUK)
	c.st.PINRetries, c.st.PUKRetries = int(cmd.p1), int(cmd.p2)
	c.st.PINLeft, c.st.PUKLeft = int(cmd.p1), int(cmd.p2)
	c.sess.pinOK, c.dirty = false, true
	return status(swOK)
}

// resetPIV (Yubico INS FB) works only once both PIN and PUK are blocked.
func (c *Card) resetPIV() response {
	if c.st.PINLeft != 0 || c.st.PUKLeft != 0 {
		return status(swConditions)
	}
	c.st.resetPIV(fwAtLeast(c.st.Firmware, 5, 7, 0))
	c.sess = session{applet: appletPIV}
	c.dirty = true
	return status(swOK)
}

// objectTag reads the 5C tag list of GET/PUT DATA.
func objectTag(items []tlvItem) (string, bool) {
	tag, found := findTLV(items, 0x5c)
	if !found || len(tag) == 0 || len(tag) > 3 {
		return "", false
	}
	return hex.EncodeToString(tag), true
}

const (
	tagDiscovery   = "7e"
	tagPrinted     = "5fc109" // PIN-protected: ykman keeps the management key here
	tagAttestation = "5fff01" // the F9 certificate
)

func (c *Card) getData(cmd command) response {
	items, valid := parseTLV(cmd.data)
	tag, found := objectTag(items)
	if !valid || !found || cmd.p1 != 0x3f || cmd.p2 != 0xff {
		return status(swWrongData)
	}
	if tag == tagDiscovery {
		return ok(tlv(0x7e, concat(tlv(0x4f, aidPIV), tlv(0x5f2f, []byte{0x40, 0x00}))))
	}
	if tag == tagPrinted && !c.sess.pinOK {
		return status(swSecurityStatus)
	}
	v, stored := c.st.Objects[tag]
	if !stored && tag == tagAttestation {
		v, stored = concat(tlv(0x70, c.st.DeviceCert), tlv(0x71, []byte{0}), tlv(0xfe, nil)), true
	}
	if !stored {
		return status(swFileNotFound)
	}
	return ok(tlv(0x53, v))
}

func (c *Card) putData(cmd command) response {
	if !c.sess.mgmtOK {
		return status(swSecurityStatus)
	}
	items, valid := parseTLV(cmd.data)
	tag, found := objectTag(items)
	value, hasValue := findTLV(items, 0x53)
	if !valid || !found || !hasValue || tag == tagDiscovery {
		return status(swWrongData)
	}
	if len(value) == 0 {
		delete(c.st.Objects, tag)
	} else {
		c.st.Objects[tag] = append([]byte(nil), value...)
	}
	c.dirty = true
	return status(swOK)
}
