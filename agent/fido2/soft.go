package fido2

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyfleet/keyfleet/agent"
)

// TouchMode simulates the user at the key.
type TouchMode int

// Touch simulations.
const (
	TouchApprove TouchMode = iota // the user touches the key
	TouchDeny                     // the user declines (a bio key that refuses)
	TouchTimeout                  // nobody touches the key
)

// DefaultAAGUID is the software authenticator's AAGUID unless one is given.
var DefaultAAGUID = []byte{0x6b, 0x65, 0x79, 0x66, 0x6c, 0x65, 0x65, 0x74, 0x2d, 0x73, 0x6f, 0x66, 0x74, 0x2d, 0x30, 0x31}

// maxPINRetries is a YubiKey's FIDO2 PIN retry counter after a reset.
const maxPINRetries = 8

// SoftOptions configure a software authenticator.
type SoftOptions struct {
	// CA issues the attestation certificates of a new state. Required
	// unless Path holds a state already.
	CA *CA
	// Identity of a new state; an existing state keeps its own.
	AAGUID   []byte  // default DefaultAAGUID
	Serial   uint32  // default random 8 digits
	Firmware [3]byte // default 5.7.4
	// Enterprise lets the key give enterprise attestation (the ep option).
	Enterprise bool
	// Path is the state file (keys, PIN hash, counter, credentials: test
	// and demo material only). Empty keeps the state in memory.
	Path    string
	Touch   TouchMode
	OnTouch func() // called while the key waits for a touch
	// Now is the clock of the power-up window for authenticatorReset
	// (default time.Now).
	Now func() time.Time
}

// Soft is a software FIDO2 authenticator. It is safe for concurrent use.
type Soft struct {
	mu      sync.Mutex
	o       SoftOptions
	st      softState
	attKey  *ecdsa.PrivateKey
	ctap    ctapSession // the CTAP transport's PIN protocol state
	removed atomic.Bool // read without mu: OnTouch may pull the key
}

var _ agent.FIDO2Token = (*Soft)(nil)

type softState struct {
	AAGUID     []byte     `json:"aaguid"`
	Serial     uint32     `json:"serial"`
	Firmware   [3]byte    `json:"firmware"`
	Enterprise bool       `json:"enterprise"`
	AttKey     []byte     `json:"attestation_key"` // PKCS #8
	AttCert    []byte     `json:"attestation_cert"`
	EntCert    []byte     `json:"enterprise_cert"`
	Master     []byte     `json:"master_key"` // wraps non-resident credential keys
	PINHash    []byte     `json:"pin_hash,omitempty"`
	Retries    int        `json:"pin_retries"`
	Counter    uint32     `json:"counter"`
	Resident   []resident `json:"resident,omitempty"`
}

type resident struct {
	ID          []byte `json:"id"`
	RPID        string `json:"rp_id"`
	RPName      string `json:"rp_name,omitempty"`
	UserID      []byte `json:"user_id"`
	UserName    string `json:"user_name"`
	DisplayName string `json:"display_name,omitempty"`
	Key         []byte `json:"key"` // PKCS #8
	HMACSecret  bool   `json:"hmac_secret,omitempty"`
	CredProtect byte   `json:"cred_protect,omitempty"`
}

// NewSoft opens the state at o.Path, or makes a new key. The key starts
// as just plugged in (its reset window open).
func NewSoft(o SoftOptions) (*Soft, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Soft{o: o}
	s.ctap.poweredAt = o.Now()
	if o.Path != "" {
		b, err := os.ReadFile(o.Path)
		if err == nil {
			if err := json.Unmarshal(b, &s.st); err != nil {
				return nil, fmt.Errorf("reading the software key's state %s: %w", o.Path, err)
			}
			return s, s.loadKey()
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	if err := s.create(); err != nil {
		return nil, err
	}
	return s, s.save()
}

func (s *Soft) create() error {
	if s.o.CA == nil {
		return errors.New("a new software key needs a CA")
	}
	st := softState{AAGUID: s.o.AAGUID, Serial: s.o.Serial, Firmware: s.o.Firmware, Enterprise: s.o.Enterprise, Retries: maxPINRetries, Master: make([]byte, 32)}
	if st.AAGUID == nil {
		st.AAGUID = DefaultAAGUID
	}
	if st.Firmware == [3]byte{} {
		st.Firmware = [3]byte{5, 7, 4}
	}
	if st.Serial == 0 {
		n, _ := rand.Int(rand.Reader, big.NewInt(90000000))
		st.Serial = uint32(n.Int64()) + 10000000
	}
	if _, err := rand.Read(st.Master); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	if st.AttKey, err = x509.MarshalPKCS8PrivateKey(key); err != nil {
		return err
	}
	batch, err := s.o.CA.attestationCert(key.Public(), st.AAGUID, st.Firmware, 0)
	if err != nil {
		return err
	}
	ent, err := s.o.CA.attestationCert(key.Public(), st.AAGUID, st.Firmware, st.Serial)
	if err != nil {
		return err
	}
	st.AttCert, st.EntCert = batch.Raw, ent.Raw
	s.st, s.attKey = st, key
	return nil
}

func (s *Soft) loadKey() error {
	k, err := x509.ParsePKCS8PrivateKey(s.st.AttKey)
	if err != nil {
		return fmt.Errorf("the software key's attestation key: %w", err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return errors.New("the software key's attestation key is not EC")
	}
	s.attKey = ec
	return nil
}

// save writes the state file, if any, atomically and private.
func (s *Soft) save() error {
	if s.o.Path == "" {
		return nil
	}
	b, err := json.Marshal(s.st)
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(s.o.Path), "."+filepath.Base(s.o.Path)+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, s.o.Path)
}

// Serial is the key's serial, as its enterprise attestation reports it.
func (s *Soft) Serial() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.Serial
}

// Counter is the key's global sign counter.
func (s *Soft) Counter() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.Counter
}

