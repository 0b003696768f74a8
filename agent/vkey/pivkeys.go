package vkey

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"math/big"
)

// generate is GENERATE ASYMMETRIC KEY PAIR (SP 800-73-4 part 2 §3.3.2):
// template AC{80 alg, AA PIN policy, AB touch policy}.
func (c *Card) generate(cmd command) response {
	if !c.sess.mgmtOK {
		return status(swSecurityStatus)
	}
	name, valid := slotName(cmd.p2)
	if !valid {
		return status(swIncorrectP1P2)
	}
	outer, parsed := parseTLV(cmd.data)
	tmpl, found := findTLV(outer, 0xac)
	items, parsedInner := parseTLV(tmpl)
	alg, hasAlg := findTLV(items, 0x80)
	if !parsed || !found || !parsedInner || !hasAlg || len(alg) != 1 {
		return status(swWrongData)
	}
	pp, tp, valid := policies(items, cmd.p2)
	if !valid {
		return status(swWrongData)
	}
	key, valid := newKey(c, alg[0])
	if !valid {
		return status(swWrongData)
	}
	c.st.Slots[name] = storeKey(key, alg[0], pp, tp, originGenerated)
	c.dirty = true
	return ok(tlv(0x7f49, encodePublic(key.Public())))
}

// importKey is Yubico's IMPORT ASYMMETRIC KEY (INS FE, P1 alg, P2 slot):
// 06 private scalar for EC; 01 p, 02 q (03-05 ignored: recomputed) for RSA.
func (c *Card) importKey(cmd command) response {
	if !c.sess.mgmtOK {
		return status(swSecurityStatus)
	}
	name, valid := slotName(cmd.p2)
	items, parsed := parseTLV(cmd.data)
	if !valid || !parsed {
		return status(swWrongData)
	}
	pp, tp, valid := policies(items, cmd.p2)
	if !valid {
		return status(swWrongData)
	}
	key, valid := importedKey(cmd.p1, items)
	if !valid {
		return status(swWrongData)
	}
	c.st.Slots[name] = storeKey(key, cmd.p1, pp, tp, originImported)
	c.dirty = true
	return status(swOK)
}

func importedKey(alg byte, items []tlvItem) (crypto.Signer, bool) {
	switch alg {
	case algECP256, algECP384:
		curve := elliptic.P256()
		if alg == algECP384 {
			curve = elliptic.P384()
		}
		d, found := findTLV(items, 0x06)
		if !found || len(d) != (curve.Params().BitSize+7)/8 {
			return nil, false
		}
		k, err := ecdsa.ParseRawPrivateKey(curve, d)
		return k, err == nil
	case algRSA1024, algRSA2048:
		p, hasP := findTLV(items, 0x01)
		q, hasQ := findTLV(items, 0x02)
		if !hasP || !hasQ {
			return nil, false
		}
		return rsaFromPrimes(new(big.Int).SetBytes(p), new(big.Int).SetBytes(q), alg)
	}
	return nil, false
}

// rsaFromPrimes rebuilds a key with exponent 65537, the only one a
// YubiKey supports.
func rsaFromPrimes(p, q *big.Int, alg byte) (*rsa.PrivateKey, bool) {
	one := big.NewInt(1)
	e := big.NewInt(65537)
	pm, qm := new(big.Int).Sub(p, one), new(big.Int).Sub(q, one)
	phi := new(big.Int).Mul(pm, qm)
	d := new(big.Int).ModInverse(e, phi)
	if d == nil {
		return nil, false
	}
	k := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: new(big.Int).Mul(p, q), E: 65537}, D: d, Primes: []*big.Int{p, q}}
	bits := map[byte]int{algRSA1024: 1024, algRSA2048: 2048}[alg]
	if k.Validate() != nil || k.N.BitLen() != bits {
		return nil, false
	}
	k.Precompute()
	return k, true
}

// keyAuth is GENERAL AUTHENTICATE with a slot's key (SP 800-73-4 part 2
// §3.2.4): 81 signs (or decrypts), 85 derives an ECDH secret; 82 empty
// asks for the response.
func (c *Card) keyAuth(cmd command, items []tlvItem) response {
	name, valid := slotName(cmd.p2)
	if !valid {
		return status(swIncorrectP1P2)
	}
	sk := c.st.Slots[name]
	if sk == nil {
		return status(swRefNotFound)
	}
	if sk.Alg != cmd.p1 {
		// A YubiKey answers 6A80 when the algorithm is not the slot key's:
		// ykman's certificate check reads it as "does not match the key".
		return status(swWrongData)
	}
	if sw := c.keyAllowed(sk); sw != swOK {
		return status(sw)
	}
	key, valid := sk.signer()
	if !valid {
		return status(swUnknown)
	}
	if in, found := findTLV(items, 0x81); found {
		return c.sign(key, in)
	}
	if peer, found := findTLV(items, 0x85); found {
		return ecdhShared(key, peer)
	}
	return status(swWrongData)
}

// keyAllowed applies the key's PIN policy, then its touch policy.
func (c *Card) keyAllowed(sk *SlotKey) uint16 {
	switch sk.PINPolicy {
	case pinOnce:
		if !c.sess.pinOK {
			return swSecurityStatus
		}
	case pinAlways:
		if !c.sess.verifiedLast { // PIN always: VERIFY must come right before
			return swSecurityStatus
		}
	}
	return c.touchFor(sk.TouchPolicy)
}

func (c *Card) sign(key crypto.Signer, in []byte) response {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		if len(in) == 0 || len(in) > size {
			return status(swWrongData)
		}
		sig, err := ecdsa.SignASN1(c.opts.Rand, k, in)
		if err != nil {
			return status(swUnknown)
		}
		return ok(tlv(0x7c, tlv(0x82, sig)))
	case *rsa.PrivateKey:
		out, valid := rawRSA(k, in)
		if !valid {
			return status(swWrongData)
		}
		return ok(tlv(0x7c, tlv(0x82, out)))
	}
	return status(swWrongData)
}

func ecdhShared(key crypto.Signer, peer []byte) response {
	k, isEC := key.(*ecdsa.PrivateKey)
	if !isEC {
		return status(swIncorrectP1P2)
	}
	priv, err := k.ECDH()
	if err != nil {
		return status(swUnknown)
	}
	pub, err := priv.Curve().NewPublicKey(peer)
	if err != nil {
		return status(swWrongData)
	}
	secret, err := priv.ECDH(pub)
	if err != nil {
		return status(swWrongData)
	}
	return ok(tlv(0x7c, tlv(0x82, secret)))
}
