package fido2

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"github.com/keyfleet/keyfleet/agent"
)

// CTAPTransport carries one CTAP2 request (command byte and CBOR) to a key
// and returns its response (status byte and CBOR).
type CTAPTransport interface {
	CTAP(req []byte) ([]byte, error)
	Close() error
}

// CTAPToken is the platform's side of CTAP2 (CTAP 2.1 §6) over any
// transport: an agent.FIDO2Token for keys reached through PC/SC (the
// FIDO applet over CCID or NFC) rather than libfido2's USB HID. It uses
// PIN/UV auth protocol two when the key has it, else one.
type CTAPToken struct {
	t        CTAPTransport
	path     string
	protocol int // tests: force PIN/UV auth protocol one
}

var _ agent.FIDO2Token = (*CTAPToken)(nil)

// NewCTAPToken wraps a transport; path names the key in Info.
func NewCTAPToken(t CTAPTransport, path string) *CTAPToken {
	return &CTAPToken{t: t, path: path}
}

// CTAPError is a CTAP status code the agent has no sentinel for.
type CTAPError struct{ Code byte }

func (e *CTAPError) Error() string {
	return fmt.Sprintf("the FIDO2 key refused the request (CTAP status 0x%02x)", e.Code)
}

// Close closes the transport.
func (c *CTAPToken) Close() error { return c.t.Close() }

// call sends a command and decodes a successful answer into out (nil:
// no body expected). Errors are the agent's sentinels, *CTAPError, or the
// transport's.
func (c *CTAPToken) call(cmd byte, params any, out any) error {
	req := []byte{cmd}
	if params != nil {
		b, err := ctap2.Marshal(params)
		if err != nil {
			return err
		}
		req = append(req, b...)
	}
	resp, err := c.t.CTAP(req)
	if err != nil {
		return err
	}
	if len(resp) == 0 {
		return errors.New("the FIDO2 key gave an empty answer")
	}
	if resp[0] != ctapOK {
		return c.statusError(resp[0])
	}
	if out == nil || len(resp) == 1 {
		return nil
	}
	if err := cbor.Unmarshal(resp[1:], out); err != nil {
		return fmt.Errorf("decoding the FIDO2 key's answer: %w", err)
	}
	return nil
}

func (c *CTAPToken) statusError(code byte) error {
	switch code {
	case ctapPINInvalid:
		n, err := c.PINRetries()
		if err != nil {
			return &agent.WrongPINError{}
		}
		return &agent.WrongPINError{Retries: n}
	case ctapPINBlocked:
		return agent.ErrPINBlocked
	case ctapPINAuthBlocked: // three wrong PINs in a row: until the key is reinserted
		return agent.ErrPINAuthBlocked
	case ctapPINRequired:
		return agent.ErrFIDO2PINRequired
	case ctapPINPolicyViolation:
		return agent.ErrPINPolicy
	case ctapNoCredentials:
		return agent.ErrNoCredential
	case ctapCredentialExcluded:
		return agent.ErrCredentialExcluded
	case ctapOperationDenied:
		return agent.ErrTouchDenied
	case ctapUserActionTimeout, 0x2d: // 2D: KEEPALIVE_CANCEL
		return agent.ErrTouchTimeout
	}
	return &CTAPError{Code: code}
}

// Reset sends authenticatorReset (CTAP 2.1 §6.6); the key waits for a
// touch. Errors: agent.ErrResetWindow when the key was plugged in too
// long before, ErrTouchTimeout, ErrTouchDenied.
func (c *CTAPToken) Reset() error {
	err := c.call(cmdReset, nil, nil)
	if ce := (*CTAPError)(nil); errors.As(err, &ce) && ce.Code == ctapNotAllowed {
		return agent.ErrResetWindow
	}
	return err
}

type infoResponse struct {
	Versions  []string        `cbor:"1,keyasint"`
	AAGUID    []byte          `cbor:"3,keyasint"`
	Options   map[string]bool `cbor:"4,keyasint"`
	Protocols []int           `cbor:"6,keyasint"`
}

func (c *CTAPToken) info() (infoResponse, error) {
	var r infoResponse
	err := c.call(cmdGetInfo, nil, &r)
	return r, err
}

