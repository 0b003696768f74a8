package postgres

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// box seals every record before it reaches the database and makes the
// keyed hashes that stand in for personal data in look-up columns. Both
// keys are derived from the store key with HKDF-SHA-256 under their own
// labels, so one key in the configuration serves both purposes and a
// leaked index key reveals nothing about records.
//
// A sealed record is nonce (12 bytes) ‖ AES-256-GCM ciphertext and tag;
// the additional data names its table and key, so a record copied to
// another row does not open.
type box struct {
	aead cipher.AEAD
	mac  []byte
}

// errOpen: a record does not open (another key, or a damaged row).
var errOpen = errors.New("a record in the database does not open with this store key: wrong key, or the row was changed outside keyfleetd")

func newBox(storeKey []byte) (*box, error) {
	if len(storeKey) != 32 {
		return nil, fmt.Errorf("postgres store: the store key is %d bytes; it must be 32", len(storeKey))
	}
	ek, err := hkdf.Key(sha256.New, storeKey, nil, "keyfleet postgres records v1", 32)
	if err != nil {
		return nil, err
	}
	mk, err := hkdf.Key(sha256.New, storeKey, nil, "keyfleet postgres index v1", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(ek)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &box{aead: aead, mac: mk}, nil
}

func aad(table, key string) []byte { return []byte("keyfleet-pg-v1\x00" + table + "\x00" + key) }

func (b *box) seal(table, key string, plain []byte) []byte {
	n := b.aead.NonceSize()
	out := make([]byte, n, n+len(plain)+b.aead.Overhead())
	rand.Read(out) // crypto/rand.Read never fails (Go 1.24+)
	return b.aead.Seal(out, out, plain, aad(table, key))
}

func (b *box) open(table, key string, sealed []byte) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < n+b.aead.Overhead() {
		return nil, fmt.Errorf("%s %s: %w", table, key, errOpen)
	}
	pt, err := b.aead.Open(nil, sealed[:n], sealed[n:], aad(table, key))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", table, key, errOpen)
	}
	return pt, nil
}

// openAppend opens sealed with additional data ad (as aad makes it) and
// appends the plain bytes to dst: for scans that reuse one buffer.
func (b *box) openAppend(dst, sealed, ad []byte) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < n+b.aead.Overhead() {
		return nil, errOpen
	}
	pt, err := b.aead.Open(dst, sealed[:n], sealed[n:], ad)
	if err != nil {
		return nil, errOpen
	}
	return pt, nil
}

// appendFactsAAD appends aad("policy_facts", factsKey(user, sub)).
func appendFactsAAD(dst, user, sub []byte) []byte {
	dst = append(dst, "keyfleet-pg-v1\x00policy_facts\x00"...)
	dst = append(dst, user...)
	dst = append(dst, '/')
	return append(dst, sub...)
}

// index is the keyed hash of a value of the given kind (username,
// serial): equal values have equal hashes, and nothing else can be
// learned from them without the store key.
func (b *box) index(kind string, parts ...string) []byte {
	h := hmac.New(sha256.New, b.mac)
	h.Write([]byte(kind))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return h.Sum(nil)
}

// Seal seals plain as a record of table under key, as the store seals
// its own (for what keyfleetd keeps beside the store: daemon/cluster).
func (s *Store) Seal(table, key string, plain []byte) []byte { return s.box.seal(table, key, plain) }

// Open opens what Seal sealed.
func (s *Store) Open(table, key string, sealed []byte) ([]byte, error) {
	return s.box.open(table, key, sealed)
}

// Index is the keyed hash of parts under kind.
func (s *Store) Index(kind string, parts ...string) []byte { return s.box.index(kind, parts...) }
