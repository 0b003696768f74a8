package fido2

import (
	"crypto/ecdh"
	"errors"
	"time"

	"github.com/keyfleet/keyfleet/agent"
)

// CTAP2 commands (CTAP 2.1 §6) the software authenticator answers.
const (
	cmdMakeCredential    = 0x01
	cmdGetAssertion      = 0x02
	cmdGetInfo           = 0x04
	cmdClientPIN         = 0x06
	cmdReset             = 0x07
	cmdGetNextAssertion  = 0x08
	cmdCredMgmt          = 0x0a
	cmdSelection         = 0x0b
	cmdCredMgmtPreview   = 0x41 // FIDO_2_1_PRE's credentialManagement, as YubiKey 5.2+ still answer it
	maxResidentKeys      = 100  // a YubiKey 5.7 holds 100 discoverable credentials
	maxCredentialIDBytes = 128
)

// CTAP2 status codes (CTAP 2.1 §8.2.1).
const (
	ctapOK                   = 0x00
	ctapInvalidCommand       = 0x01
	ctapInvalidParameter     = 0x02
	ctapInvalidLength        = 0x03
	ctapInvalidCBOR          = 0x12
	ctapMissingParameter     = 0x14
	ctapCredentialExcluded   = 0x19
	ctapUnsupportedAlgorithm = 0x26
	ctapOperationDenied      = 0x27
	ctapKeyStoreFull         = 0x28
	ctapUnsupportedOption    = 0x2b
	ctapInvalidOption        = 0x2c
	ctapNoCredentials        = 0x2e
	ctapUserActionTimeout    = 0x2f
	ctapNotAllowed           = 0x30
	ctapPINInvalid           = 0x31
	ctapPINBlocked           = 0x32
	ctapPINAuthInvalid       = 0x33
	ctapPINAuthBlocked       = 0x34
	ctapPINNotSet            = 0x35
	ctapPUATRequired         = 0x36 // PIN_REQUIRED in CTAP 2.0
	ctapPINPolicyViolation   = 0x37
	ctapInvalidSubcommand    = 0x3e
	ctapUnauthorizedPerm     = 0x40
	ctapOther                = 0x7f
)

// ctapPINRequired is CTAP 2.0's name for PUAT_REQUIRED.
const ctapPINRequired = ctapPUATRequired

// resetWindow is how long after power-up authenticatorReset is allowed: a
// YubiKey takes it within 5 s of insertion (CTAP 2.1 §6.6 allows up to 10).
const resetWindow = 5 * time.Second

// nextAssertionTTL is how long the credentials of a discoverable sign-in
// wait for authenticatorGetNextAssertion (CTAP 2.1 §6.3: 30 s).
const nextAssertionTTL = 30 * time.Second

// ctapSession is what the authenticator forgets at power-up: the key
// agreement key and the PIN token of the clientPIN protocol (§6.5), the
// credentials left for getNextAssertion and a credential management
// enumeration. pinFails and poweredAt survive a CCID power cycle and go
// only when the key is plugged in again (PowerUp).
type ctapSession struct {
	agreement *ecdh.PrivateKey
	token     *pinToken
	next      *assertionQueue
	credman   *credmanCursor
	pinFails  int       // consecutive wrong PINs (§6.5.2.2 pinAuthBlocked at 3)
	poweredAt time.Time // when the key was plugged in: the reset window
}

