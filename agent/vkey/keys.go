package vkey

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"math/big"
)

// Asymmetric algorithms (SP 800-78-4 Table 6-2).
const (
	algRSA1024 = 0x06
	algRSA2048 = 0x07
	algECP256  = 0x11
	algECP384  = 0x14
)

// PIN policies (Yubico PIV extensions).
const (
	pinNever  = 0x01
	pinOnce   = 0x02
	pinAlways = 0x03
)

// Key origins in metadata.
const (
	originGenerated = 0x01
	originImported  = 0x02
)

// slotName returns "9a" for 0x9a when b is an asymmetric key slot: the
// four PIV slots and the twenty retired key management slots 82-95.
func slotName(b byte) (string, bool) {
	switch {
	case b == 0x9a, b == 0x9c, b == 0x9d, b == 0x9e, b >= 0x82 && b <= 0x95:
		return hex.EncodeToString([]byte{b}), true
	}
	return "", false
}

// defaultPINPolicy is the policy a slot gets when key generation names
// none: 9C (signature) always, 9E (card authentication) never.
func defaultPINPolicy(slot byte) byte {
	switch slot {
	case 0x9c:
		return pinAlways
	case 0x9e:
		return pinNever
	}
	return pinOnce
}

func newKey(c *Card, alg byte) (crypto.Signer, bool) {
	var k crypto.Signer
	var err error
	switch alg {
	case algECP256:
		k, err = ecdsa.GenerateKey(elliptic.P256(), c.opts.Rand)
	case algECP384:
		k, err = ecdsa.GenerateKey(elliptic.P384(), c.opts.Rand)
	case algRSA2048:
		k, err = rsa.GenerateKey(c.opts.Rand, 2048)
	case algRSA1024:
		if fwAtLeast(c.st.Firmware, 5, 7, 0) {
			return nil, false // firmware 5.7 dropped RSA 1024 generation
		}
		k, err = rsa.GenerateKey(c.opts.Rand, 1024) //nolint:gosec // what the firmware offers
	default:
		return nil, false
	}
	return k, err == nil
}

// encodePublic is the public key as GENERATE and metadata return it
// (SP 800-73-4 part 2 Table 10): 86 point, or 81 modulus 82 exponent.
func encodePublic(pub crypto.PublicKey) []byte {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		b, _ := k.Bytes() // uncompressed point; a generated key is valid
		return tlv(0x86, b)
	case *rsa.PublicKey:
		return concat(tlv(0x81, k.N.Bytes()), tlv(0x82, big.NewInt(int64(k.E)).Bytes()))
	}
	return nil
}

func (s *SlotKey) signer() (crypto.Signer, bool) {
	k, err := x509.ParsePKCS8PrivateKey(s.Private)
	signer, ok := k.(crypto.Signer)
	return signer, err == nil && ok
}

func storeKey(k crypto.Signer, alg, pp, tp, origin byte) *SlotKey {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		panic("vkey: a generated key does not marshal") // RSA and ECDSA always do
	}
	return &SlotKey{Alg: alg, PINPolicy: pp, TouchPolicy: tp, Origin: origin, Private: der}
}

// policies reads AA (PIN) and AB (touch) from a template, with the slot's
// defaults; the Bio match policies (4, 5) are refused: no fingerprint here.
func policies(items []tlvItem, slot byte) (pp, tp byte, ok bool) {
	pp, tp = defaultPINPolicy(slot), touchNever
	if v, found := findTLV(items, 0xaa); found {
		if len(v) != 1 || v[0] > pinAlways {
			return 0, 0, false
		}
		if v[0] != 0 {
			pp = v[0]
		}
	}
	if v, found := findTLV(items, 0xab); found {
		if len(v) != 1 || v[0] > touchCached {
			return 0, 0, false
		}
		if v[0] != 0 {
			tp = v[0]
		}
	}
	return pp, tp, true
}

// rawRSA is the RSA private operation on a full-length block, as the card
// does for both signing (the client pads) and decryption. It uses the CRT.
func rawRSA(k *rsa.PrivateKey, in []byte) ([]byte, bool) {
	size := k.Size()
	if len(in) != size {
		return nil, false
	}
	m := new(big.Int).SetBytes(in)
	if m.Cmp(k.N) >= 0 {
		return nil, false
	}
	p, q := k.Primes[0], k.Primes[1]
	m1 := new(big.Int).Exp(m, k.Precomputed.Dp, p)
	m2 := new(big.Int).Exp(m, k.Precomputed.Dq, q)
	h := m1.Sub(m1, m2)
	h.Mul(h, k.Precomputed.Qinv).Mod(h, p)
	out := h.Mul(h, q).Add(h, m2)
	return out.FillBytes(make([]byte, size)), true
}
