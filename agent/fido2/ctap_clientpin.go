package fido2

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"

	"github.com/fxamacker/cbor/v2"
)

// pinUvAuthToken permissions (CTAP 2.1 §6.5.5.7).
const (
	permMakeCredential = 0x01
	permGetAssertion   = 0x02
	permCredMgmt       = 0x04
	permsSupported     = permMakeCredential | permGetAssertion | permCredMgmt
)

// pinToken is the pinUvAuthToken the key handed out last: its key, its
// permissions and the RP ID they are bound to (empty: none yet).
type pinToken struct {
	key    []byte
	perms  byte
	rpID   string
	legacy bool // from getPinToken (0x05)
}

// used drops the permissions a makeCredential or getAssertion spent
// (§6.1.2 step 11, §6.2.2 step 9: only lbw would stay). Safe on nil.
func (t *pinToken) used() {
	if t != nil {
		t.perms &^= permMakeCredential | permGetAssertion | permCredMgmt
	}
}

// allows reports whether the token may do perm for rpID, binding it to
// rpID when it is bound to none (§6.5.5.7.2 "permissions RP ID").
func (t *pinToken) allows(perm byte, rpID string) bool {
	if t.perms&perm == 0 {
		return false
	}
	if rpID == "" {
		return true
	}
	if t.rpID == "" {
		t.rpID = rpID
	}
	return t.rpID == rpID
}

// checkPermissions validates getPinUvAuthTokenUsingPinWithPermissions'
// parameters: some permission, only those this key has (no bio
// enrolment, large blobs or authenticatorConfig), and an RP ID when mc or
// ga is asked (§6.5.5.7.2).
func checkPermissions(perms byte, rpID string) []byte {
	switch {
	case perms == 0:
		return []byte{ctapInvalidParameter}
	case perms&^permsSupported != 0:
		return []byte{ctapUnauthorizedPerm}
	case perms&(permMakeCredential|permGetAssertion) != 0 && rpID == "":
		return []byte{ctapMissingParameter}
	}
	return nil
}

// ctapUV checks a pinUvAuthParam over the client data hash with the PIN
// token (§6.1.2 steps 1 and 11), which must carry perm for rpID. No
// parameter: no UV. An empty one is a platform asking for a touch to pick
// a key. It returns the UV flag, or the response to send.
func (s *Soft) ctapUV(param []byte, proto int, clientDataHash []byte, perm byte, rpID string) (byte, []byte) {
	if param == nil {
		return 0, nil
	}
	if len(param) == 0 {
		if err := s.touch(); err != nil {
			return 0, ctapStatus(err)
		}
		if s.st.PINHash == nil {
			return 0, []byte{ctapPINNotSet}
		}
		return 0, []byte{ctapPINInvalid}
	}
	pp, ok := protocolFor(proto)
	if !ok {
		return 0, []byte{ctapInvalidParameter}
	}
	t := s.ctap.token
	if t == nil || !verifyParam(pp, t.key, clientDataHash, param) || !t.allows(perm, rpID) {
		return 0, []byte{ctapPINAuthInvalid}
	}
	return flagUV, nil
}

func protocolFor(n int) (pinProtocol, bool) {
	switch n {
	case 1:
		return pinProtocolOne{}, true
	case 2:
		return pinProtocolTwo{}, true
	}
	return nil, false
}

type clientPINParams struct {
	Proto        int          `cbor:"1,keyasint"`
	Sub          int          `cbor:"2,keyasint"`
	KeyAgreement *platformKey `cbor:"3,keyasint"`
	PINAuth      []byte       `cbor:"4,keyasint"`
	NewPINEnc    []byte       `cbor:"5,keyasint"`
	PINHashEnc   []byte       `cbor:"6,keyasint"`
	Permissions  *byte        `cbor:"9,keyasint"`
	RPID         string       `cbor:"10,keyasint"`
}

// clientPIN subcommands (§6.5.5).
const (
	pinGetRetries      = 0x01
	pinGetKeyAgreement = 0x02
	pinSet             = 0x03
	pinChange          = 0x04
	pinGetToken        = 0x05
	pinGetTokenPerms   = 0x09 // getPinUvAuthTokenUsingPinWithPermissions
)

// ctapClientPIN is authenticatorClientPIN (§6.5).
func (s *Soft) ctapClientPIN(b []byte) []byte {
	var p clientPINParams
	if err := cbor.Unmarshal(b, &p); err != nil {
		return []byte{ctapInvalidCBOR}
	}
	if p.Sub == pinGetRetries { // pinRetries and powerCycleState (§6.5.5.2)
		return reply(map[int]any{3: s.st.Retries, 4: s.ctap.pinFails >= maxConsecutivePINFails})
	}
	pp, ok := protocolFor(p.Proto)
	if !ok {
		return []byte{ctapInvalidParameter}
	}
	switch p.Sub {
	case pinGetKeyAgreement:
		k, err := s.agreementKey()
		if err != nil {
			return []byte{ctapOther}
		}
		return reply(map[int]any{1: coseKeyAgreement(k)})
	case pinSet:
		return s.ctapSetPIN(pp, p)
	case pinChange:
		return s.ctapChangePIN(pp, p)
	case pinGetToken:
		return s.ctapGetPINToken(pp, p, permMakeCredential|permGetAssertion, "", true)
	case pinGetTokenPerms:
		if p.Permissions == nil {
			return []byte{ctapMissingParameter}
		}
		if st := checkPermissions(*p.Permissions, p.RPID); st != nil {
			return st
		}
		return s.ctapGetPINToken(pp, p, *p.Permissions, p.RPID, false)
	}
	return []byte{ctapInvalidSubcommand}
}