// CTAP answers one CTAP2 request (the command byte, then its CBOR
// parameters) with the response (a status byte, then CBOR), as the CTAP
// transports carry them (CTAP 2.1 §8, §11.3 for NFC and smart cards). It
// implements authenticatorMakeCredential, GetAssertion, GetNextAssertion,
// GetInfo, ClientPIN (PIN/UV auth protocols one and two, tokens with
// permissions), Reset, CredentialManagement (and its 0x41 preview) and
// Selection, with the hmac-secret and credProtect extensions. Errors are
// CTAP status codes, never Go errors.
func (s *Soft) CTAP(msg []byte) []byte {
	if len(msg) == 0 {
		return []byte{ctapInvalidLength}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed.Load() {
		return []byte{ctapOther}
	}
	// Any other command ends a discoverable sign-in's queue (§6.3) and a
	// credential enumeration (§6.8).
	if msg[0] != cmdGetNextAssertion {
		s.ctap.next = nil
	}
	if msg[0] != cmdCredMgmt && msg[0] != cmdCredMgmtPreview {
		s.ctap.credman = nil
	}
	return s.dispatch(msg[0], msg[1:])
}

func (s *Soft) dispatch(cmd byte, params []byte) []byte {
	switch cmd {
	case cmdGetInfo:
		return s.ctapGetInfo()
	case cmdMakeCredential:
		return s.ctapMakeCredential(params)
	case cmdGetAssertion:
		return s.ctapGetAssertion(params)
	case cmdGetNextAssertion:
		return s.ctapGetNextAssertion()
	case cmdClientPIN:
		return s.ctapClientPIN(params)
	case cmdReset:
		return s.ctapReset()
	case cmdCredMgmt, cmdCredMgmtPreview:
		return s.ctapCredMgmt(params, cmd == cmdCredMgmtPreview)
	case cmdSelection:
		if err := s.touch(); err != nil {
			return ctapStatus(err)
		}
		return []byte{ctapOK}
	}
	return []byte{ctapInvalidCommand}
}

// PowerCycle forgets the PIN token, the key agreement key and any
// enumeration in progress, as a key does when the reader powers the card
// off and on. The consecutive wrong PINs stay counted: only PowerUp (the
// key plugged in again) clears them.
func (s *Soft) PowerCycle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctap = ctapSession{pinFails: s.ctap.pinFails, poweredAt: s.ctap.poweredAt}
}

// PowerUp is the key plugged in: everything PowerCycle forgets, the
// consecutive wrong PINs too, and the reset window opens.
func (s *Soft) PowerUp() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctap = ctapSession{poweredAt: s.o.Now()}
}

func reply(v any) []byte {
	b, err := ctap2.Marshal(v)
	if err != nil {
		return []byte{ctapOther}
	}
	return append([]byte{ctapOK}, b...)
}

// ctapStatus maps the software authenticator's errors to CTAP codes.
func ctapStatus(err error) []byte {
	var wrong *agent.WrongPINError
	codes := []struct {
		err  error
		code byte
	}{
		{agent.ErrCredentialExcluded, ctapCredentialExcluded},
		{agent.ErrNoCredential, ctapNoCredentials},
		{agent.ErrTouchDenied, ctapOperationDenied},
		{agent.ErrTouchTimeout, ctapUserActionTimeout},
		{agent.ErrPINBlocked, ctapPINBlocked},
		{agent.ErrPINAuthBlocked, ctapPINAuthBlocked},
		{agent.ErrFIDO2PINRequired, ctapPINRequired},
		{agent.ErrPINPolicy, ctapPINPolicyViolation},
		{errAlgorithm, ctapUnsupportedAlgorithm},
		{errKeyStoreFull, ctapKeyStoreFull},
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return []byte{c.code}
		}
	}
	if errors.As(err, &wrong) {
		return []byte{ctapPINInvalid}
	}
	return []byte{ctapOther}
}

// ctapGetInfo is authenticatorGetInfo (§6.4), with the fields a YubiKey 5.7
// reports for what this key implements: no U2F (CTAP1), large blobs,
// authenticatorConfig or other extensions, which it would have to answer.
func (s *Soft) ctapGetInfo() []byte {
	opts := map[string]bool{
		"rk": true, "up": true, "plat": false, "alwaysUv": false, "credMgmt": true, "credentialMgmtPreview": true,
		"clientPin": s.st.PINHash != nil, "pinUvAuthToken": true, "makeCredUvNotRqd": true,
	}
	if s.st.Enterprise {
		opts["ep"] = true
	}
	fw := s.st.Firmware
	return reply(map[int]any{
		0x01: []string{"FIDO_2_0", "FIDO_2_1_PRE", "FIDO_2_1"},
		0x02: []string{"credProtect", "hmac-secret"},
		0x03: s.st.AAGUID,
		0x04: opts,
		0x05: 1200,
		0x06: []int{2, 1},
		0x07: 8,
		0x08: maxCredentialIDBytes,
		0x09: []string{"nfc", "usb"},
		0x0a: []map[string]any{{"alg": -7, "type": "public-key"}},
		0x0c: false, // forcePINChange
		0x0d: 4,     // minPINLength
		0x0e: int(fw[0])<<16 | int(fw[1])<<8 | int(fw[2]),
		0x14: maxResidentKeys - len(s.st.Resident),
	})
}
