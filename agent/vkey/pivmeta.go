package vkey

import (
	"bytes"
	"crypto/subtle"
)

// metadata is Yubico's GET METADATA (INS F7, P2 the reference): 01 alg,
// 02 policies, 03 origin, 04 public key, 05 default value, 06 retries.
func (c *Card) metadata(cmd command) response {
	if !fwAtLeast(c.st.Firmware, 5, 3, 0) {
		return status(swInsNotSupported) // metadata came with firmware 5.3
	}
	switch cmd.p2 {
	case refPIN:
		return ok(c.secretMetadata(c.st.PIN, DefaultPIN, c.st.PINRetries, c.st.PINLeft))
	case refPUK:
		return ok(c.secretMetadata(c.st.PUK, DefaultPUK, c.st.PUKRetries, c.st.PUKLeft))
	case refMgmt:
		touch := byte(touchNever)
		if c.st.MgmtTouch {
			touch = touchAlways
		}
		isDefault := subtle.ConstantTimeCompare(c.st.MgmtKey, DefaultManagementKey) == 1
		return ok(concat(tlv(0x01, []byte{c.st.MgmtAlg}), tlv(0x02, []byte{0x00, touch}), tlv(0x05, boolByte(isDefault))))
	}
	name, valid := slotName(cmd.p2)
	if !valid {
		return status(swRefNotFound)
	}
	sk := c.st.Slots[name]
	if sk == nil {
		return status(swRefNotFound)
	}
	key, valid := sk.signer()
	if !valid {
		return status(swUnknown)
	}
	return ok(concat(
		tlv(0x01, []byte{sk.Alg}),
		tlv(0x02, []byte{sk.PINPolicy, sk.TouchPolicy}),
		tlv(0x03, []byte{sk.Origin}),
		tlv(0x04, encodePublic(key.Public())),
	))
}

func (c *Card) secretMetadata(cur []byte, def string, total, left int) []byte {
	isDefault := bytes.Equal(cur, padPIN(def))
	return concat(tlv(0x01, []byte{0xff}), tlv(0x05, boolByte(isDefault)),
		tlv(0x06, []byte{byte(total), byte(left)}))
}

func boolByte(b bool) []byte {
	if b {
		return []byte{1}
	}
	return []byte{0}
}

// attest is Yubico's ATTEST (INS F9, P1 the slot): a certificate for the
// slot's key, signed by the F9 device key.
func (c *Card) attest(cmd command) response {
	if !fwAtLeast(c.st.Firmware, 4, 3, 0) {
		return status(swInsNotSupported) // attestation came with firmware 4.3
	}
	name, valid := slotName(cmd.p1)
	if !valid {
		return status(swIncorrectP1P2)
	}
	sk := c.st.Slots[name]
	// An empty slot and an imported key both answer 6A80, as a YubiKey
	// does (piv-go maps it to ErrNotFound).
	if sk == nil || sk.Origin != originGenerated {
		return status(swWrongData)
	}
	key, valid := sk.signer()
	if !valid {
		return status(swUnknown)
	}
	der, err := mintSlot(c.opts.Rand, c.devKey, c.devCert, key.Public(), slotFacts{
		slot: cmd.p1, serial: c.st.Serial, firmware: c.st.Firmware,
		pinPolicy: sk.PINPolicy, touchPolicy: sk.TouchPolicy, formFactor: c.st.FormFactor,
	})
	if err != nil {
		return status(swUnknown)
	}
	return ok(der)
}
