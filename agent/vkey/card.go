package vkey

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"sync"
	"sync/atomic"
	"time"
)

// TouchMode says how the simulated touch sensor answers.
type TouchMode int

// Touch modes.
const (
	TouchApprove TouchMode = iota // the user touches at once (default)
	TouchDeny                     // nobody touches: the operation fails at once
	TouchTimeout                  // nobody touches: the operation fails after TouchTimeout
)

// Options configure a Card. The zero value of each field is safe except
// CA, which is required.
type Options struct {
	// Identity of a new card; an existing state keeps its own.
	Serial     uint32  // default: random 8 digits
	Firmware   [3]byte // default 5.7.4
	FormFactor byte    // YubiKey form factor byte, default 0x01 (USB-A Keychain); 0x80 marks FIPS
	// CA signs the card's F9 attestation certificate when a state is
	// created. Required.
	CA *CA
	// FIDO2 answers the FIDO applet's CTAP2 requests; nil leaves the
	// card without one (SELECT answers 6A82), as a PIV-only key.
	FIDO2 FIDO2
	// Store persists the state after every change (default: memory only).
	Store Store
	// Touch simulation.
	Touch        TouchMode
	TouchTimeout time.Duration // default 15 s, as a YubiKey waits
	OnTouch      func()        // called when the card waits for a touch
	Rand         io.Reader     // default crypto/rand
	Now          func() time.Time
	Logger       *slog.Logger // default: discard. Never sees APDU data.
}

func (o *Options) defaults() {
	if o.Firmware == [3]byte{} {
		o.Firmware = [3]byte{5, 7, 4}
	}
	if o.FormFactor == 0 {
		o.FormFactor = 0x01
	}
	if o.Store == nil {
		o.Store = &MemStore{}
	}
	if o.TouchTimeout == 0 {
		o.TouchTimeout = 15 * time.Second
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.OnTouch == nil {
		o.OnTouch = func() {}
	}
}

// Card is a virtual YubiKey 5. It is safe for concurrent use; commands are
// processed one at a time, as on a card.
type Card struct {
	mu      sync.Mutex
	opts    Options
	st      *State
	devKey  crypto.Signer
	devCert *x509.Certificate
	sess    session
	dirty   bool
	apdus   atomic.Uint64
	atrs    atomic.Uint64
}

// applets a session can have selected.
const (
	appletNone = iota
	appletPIV
	appletMgmt
	appletOTP
	appletFIDO
)

// session is what a card forgets on power off or reset.
type session struct {
	applet       int
	pinOK        bool      // PIN verified (PIN policy once)
	verifiedLast bool      // the previous command was a successful VERIFY (PIN policy always)
	mgmtOK       bool      // management key authenticated
	witness      []byte    // management key authentication in progress
	challenge    []byte    // the card's challenge in a one-way authentication
	chain        *command  // command chaining in progress (ISO/IEC 7816-4 §5.1.1.1)
	pending      []byte    // response data left for GET RESPONSE
	touchUntil   time.Time // cached touch
}

// New makes a card from its saved state, or creates a fresh one (and
// saves it) when the store has none. Errors wrap ErrBadConfig or
// ErrBadState, or are the store's.
func New(o Options) (*Card, error) {
	if o.CA == nil {
		return nil, fmt.Errorf("%w: an attestation CA is required", ErrBadConfig)
	}
	o.defaults()
	st, err := o.Store.Load()
	if err != nil {
		return nil, err
	}
	if st == nil {
		if st, err = newState(o); err != nil {
			return nil, err
		}
		if err := o.Store.Save(st); err != nil {
			return nil, err
		}
	}
	c := &Card{opts: o, st: st}
	if err := c.loadDevice(); err != nil {
		return nil, err
	}
	return c, nil
}

func newState(o Options) (*State, error) {
	serial := o.Serial
	if serial == 0 {
		n, err := rand.Int(o.Rand, big.NewInt(89_999_999))
		if err != nil {
			return nil, fmt.Errorf("choosing a serial: %w", err)
		}
		serial = uint32(n.Int64()) + 10_000_000
	}
	st := &State{Version: stateVersion, Serial: serial, Firmware: o.Firmware, FormFactor: o.FormFactor}
	st.resetPIV(fwAtLeast(o.Firmware, 5, 7, 0))
	var err error
	st.DeviceKey, st.DeviceCert, err = o.CA.mintDevice(o.Rand, o.Firmware, o.FormFactor&0x80 != 0)
	return st, err
}

func (c *Card) loadDevice() error {
	k, err := x509.ParsePKCS8PrivateKey(c.st.DeviceKey)
	signer, ok := k.(crypto.Signer)
	if err != nil || !ok {
		return fmt.Errorf("%w: the device attestation key does not parse", ErrBadState)
	}
	cert, err := x509.ParseCertificate(c.st.DeviceCert)
	if err != nil {
		return fmt.Errorf("%w: the device attestation certificate does not parse", ErrBadState)
	}
	c.devKey, c.devCert = signer, cert
	return nil
}

// Serial returns the card's serial number.
func (c *Card) Serial() uint32 { return c.st.Serial }

// Firmware returns the card's firmware version.
func (c *Card) Firmware() [3]byte { return c.st.Firmware }

// APDUs returns how many command APDUs the card has processed.
func (c *Card) APDUs() uint64 { return c.apdus.Load() }

// ATRRequests returns how many times a reader asked for the ATR. A reader
// that asks has seen the card: tests wait for it rather than sleep.
func (c *Card) ATRRequests() uint64 { return c.atrs.Load() }

// ATR is the answer to reset: a YubiKey 5's, whose historical bytes spell
// "YubiKey" (tools recognise the key by it).
var ATR = []byte{
	0x3b, 0xfd, 0x13, 0x00, 0x00, 0x81, 0x31, 0xfe, 0x15, 0x80, 0x73, 0xc0,
	0x21, 0xc0, 0x57, 0x59, 0x75, 0x62, 0x69, 0x4b, 0x65, 0x79, 0x40,
}

// Reset forgets the session (selected applet, verified PIN, management
// key authentication, the FIDO2 PIN token when the authenticator has a
// PowerCycle method), as a power cycle does.
func (c *Card) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sess = session{}
	if pc, ok := c.opts.FIDO2.(interface{ PowerCycle() }); ok {
		pc.PowerCycle() // the FIDO2 PIN token dies with the power too
	}
}

// plugIn is the card inserted into the reader: a power cycle, and for the
// FIDO2 authenticator a power-up when it has a PowerUp method (its reset
// window opens, three wrong PINs in a row stop blocking).
func (c *Card) plugIn() {
	c.Reset()
	if pu, ok := c.opts.FIDO2.(interface{ PowerUp() }); ok {
		pu.PowerUp()
	}
}

func fwAtLeast(v [3]byte, major, minor, patch byte) bool {
	if v[0] != major {
		return v[0] > major
	}
	if v[1] != minor {
		return v[1] > minor
	}
	return v[2] >= patch
}
