// Package seal encrypts secret material (TOTP seeds, plugin state) with
// AES-256-GCM under the daemon's sealing key before it reaches the store.
// The store is encrypted at rest as well; sealing means that even a
// decrypted dump of the store, or a backup of it, shows no secret.
//
// A sealed blob is: version (1 byte, 0x01) ‖ nonce (12 bytes) ‖ ciphertext
// and tag. The additional data binds a blob to its owner (a factor id), so
// a blob copied to another record does not open.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// KeySize is the sealing key's size in bytes.
const KeySize = 32

const (
	version = 0x01
	domain  = "keyfleet-seal-v1:"
)

// ErrOpen is returned by Open for a blob that is corrupt, was sealed under
// another key, or belongs to another owner. It never says which.
var ErrOpen = errors.New("sealed secret cannot be opened: wrong key, wrong owner, or corrupt")

// Sealer seals and opens secrets. It is safe for concurrent use.
type Sealer struct{ aead cipher.AEAD }

// New returns a Sealer for a 32-byte key.
func New(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("seal: key is %d bytes; it must be %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

func additional(aad []byte) []byte { return append([]byte(domain), aad...) }

// Seal encrypts plaintext for the owner named by aad.
func (s *Sealer) Seal(plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	out[0] = version
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("seal: reading nonce: %w", err)
	}
	return s.aead.Seal(out, out[1:], plaintext, additional(aad)), nil
}

// Open decrypts a blob sealed for the owner named by aad. It returns
// ErrOpen for anything but a good blob.
func (s *Sealer) Open(sealed, aad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n+s.aead.Overhead() || sealed[0] != version {
		return nil, ErrOpen
	}
	pt, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], additional(aad))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// ErrWrongKey is returned by Check for a check value sealed under another
// key.
var ErrWrongKey = errors.New("the sealing key is not the one this store was made with")

// checkText is what a check value seals.
const checkText = "keyfleet sealing key check value"

var checkAAD = []byte("keyfleet-seal-check")

// CheckValue seals a fixed text. A store keeps it, so that keyfleetd can
// tell at start whether it was given the sealing key the store's secrets
// were sealed under (as Badger tells the store key by its own).
func (s *Sealer) CheckValue() ([]byte, error) { return s.Seal([]byte(checkText), checkAAD) }

// Check opens a check value. It returns ErrWrongKey when v was sealed
// under another key (or is damaged).
func (s *Sealer) Check(v []byte) error {
	pt, err := s.Open(v, checkAAD)
	if err != nil || string(pt) != checkText {
		return ErrWrongKey
	}
	return nil
}