// agreementKey is the key agreement key, made on first use.
func (s *Soft) agreementKey() (*ecdh.PrivateKey, error) {
	if s.ctap.agreement == nil {
		k, err := ecdh.P256().GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		s.ctap.agreement = k
	}
	return s.ctap.agreement, nil
}

// sharedSecret runs ECDH with the platform's key and the protocol's KDF.
func (s *Soft) sharedSecret(pp pinProtocol, peer *platformKey) ([]byte, []byte) {
	if peer == nil {
		return nil, []byte{ctapMissingParameter}
	}
	pub, err := peer.public()
	if err != nil {
		return nil, []byte{ctapInvalidParameter}
	}
	k, err := s.agreementKey()
	if err != nil {
		return nil, []byte{ctapOther}
	}
	z, err := k.ECDH(pub)
	if err != nil {
		return nil, []byte{ctapInvalidParameter}
	}
	secret, err := pp.kdf(z)
	if err != nil {
		return nil, []byte{ctapOther}
	}
	return secret, nil
}

// newPIN decrypts newPinEnc: the PIN, padded with zeros to 64 bytes.
func newPIN(pp pinProtocol, secret, enc []byte) (string, []byte) {
	padded, err := pp.decrypt(secret, enc)
	if err != nil || len(padded) < 64 {
		return "", []byte{ctapPINPolicyViolation}
	}
	pin := string(bytes.TrimRight(padded, "\x00"))
	if validPIN(pin) != nil {
		return "", []byte{ctapPINPolicyViolation}
	}
	return pin, nil
}

// ctapSetPIN sets the first PIN (§6.5.5.5).
func (s *Soft) ctapSetPIN(pp pinProtocol, p clientPINParams) []byte {
	if p.PINAuth == nil || p.NewPINEnc == nil {
		return []byte{ctapMissingParameter}
	}
	if s.st.PINHash != nil {
		return []byte{ctapNotAllowed}
	}
	secret, st := s.sharedSecret(pp, p.KeyAgreement)
	if st != nil {
		return st
	}
	if !verifyParam(pp, secret, p.NewPINEnc, p.PINAuth) {
		return []byte{ctapPINAuthInvalid}
	}
	pin, st := newPIN(pp, secret, p.NewPINEnc)
	if st != nil {
		return st
	}
	s.st.PINHash, s.st.Retries = pinHash(pin), maxPINRetries
	if err := s.save(); err != nil {
		return []byte{ctapOther}
	}
	return []byte{ctapOK}
}

// checkEncryptedPIN decrypts pinHashEnc and checks it; a wrong PIN makes
// a new key agreement key (§6.5.5.6 step 6).
func (s *Soft) checkEncryptedPIN(pp pinProtocol, secret, enc []byte) []byte {
	if s.st.PINHash == nil {
		return []byte{ctapPINNotSet}
	}
	h, err := pp.decrypt(secret, enc)
	if err != nil || len(h) != 16 {
		return []byte{ctapInvalidParameter}
	}
	if err := s.checkPINHash(h); err != nil {
		s.ctap.agreement = nil
		return ctapStatus(err)
	}
	return nil
}

// ctapChangePIN replaces the PIN (§6.5.5.6).
func (s *Soft) ctapChangePIN(pp pinProtocol, p clientPINParams) []byte {
	if p.PINAuth == nil || p.NewPINEnc == nil || p.PINHashEnc == nil {
		return []byte{ctapMissingParameter}
	}
	secret, st := s.sharedSecret(pp, p.KeyAgreement)
	if st != nil {
		return st
	}
	if !verifyParam(pp, secret, append(bytes.Clone(p.NewPINEnc), p.PINHashEnc...), p.PINAuth) {
		return []byte{ctapPINAuthInvalid}
	}
	if st := s.checkEncryptedPIN(pp, secret, p.PINHashEnc); st != nil {
		return st
	}
	pin, st := newPIN(pp, secret, p.NewPINEnc)
	if st != nil {
		return st
	}
	s.st.PINHash, s.ctap.token = pinHash(pin), nil
	if err := s.save(); err != nil {
		return []byte{ctapOther}
	}
	return []byte{ctapOK}
}

// ctapGetPINToken checks the PIN and hands out a new PIN token with
// perms, bound to rpID when one is given, encrypted to the shared secret
// (§6.5.5.7). getPinToken (legacy) gives mc and ga (§6.5.5.7.1), and the
// FIDO_2_1_PRE credential management command takes its tokens too, as
// keys that answer it do.
func (s *Soft) ctapGetPINToken(pp pinProtocol, p clientPINParams, perms byte, rpID string, legacy bool) []byte {
	if p.PINHashEnc == nil || p.KeyAgreement == nil {
		return []byte{ctapMissingParameter}
	}
	secret, st := s.sharedSecret(pp, p.KeyAgreement)
	if st != nil {
		return st
	}
	if st := s.checkEncryptedPIN(pp, secret, p.PINHashEnc); st != nil {
		return st
	}
	t := &pinToken{key: make([]byte, 32), perms: perms, rpID: rpID, legacy: legacy}
	if _, err := rand.Read(t.key); err != nil {
		return []byte{ctapOther}
	}
	enc, err := pp.encrypt(secret, t.key)
	if err != nil {
		return []byte{ctapOther}
	}
	s.ctap.token = t
	return reply(map[int]any{2: enc})
}
