package checkpoint

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/internal/atomicfile"
)

// Checkpoint is a signed statement of where the audit chain ended.
type Checkpoint struct {
	Seq  uint64    `json:"seq"`
	Hash string    `json:"hash"` // the chain hash of record Seq, hex
	Time time.Time `json:"time"`
	Key  string    `json:"key"` // the Ed25519 public key that signed, base64
	Sig  string    `json:"sig"` // the signature of Message, base64
	// Source says where the checkpoint was found (a file's path, a
	// witness's URL); it is not signed.
	Source string `json:"-"`
}

const domain = "keyfleet-checkpoint-v1"

// Message is what is signed.
func (c Checkpoint) Message() []byte {
	return []byte(domain + "\n" + strconv.FormatUint(c.Seq, 10) + "\n" + c.Hash + "\n" + c.Time.UTC().Format(time.RFC3339Nano) + "\n")
}

// Head is the chain head the checkpoint states.
func (c Checkpoint) Head() (audit.Head, error) {
	h := audit.Head{Seq: c.Seq}
	b, err := hex.DecodeString(c.Hash)
	if err != nil || len(b) != audit.HashSize {
		return h, fmt.Errorf("%w: hash %q is not 64 hex digits", ErrBadSignature, c.Hash)
	}
	copy(h.Hash[:], b)
	return h, nil
}

func (c Checkpoint) String() string { return fmt.Sprintf("at seq %d (%s)", c.Seq, c.about()) }

// about says when it was signed, its hash and where it was found.
func (c Checkpoint) about() string {
	s := fmt.Sprintf("signed %s, hash %.16s…", c.Time.UTC().Format(time.RFC3339), c.Hash)
	if c.Source != "" {
		s += ", from " + c.Source
	}
	return s
}

// ErrBadSignature is returned by Verify for a checkpoint that is not
// signed by the key it is checked against, or is malformed.
var ErrBadSignature = errors.New("checkpoint signature does not verify")

// Verify checks c's signature. With pub nil it checks against the key c
// names (then it only proves c was not altered since it was signed by
// whoever holds that key: pin the key to prove who).
func (c Checkpoint) Verify(pub ed25519.PublicKey) error {
	key, err := base64.StdEncoding.DecodeString(c.Key)
	if err != nil || len(key) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: the key is not a base64 Ed25519 public key", ErrBadSignature)
	}
	if pub != nil && !pub.Equal(ed25519.PublicKey(key)) {
		return fmt.Errorf("%w: signed by key %s, not by this keyfleetd's checkpoint key %s", ErrBadSignature, c.Key, base64.StdEncoding.EncodeToString(pub))
	}
	sig, err := base64.StdEncoding.DecodeString(c.Sig)
	if err != nil || !ed25519.Verify(key, c.Message(), sig) {
		return fmt.Errorf("%w: the signature does not match seq %d and its hash and time (altered?)", ErrBadSignature, c.Seq)
	}
	if _, err := c.Head(); err != nil {
		return err
	}
	return nil
}

// Sealer seals and opens secrets (daemon/seal.Sealer).
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// Signer signs checkpoints.
type Signer struct {
	priv ed25519.PrivateKey
}

// keyAAD binds the sealed key to its use.
var keyAAD = []byte("keyfleet-checkpoint-key")

// LoadSigner reads the sealed signing key at path, making it first if
// the file does not exist (0600, the key sealed under sl). A key file that
// does not open under sl is an error: a wrong sealing key, or a file
// swapped.
func LoadSigner(path string, sl Sealer, rand io.Reader) (*Signer, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return createSigner(path, sl, rand)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the checkpoint key: %w", err)
	}
	sealed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("the checkpoint key %s is not base64: restore it from a backup", path)
	}
	seed, err := sl.Open(sealed, keyAAD)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("the checkpoint key %s does not open under the sealing key: the sealing key (KEYFLEET_SEAL_KEY or keys/seal.key) is not the one it was made with, or the file was replaced", path)
	}
	return &Signer{priv: ed25519.NewKeyFromSeed(seed)}, nil
}

func createSigner(path string, sl Sealer, rand io.Reader) (*Signer, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return nil, fmt.Errorf("making the checkpoint key: %w", err)
	}
	sealed, err := sl.Seal(seed, keyAAD)
	if err != nil {
		return nil, fmt.Errorf("sealing the checkpoint key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(path, []byte(base64.StdEncoding.EncodeToString(sealed)+"\n")); err != nil {
		return nil, fmt.Errorf("writing the checkpoint key: %w", err)
	}
	return &Signer{priv: ed25519.NewKeyFromSeed(seed)}, nil
}

// Public is the key checkpoints verify under.
func (s *Signer) Public() ed25519.PublicKey { return s.priv.Public().(ed25519.PublicKey) }

// Sign makes a checkpoint of head at t.
func (s *Signer) Sign(head audit.Head, t time.Time) Checkpoint {
	c := Checkpoint{Seq: head.Seq, Hash: audit.HexHash(head.Hash), Time: t.UTC(),
		Key: base64.StdEncoding.EncodeToString(s.Public())}
	c.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(s.priv, c.Message()))
	return c
}