// Info reads authenticatorGetInfo.
func (c *CTAPToken) Info() (agent.FIDO2Info, error) {
	r, err := c.info()
	if err != nil {
		return agent.FIDO2Info{}, err
	}
	return agent.FIDO2Info{Path: c.path, Product: "FIDO2 key over PC/SC", AAGUID: r.AAGUID, Versions: r.Versions,
		PINSet: r.Options["clientPin"], Enterprise: r.Options["ep"]}, nil
}

// PINRetries asks the key how many wrong PINs are left.
func (c *CTAPToken) PINRetries() (int, error) {
	var r struct {
		Retries int `cbor:"3,keyasint"`
	}
	err := c.call(cmdClientPIN, map[int]any{1: 1, 2: pinGetRetries}, &r)
	return r.Retries, err
}

// pinSession is one key agreement: the protocol, our COSE key and the
// shared secret.
type pinSession struct {
	proto  int
	pp     pinProtocol
	ours   map[int]any
	secret []byte
}

func (c *CTAPToken) agree() (pinSession, error) {
	r, err := c.info()
	if err != nil {
		return pinSession{}, err
	}
	s := pinSession{proto: 1, pp: pinProtocolOne{}}
	for _, p := range r.Protocols {
		if p == 2 && c.protocol != 1 {
			s.proto, s.pp = 2, pinProtocolTwo{}
		}
	}
	var ka struct {
		Key platformKey `cbor:"1,keyasint"`
	}
	if err := c.call(cmdClientPIN, map[int]any{1: s.proto, 2: pinGetKeyAgreement}, &ka); err != nil {
		return s, err
	}
	peer, err := ka.Key.public()
	if err != nil {
		return s, fmt.Errorf("the FIDO2 key's agreement key: %w", err)
	}
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return s, err
	}
	z, err := k.ECDH(peer)
	if err != nil {
		return s, err
	}
	s.ours = coseKeyAgreement(k)
	s.secret, err = s.pp.kdf(z)
	return s, err
}

func padPIN(pin string) []byte {
	b := make([]byte, 64)
	copy(b, pin)
	return b
}

// SetPIN sets the first PIN (clientPIN setPIN).
func (c *CTAPToken) SetPIN(pin string) error {
	if validPIN(pin) != nil {
		return agent.ErrPINPolicy
	}
	s, err := c.agree()
	if err != nil {
		return err
	}
	enc, err := s.pp.encrypt(s.secret, padPIN(pin))
	if err != nil {
		return err
	}
	return c.call(cmdClientPIN, map[int]any{1: s.proto, 2: pinSet, 3: s.ours, 4: s.pp.authenticate(s.secret, enc), 5: enc}, nil)
}

// ChangePIN replaces the PIN (clientPIN changePIN).
func (c *CTAPToken) ChangePIN(oldPIN, newPIN string) error {
	if validPIN(newPIN) != nil {
		return agent.ErrPINPolicy
	}
	s, err := c.agree()
	if err != nil {
		return err
	}
	newEnc, err := s.pp.encrypt(s.secret, padPIN(newPIN))
	if err != nil {
		return err
	}
	hashEnc, err := s.pp.encrypt(s.secret, pinHash(oldPIN))
	if err != nil {
		return err
	}
	auth := s.pp.authenticate(s.secret, append(bytes.Clone(newEnc), hashEnc...))
	return c.call(cmdClientPIN, map[int]any{1: s.proto, 2: pinChange, 3: s.ours, 4: auth, 5: newEnc, 6: hashEnc}, nil)
}

// pinAuth gets a PIN token and authenticates the client data hash with
// it; it returns the pinUvAuthParam and the protocol number.
func (c *CTAPToken) pinAuth(pin string, clientDataHash []byte) ([]byte, int, error) {
	s, err := c.agree()
	if err != nil {
		return nil, 0, err
	}
	hashEnc, err := s.pp.encrypt(s.secret, pinHash(pin))
	if err != nil {
		return nil, 0, err
	}
	var r struct {
		Token []byte `cbor:"2,keyasint"`
	}
	if err := c.call(cmdClientPIN, map[int]any{1: s.proto, 2: pinGetToken, 3: s.ours, 6: hashEnc}, &r); err != nil {
		return nil, 0, err
	}
	token, err := s.pp.decrypt(s.secret, r.Token)
	if err != nil {
		return nil, 0, fmt.Errorf("the FIDO2 key's PIN token: %w", err)
	}
	return s.pp.authenticate(token, clientDataHash), s.proto, nil
}

