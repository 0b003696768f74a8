package fido2

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"math/big"
)

// pinProtocol is a PIN/UV auth protocol (CTAP 2.1 §6.5.6 one, §6.5.7 two),
// the authenticator's side.
type pinProtocol interface {
	kdf(z []byte) ([]byte, error)
	encrypt(key, plaintext []byte) ([]byte, error)
	decrypt(key, ciphertext []byte) ([]byte, error)
	// authenticate makes a pinUvAuthParam: LEFT(HMAC, 16) for one, the
	// whole HMAC for two.
	authenticate(key, message []byte) []byte
}

// verifyParam checks a pinUvAuthParam.
func verifyParam(pp pinProtocol, key, message, param []byte) bool {
	return hmac.Equal(pp.authenticate(key, message), param)
}

type pinProtocolOne struct{}

func (pinProtocolOne) kdf(z []byte) ([]byte, error) {
	h := sha256.Sum256(z)
	return h[:], nil
}

func (pinProtocolOne) encrypt(key, plaintext []byte) ([]byte, error) {
	return cbc(key, make([]byte, aes.BlockSize), plaintext, true)
}

func (pinProtocolOne) decrypt(key, ciphertext []byte) ([]byte, error) {
	return cbc(key, make([]byte, aes.BlockSize), ciphertext, false)
}

func (pinProtocolOne) authenticate(key, message []byte) []byte {
	return hmacSHA256(key, message)[:16]
}

type pinProtocolTwo struct{}

func (pinProtocolTwo) kdf(z []byte) ([]byte, error) {
	salt := make([]byte, 32)
	hk, err := hkdf.Key(sha256.New, z, salt, "CTAP2 HMAC key", 32)
	if err != nil {
		return nil, err
	}
	ak, err := hkdf.Key(sha256.New, z, salt, "CTAP2 AES key", 32)
	return append(hk, ak...), err
}

func (pinProtocolTwo) encrypt(key, plaintext []byte) ([]byte, error) {
	iv := make([]byte, aes.BlockSize)
	if _, err := rand.Read(iv); err != nil {
		return nil, err
	}
	out, err := cbc(aesKey(key), iv, plaintext, true)
	return append(iv, out...), err
}

func (pinProtocolTwo) decrypt(key, ciphertext []byte) ([]byte, error) {
	if len(ciphertext) < aes.BlockSize {
		return nil, errBadCiphertext
	}
	return cbc(aesKey(key), ciphertext[:aes.BlockSize], ciphertext[aes.BlockSize:], false)
}

func (pinProtocolTwo) authenticate(key, message []byte) []byte {
	if len(key) == 64 { // a shared secret: its first half is the HMAC key
		key = key[:32]
	}
	return hmacSHA256(key, message)
}

// aesKey is the AES half of a protocol-two shared secret; a PIN token is
// used whole.
func aesKey(key []byte) []byte {
	if len(key) == 64 {
		return key[32:]
	}
	return key
}

var errBadCiphertext = errors.New("ciphertext is not a whole number of AES blocks")

func cbc(key, iv, in []byte, encrypt bool) ([]byte, error) {
	if len(in)%aes.BlockSize != 0 || len(in) == 0 {
		return nil, errBadCiphertext
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(in))
	if encrypt {
		cipher.NewCBCEncrypter(b, iv).CryptBlocks(out, in)
	} else {
		cipher.NewCBCDecrypter(b, iv).CryptBlocks(out, in)
	}
	return out, nil
}

func hmacSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// coseKeyAgreement is the authenticator's key agreement key as COSE
// (CTAP 2.1 §6.5.6: alg -25, "although this is NOT the algorithm used").
func coseKeyAgreement(k *ecdh.PrivateKey) map[int]any {
	raw := k.PublicKey().Bytes() // 04 ‖ X ‖ Y
	return map[int]any{1: 2, 3: -25, -1: 1, -2: raw[1:33], -3: raw[33:65]}
}

// platformKey reads the platform's COSE P-256 key.
type platformKey struct {
	Kty int    `cbor:"1,keyasint"`
	Crv int    `cbor:"-1,keyasint"`
	X   []byte `cbor:"-2,keyasint"`
	Y   []byte `cbor:"-3,keyasint"`
}

func (p platformKey) public() (*ecdh.PublicKey, error) {
	if p.Kty != 2 || p.Crv != 1 || len(p.X) > 32 || len(p.Y) > 32 {
		return nil, errors.New("not a P-256 key")
	}
	raw := []byte{4}
	raw = append(raw, new(big.Int).SetBytes(p.X).FillBytes(make([]byte, 32))...)
	raw = append(raw, new(big.Int).SetBytes(p.Y).FillBytes(make([]byte, 32))...)
	return ecdh.P256().NewPublicKey(raw)
}
