package vkey

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/keyfleet/keyfleet/internal/atomicfile"
	"os"
	"sync"
)

const stateVersion = 1

// Factory defaults of a YubiKey's PIV applet.
var (
	// DefaultPIN is the factory PIN.
	DefaultPIN = "123456"
	// DefaultPUK is the factory PUK.
	DefaultPUK = "12345678"
	// DefaultManagementKey is the factory management key.
	DefaultManagementKey = []byte{
		1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
	}
)

const defaultRetries = 3

// State is everything a card remembers across power cycles. It holds
// secrets (PIN, PUK, management key, private keys) in the clear; see the
// package doc.
type State struct {
	Version int `json:"version"`
	// Identity, fixed when the state is created.
	Serial     uint32  `json:"serial"`
	Firmware   [3]byte `json:"firmware"`
	FormFactor byte    `json:"form_factor"`
	// PIN and PUK, padded to 8 bytes with FF as they travel in VERIFY.
	PIN        []byte `json:"pin"`
	PUK        []byte `json:"puk"`
	PINRetries int    `json:"pin_retries"` // configured
	PUKRetries int    `json:"puk_retries"`
	PINLeft    int    `json:"pin_left"`
	PUKLeft    int    `json:"puk_left"`
	// Management key (slot 9B).
	MgmtAlg   byte   `json:"mgmt_alg"`
	MgmtKey   []byte `json:"mgmt_key"`
	MgmtTouch bool   `json:"mgmt_touch,omitempty"`
	// Slots holds the asymmetric keys by slot ("9a").
	Slots map[string]*SlotKey `json:"slots"`
	// Objects holds data objects by tag ("5fc105"): the value inside 53.
	Objects map[string][]byte `json:"objects"`
	// DeviceKey and DeviceCert are the F9 attestation key (PKCS#8) and
	// its certificate (DER), minted by the attestation CA at creation.
	DeviceKey  []byte `json:"device_key"`
	DeviceCert []byte `json:"device_cert"`
}

// SlotKey is one asymmetric key.
type SlotKey struct {
	Alg         byte   `json:"alg"`
	PINPolicy   byte   `json:"pin_policy"`
	TouchPolicy byte   `json:"touch_policy"`
	Origin      byte   `json:"origin"`  // 1 generated, 2 imported
	Private     []byte `json:"private"` // PKCS#8
}

// String hides the secrets: a State printed by mistake shows none.
func (s *State) String() string {
	return fmt.Sprintf("vkey.State{serial %d, firmware %d.%d.%d, %d keys}",
		s.Serial, s.Firmware[0], s.Firmware[1], s.Firmware[2], len(s.Slots))
}

// GoString hides the secrets from %#v too.
func (s *State) GoString() string { return s.String() }

func padPIN(pin string) []byte {
	b := bytes.Repeat([]byte{0xff}, 8)
	copy(b, pin)
	return b
}

// resetPIV puts the PIV applet back to factory settings; the identity and
// the F9 attestation key survive, as on a YubiKey.
func (s *State) resetPIV(aesDefault bool) {
	s.PIN, s.PUK = padPIN(DefaultPIN), padPIN(DefaultPUK)
	s.PINRetries, s.PUKRetries = defaultRetries, defaultRetries
	s.PINLeft, s.PUKLeft = defaultRetries, defaultRetries
	s.MgmtAlg, s.MgmtKey, s.MgmtTouch = alg3DES, append([]byte(nil), DefaultManagementKey...), false
	if aesDefault {
		// Firmware 5.7 and later ship with an AES-192 default management key.
		s.MgmtAlg = algAES192
	}
	s.Slots = map[string]*SlotKey{}
	s.Objects = map[string][]byte{}
}

func (s *State) clone() *State {
	b, err := json.Marshal(s)
	if err != nil {
		panic("vkey: state does not marshal") // only plain types: cannot happen
	}
	var c State
	if err := json.Unmarshal(b, &c); err != nil {
		panic("vkey: state does not unmarshal")
	}
	return &c
}

// Store persists a card's State.
type Store interface {
	// Load returns the saved state, or (nil, nil) when there is none.
	Load() (*State, error)
	// Save replaces the saved state.
	Save(*State) error
}

// MemStore keeps the state in memory (tests). The zero value is empty.
type MemStore struct {
	mu sync.Mutex
	s  *State
}

var _ Store = (*MemStore)(nil)

// Load returns a copy of the saved state.
func (m *MemStore) Load() (*State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.s == nil {
		return nil, nil
	}
	return m.s.clone(), nil
}

// Save keeps a copy of s.
func (m *MemStore) Save(s *State) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.s = s.clone()
	return nil
}

// FileStore keeps the state in a JSON file, written atomically (a
// temporary file in the same folder, synced, then renamed) with mode 0600.
type FileStore struct {
	Path string
}

var _ Store = FileStore{}

// Load reads the file; a missing file is (nil, nil). Errors wrap
// ErrBadState when the file does not parse.
func (f FileStore) Load() (*State, error) {
	b, err := os.ReadFile(f.Path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading vkey state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil || s.Version != stateVersion {
		return nil, fmt.Errorf("%w: %s is not a version %d state file", ErrBadState, f.Path, stateVersion)
	}
	return &s, nil
}

// Save writes s atomically.
func (f FileStore) Save(s *State) error {
	b, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		return fmt.Errorf("encoding vkey state: %w", err)
	}
	return writeFileAtomic(f.Path, b)
}

// writeFileAtomic replaces path with b whole (internal/atomicfile), the
// error naming the file.
func writeFileAtomic(path string, b []byte) error {
	if err := atomicfile.Write(path, b); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