// Remove simulates pulling the key out: every later call fails with
// agent.ErrKeyRemoved.
func (s *Soft) Remove() {
	s.removed.Store(true)
}

// SetTouch changes the touch simulation.
func (s *Soft) SetTouch(m TouchMode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.o.Touch = m
}

// Close releases nothing; the state is saved after every change.
func (s *Soft) Close() error { return nil }

// Info describes the key.
func (s *Soft) Info() (agent.FIDO2Info, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed.Load() {
		return agent.FIDO2Info{}, agent.ErrKeyRemoved
	}
	return agent.FIDO2Info{Path: "soft:" + s.o.Path, Product: "keyfleet software authenticator", AAGUID: s.st.AAGUID,
		Versions: []string{"FIDO_2_0", "FIDO_2_1"}, PINSet: s.st.PINHash != nil, Enterprise: s.st.Enterprise}, nil
}

func pinHash(pin string) []byte {
	h := sha256.Sum256([]byte(pin))
	return h[:16] // CTAP 2.1 §6.5.5.5 keeps LEFT(SHA-256(PIN), 16)
}

func validPIN(pin string) error {
	if n := len([]rune(pin)); n < 4 || len(pin) > 63 { // CTAP 2.1 §6.5.5.5
		return agent.ErrPINPolicy
	}
	return nil
}

// SetPIN sets the first PIN.
func (s *Soft) SetPIN(pin string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed.Load() {
		return agent.ErrKeyRemoved
	}
	if s.st.PINHash != nil {
		return errors.New("the key already has a FIDO2 PIN; change it instead")
	}
	if err := validPIN(pin); err != nil {
		return err
	}
	s.st.PINHash, s.st.Retries = pinHash(pin), maxPINRetries
	return s.save()
}

// ChangePIN replaces the PIN.
func (s *Soft) ChangePIN(oldPIN, newPIN string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed.Load() {
		return agent.ErrKeyRemoved
	}
	if err := validPIN(newPIN); err != nil {
		return err
	}
	if err := s.checkPIN(oldPIN); err != nil {
		return err
	}
	s.st.PINHash = pinHash(newPIN)
	return s.save()
}

// PINRetries says how many wrong PINs are left.
func (s *Soft) PINRetries() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed.Load() {
		return 0, agent.ErrKeyRemoved
	}
	return s.st.Retries, nil
}

// checkPIN verifies pin and counts a failure. Called with s.mu held.
func (s *Soft) checkPIN(pin string) error {
	if pin == "" && s.st.PINHash != nil && s.st.Retries > 0 {
		return agent.ErrFIDO2PINRequired
	}
	return s.checkPINHash(pinHash(pin))
}

// checkPINHash verifies LEFT(SHA-256(PIN), 16), the form CTAP's clientPIN
// sends (§6.5.5.7), and counts a failure. Three wrong PINs in a row block
// PIN checks until the key is plugged in again (pinAuthBlocked, CTAP 2.1
// §6.5.2.2: malware cannot use up every retry without the user), whatever
// the PIN. Errors: ErrPINBlocked, ErrPINAuthBlocked, *WrongPINError.
// Called with s.mu held.
func (s *Soft) checkPINHash(h []byte) error {
	switch {
	case s.st.PINHash == nil:
		return errors.New("the key has no FIDO2 PIN yet")
	case s.st.Retries == 0:
		return agent.ErrPINBlocked
	case s.ctap.pinFails >= maxConsecutivePINFails:
		return agent.ErrPINAuthBlocked
	}
	if subtle.ConstantTimeCompare(h, s.st.PINHash) != 1 {
		s.st.Retries--
		s.ctap.pinFails++
		if err := s.save(); err != nil {
			return err
		}
		switch {
		case s.st.Retries == 0:
			return agent.ErrPINBlocked
		case s.ctap.pinFails >= maxConsecutivePINFails:
			return agent.ErrPINAuthBlocked
		}
		return &agent.WrongPINError{Retries: s.st.Retries}
	}
	s.ctap.pinFails = 0
	if s.st.Retries != maxPINRetries {
		s.st.Retries = maxPINRetries
		return s.save()
	}
	return nil
}

// maxConsecutivePINFails is how many wrong PINs in a row block PIN checks
// until a power cycle (CTAP 2.1 §6.5.2.2).
const maxConsecutivePINFails = 3

// touch waits for the simulated user. Called with s.mu held.
func (s *Soft) touch() error {
	if s.o.OnTouch != nil {
		s.o.OnTouch()
	}
	if s.removed.Load() { // pulled out while it blinked
		return agent.ErrKeyRemoved
	}
	switch s.o.Touch {
	case TouchDeny:
		return agent.ErrTouchDenied
	case TouchTimeout:
		return agent.ErrTouchTimeout
	}
	return nil
}
