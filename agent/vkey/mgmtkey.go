package vkey

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/subtle"
	"io"
)

// Management key algorithms (SP 800-78-4 Table 6-2 and Yubico's AES).
const (
	alg3DES   = 0x03
	algAES128 = 0x08
	algAES192 = 0x0a
	algAES256 = 0x0c
)

func mgmtKeyLen(alg byte) int {
	switch alg {
	case alg3DES, algAES192:
		return 24
	case algAES128:
		return 16
	case algAES256:
		return 32
	}
	return 0
}

func (c *Card) mgmtCipher() cipher.Block {
	var b cipher.Block
	var err error
	if c.st.MgmtAlg == alg3DES {
		b, err = des.NewTripleDESCipher(c.st.MgmtKey)
	} else {
		b, err = aes.NewCipher(c.st.MgmtKey)
	}
	if err != nil {
		panic("vkey: stored management key has a bad length") // checked when set
	}
	return b
}

// setManagementKey is Yubico's SET MANAGEMENT KEY (INS FF, P2 FE adds
// touch): data alg, 9B, length, key.
func (c *Card) setManagementKey(cmd command) response {
	if !c.sess.mgmtOK {
		return status(swSecurityStatus)
	}
	if cmd.p1 != 0xff || (cmd.p2 != 0xff && cmd.p2 != 0xfe) {
		return status(swIncorrectP1P2)
	}
	d := cmd.data
	if len(d) < 3 || d[1] != refMgmt || int(d[2]) != len(d)-3 || mgmtKeyLen(d[0]) != len(d)-3 {
		return status(swWrongData)
	}
	if d[0] != alg3DES && !fwAtLeast(c.st.Firmware, 5, 4, 0) {
		return status(swWrongData) // AES management keys came with firmware 5.4
	}
	c.st.MgmtAlg, c.st.MgmtKey, c.st.MgmtTouch = d[0], append([]byte(nil), d[3:]...), cmd.p2 == 0xfe
	c.dirty = true
	return status(swOK)
}

func (c *Card) generalAuthenticate(cmd command) response {
	outer, valid := parseTLV(cmd.data)
	inner, found := findTLV(outer, 0x7c)
	if !valid || !found {
		return status(swWrongData)
	}
	items, valid := parseTLV(inner)
	if !valid {
		return status(swWrongData)
	}
	if cmd.p2 == refMgmt {
		return c.mgmtAuth(cmd.p1, items)
	}
	return c.keyAuth(cmd, items)
}

// mgmtAuth authenticates the management key (SP 800-73-4 part 2 Appendix
// A.1): mutual (80 witness, then 80 + 81) or one-way (81, then 82).
func (c *Card) mgmtAuth(alg byte, items []tlvItem) response {
	if alg != c.st.MgmtAlg {
		return status(swIncorrectP1P2)
	}
	block := c.mgmtCipher()
	n := block.BlockSize()
	witness, hasWitness := findTLV(items, 0x80)
	challenge, hasChallenge := findTLV(items, 0x81)
	resp, hasResp := findTLV(items, 0x82)
	switch {
	case hasWitness && len(witness) == 0:
		return c.mgmtWitness(block)
	case hasWitness && hasChallenge:
		return c.mgmtMutual(block, witness, challenge)
	case hasChallenge && len(challenge) == 0:
		c.sess.challenge = c.random(n)
		c.sess.witness, c.sess.mgmtOK = nil, false
		return ok(tlv(0x7c, tlv(0x81, c.sess.challenge)))
	case hasResp && len(resp) == n && c.sess.challenge != nil:
		want := make([]byte, n)
		block.Encrypt(want, c.sess.challenge)
		c.sess.challenge = nil
		return c.mgmtResult(subtle.ConstantTimeCompare(want, resp) == 1)
	}
	return status(swWrongData)
}

func (c *Card) mgmtWitness(block cipher.Block) response {
	c.sess.witness = c.random(block.BlockSize())
	c.sess.challenge, c.sess.mgmtOK = nil, false
	enc := make([]byte, len(c.sess.witness))
	block.Encrypt(enc, c.sess.witness)
	return ok(tlv(0x7c, tlv(0x80, enc)))
}

func (c *Card) mgmtMutual(block cipher.Block, witness, challenge []byte) response {
	n := block.BlockSize()
	w := c.sess.witness
	c.sess.witness = nil
	if w == nil || len(challenge) != n {
		return status(swWrongData)
	}
	if subtle.ConstantTimeCompare(w, witness) != 1 {
		return c.mgmtResult(false)
	}
	if r := c.mgmtResult(true); r.sw != swOK {
		return r
	}
	enc := make([]byte, n)
	block.Encrypt(enc, challenge)
	return ok(tlv(0x7c, tlv(0x82, enc)))
}

func (c *Card) mgmtResult(good bool) response {
	c.sess.mgmtOK = false
	if !good {
		return status(swSecurityStatus)
	}
	if c.st.MgmtTouch {
		if sw := c.waitTouch(); sw != swOK {
			return status(sw)
		}
	}
	c.sess.mgmtOK = true
	return status(swOK)
}

func (c *Card) random(n int) []byte {
	b := make([]byte, n)
	if _, err := io.ReadFull(c.opts.Rand, b); err != nil {
		panic("vkey: the random source failed") // crypto/rand does not fail
	}
	return b
}