func descriptors(ids [][]byte) []credentialDescriptor {
	out := make([]credentialDescriptor, 0, len(ids))
	for _, id := range ids {
		out = append(out, credentialDescriptor{ID: id, Type: "public-key"})
	}
	return out
}

// MakeCredential runs authenticatorMakeCredential (the key waits for a
// touch) and returns the attestation object.
func (c *CTAPToken) MakeCredential(req agent.MakeCredentialRequest) (agent.Attestation, error) {
	params := map[int]any{
		1: req.ClientDataHash,
		2: map[string]any{"id": req.RPID, "name": req.RPName},
		3: map[string]any{"id": req.UserID, "name": req.UserName, "displayName": req.DisplayName},
	}
	algs := make([]map[string]any, 0, len(req.Algorithms))
	for _, a := range req.Algorithms {
		algs = append(algs, map[string]any{"alg": a, "type": "public-key"})
	}
	params[4] = algs
	if len(req.Exclude) > 0 {
		params[5] = descriptors(req.Exclude)
	}
	if req.ResidentKey {
		params[7] = map[string]bool{"rk": true}
	}
	if req.PIN != "" {
		auth, proto, err := c.pinAuth(req.PIN, req.ClientDataHash)
		if err != nil {
			return agent.Attestation{}, err
		}
		params[8], params[9] = auth, proto
	}
	if req.Enterprise {
		params[10] = 1 // vendor-facilitated
	}
	var r struct {
		Fmt      string          `cbor:"1,keyasint"`
		AuthData []byte          `cbor:"2,keyasint"`
		AttStmt  cbor.RawMessage `cbor:"3,keyasint"`
	}
	if err := c.call(cmdMakeCredential, params, &r); err != nil {
		return agent.Attestation{}, err
	}
	id, err := credentialIDOf(r.AuthData)
	if err != nil {
		return agent.Attestation{}, err
	}
	obj, err := ctap2.Marshal(map[string]any{"fmt": r.Fmt, "attStmt": r.AttStmt, "authData": r.AuthData})
	return agent.Attestation{CredentialID: id, AttestationObject: obj}, err
}

// credentialIDOf reads the credential id from attested credential data
// (WebAuthn §6.5.2): rpIdHash 32, flags 1, counter 4, AAGUID 16, length 2.
func credentialIDOf(authData []byte) ([]byte, error) {
	const at = 32 + 1 + 4 + 16
	if len(authData) < at+2 || authData[32]&flagAT == 0 {
		return nil, errors.New("the FIDO2 key's authenticator data has no credential")
	}
	n := int(binary.BigEndian.Uint16(authData[at:]))
	if len(authData) < at+2+n {
		return nil, errors.New("the FIDO2 key's authenticator data is cut short")
	}
	return bytes.Clone(authData[at+2 : at+2+n]), nil
}

// GetAssertion runs authenticatorGetAssertion (the key waits for a touch).
func (c *CTAPToken) GetAssertion(req agent.GetAssertionRequest) (agent.Assertion, error) {
	params := map[int]any{1: req.RPID, 2: req.ClientDataHash}
	if len(req.Allow) > 0 {
		params[3] = descriptors(req.Allow)
	}
	if req.PIN != "" {
		auth, proto, err := c.pinAuth(req.PIN, req.ClientDataHash)
		if err != nil {
			return agent.Assertion{}, err
		}
		params[6], params[7] = auth, proto
	}
	var r struct {
		Cred      credentialDescriptor `cbor:"1,keyasint"`
		AuthData  []byte               `cbor:"2,keyasint"`
		Signature []byte               `cbor:"3,keyasint"`
		User      struct {
			ID []byte `cbor:"id"`
		} `cbor:"4,keyasint"`
	}
	if err := c.call(cmdGetAssertion, params, &r); err != nil {
		return agent.Assertion{}, err
	}
	return agent.Assertion{CredentialID: r.Cred.ID, AuthData: r.AuthData, Signature: r.Signature, UserHandle: r.User.ID}, nil
}
