package fido2

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"errors"

	"github.com/fxamacker/cbor/v2"

	"github.com/keyfleet/keyfleet/agent"
)

// CTAP2 commands (CTAP 2.1 §6) the software authenticator answers.
const (
	cmdMakeCredential = 0x01
	cmdGetAssertion   = 0x02
	cmdGetInfo        = 0x04
	cmdClientPIN      = 0x06
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
	ctapUnsupportedOption    = 0x2b
	ctapNoCredentials        = 0x2e
	ctapUserActionTimeout    = 0x2f
	ctapNotAllowed           = 0x30
	ctapPINInvalid           = 0x31
	ctapPINBlocked           = 0x32
	ctapPINAuthInvalid       = 0x33
	ctapPINNotSet            = 0x35
	ctapPINRequired          = 0x36
	ctapPINPolicyViolation   = 0x37
	ctapInvalidSubcommand    = 0x3e
	ctapOther                = 0x7f
)

// ctapSession is what the authenticator forgets at power-up: the key
// agreement key and the PIN token of the clientPIN protocol (§6.5).
type ctapSession struct {
	agreement *ecdh.PrivateKey
	token     []byte
}

// CTAP answers one CTAP2 request (the command byte, then its CBOR
// parameters) with the response (a status byte, then CBOR), as the CTAP
// transports carry them (CTAP 2.1 §8, §11.3 for NFC and smart cards). It
// implements authenticatorMakeCredential, authenticatorGetAssertion,
// authenticatorGetInfo and authenticatorClientPIN with PIN/UV auth
// protocols one and two. Errors are CTAP status codes, never Go errors.
func (s *Soft) CTAP(msg []byte) []byte {
	if len(msg) == 0 {
		return []byte{ctapInvalidLength}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed.Load() {
		return []byte{ctapOther}
	}
	switch msg[0] {
	case cmdGetInfo:
		return s.ctapGetInfo()
	case cmdMakeCredential:
		return s.ctapMakeCredential(msg[1:])
	case cmdGetAssertion:
		return s.ctapGetAssertion(msg[1:])
	case cmdClientPIN:
		return s.ctapClientPIN(msg[1:])
	}
	return []byte{ctapInvalidCommand}
}

// PowerCycle forgets the PIN token and the key agreement key, as a key
// does when it loses power.
func (s *Soft) PowerCycle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctap = ctapSession{}
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
		{agent.ErrFIDO2PINRequired, ctapPINRequired},
		{agent.ErrPINPolicy, ctapPINPolicyViolation},
		{errAlgorithm, ctapUnsupportedAlgorithm},
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

// ctapGetInfo is authenticatorGetInfo (§6.4).
func (s *Soft) ctapGetInfo() []byte {
	opts := map[string]bool{"rk": true, "up": true, "plat": false, "clientPin": s.st.PINHash != nil}
	if s.st.Enterprise {
		opts["ep"] = true
	}
	return reply(map[int]any{
		1: []string{"FIDO_2_0"}, 3: s.st.AAGUID, 4: opts, 5: 1200, 6: []int{2, 1},
	})
}

type credentialDescriptor struct {
	ID   []byte `cbor:"id"`
	Type string `cbor:"type"`
}

func credentialIDs(list []credentialDescriptor) [][]byte {
	var out [][]byte
	for _, c := range list {
		if c.Type == "public-key" {
			out = append(out, c.ID)
		}
	}
	return out
}

type makeCredentialParams struct {
	ClientDataHash []byte `cbor:"1,keyasint"`
	RP             struct {
		ID   string `cbor:"id"`
		Name string `cbor:"name"`
	} `cbor:"2,keyasint"`
	User struct {
		ID          []byte `cbor:"id"`
		Name        string `cbor:"name"`
		DisplayName string `cbor:"displayName"`
	} `cbor:"3,keyasint"`
	Params []struct {
		Alg  int    `cbor:"alg"`
		Type string `cbor:"type"`
	} `cbor:"4,keyasint"`
	Exclude    []credentialDescriptor `cbor:"5,keyasint"`
	Options    map[string]bool        `cbor:"7,keyasint"`
	PINAuth    []byte                 `cbor:"8,keyasint"`
	PINProto   int                    `cbor:"9,keyasint"`
	Enterprise int                    `cbor:"10,keyasint"`
}

// ctapMakeCredential is authenticatorMakeCredential (§6.1).
func (s *Soft) ctapMakeCredential(b []byte) []byte {
	var p makeCredentialParams
	if err := cbor.Unmarshal(b, &p); err != nil {
		return []byte{ctapInvalidCBOR}
	}
	if p.ClientDataHash == nil || p.RP.ID == "" || p.User.ID == nil || p.Params == nil {
		return []byte{ctapMissingParameter}
	}
	algs := make([]int, 0, len(p.Params))
	for _, a := range p.Params {
		algs = append(algs, a.Alg)
	}
	if err := checkAlgorithms(algs); err != nil || len(algs) == 0 {
		return []byte{ctapUnsupportedAlgorithm}
	}
	if p.Options["uv"] || p.Options["up"] { // no built-in UV; "up" must not be given (§6.1.2 step 5)
		return []byte{ctapUnsupportedOption}
	}
	uv, st := s.ctapUV(p.PINAuth, p.PINProto, p.ClientDataHash)
	if st != nil {
		return st
	}
	if uv == 0 && s.st.PINHash != nil { // CTAP 2.0 §5.1 step 7
		return []byte{ctapPINRequired}
	}
	req := agent.MakeCredentialRequest{
		ClientDataHash: p.ClientDataHash, RPID: p.RP.ID, RPName: p.RP.Name,
		UserID: p.User.ID, UserName: p.User.Name, DisplayName: p.User.DisplayName,
		Algorithms: algs, Exclude: credentialIDs(p.Exclude), ResidentKey: p.Options["rk"],
		Enterprise: p.Enterprise != 0,
	}
	c, err := s.makeCredential(req, uv)
	if err != nil {
		return ctapStatus(err)
	}
	out := map[int]any{1: "packed", 2: c.authData, 3: c.stmt}
	if req.Enterprise && s.st.Enterprise {
		out[4] = true // epAtt
	}
	return reply(out)
}

// ctapUV checks a pinUvAuthParam over the client data hash with the PIN
// token (§6.1.2 steps 1 and 11). No parameter: no UV. An empty one is a
// platform asking for a touch to pick a key. It returns the UV flag, or
// the response to send.
func (s *Soft) ctapUV(param []byte, proto int, clientDataHash []byte) (byte, []byte) {
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
	if s.ctap.token == nil || !verifyParam(pp, s.ctap.token, clientDataHash, param) {
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

type getAssertionParams struct {
	RPID           string                 `cbor:"1,keyasint"`
	ClientDataHash []byte                 `cbor:"2,keyasint"`
	Allow          []credentialDescriptor `cbor:"3,keyasint"`
	Options        map[string]bool        `cbor:"5,keyasint"`
	PINAuth        []byte                 `cbor:"6,keyasint"`
	PINProto       int                    `cbor:"7,keyasint"`
}

// ctapGetAssertion is authenticatorGetAssertion (§6.2), one credential
// per request (no authenticatorGetNextAssertion).
func (s *Soft) ctapGetAssertion(b []byte) []byte {
	var p getAssertionParams
	if err := cbor.Unmarshal(b, &p); err != nil {
		return []byte{ctapInvalidCBOR}
	}
	if p.RPID == "" || p.ClientDataHash == nil {
		return []byte{ctapMissingParameter}
	}
	if p.Options["uv"] {
		return []byte{ctapUnsupportedOption}
	}
	uv, st := s.ctapUV(p.PINAuth, p.PINProto, p.ClientDataHash)
	if st != nil {
		return st
	}
	flags := uv
	if up, given := p.Options["up"]; up || !given {
		flags |= flagUP
	}
	req := agent.GetAssertionRequest{RPID: p.RPID, ClientDataHash: p.ClientDataHash, Allow: credentialIDs(p.Allow)}
	a, err := s.getAssertion(req, flags)
	if err != nil {
		return ctapStatus(err)
	}
	out := map[int]any{1: credentialDescriptor{ID: a.CredentialID, Type: "public-key"}, 2: a.AuthData, 3: a.Signature}
	if a.UserHandle != nil {
		out[4] = map[string]any{"id": a.UserHandle}
	}
	return reply(out)
}

type clientPINParams struct {
	Proto        int          `cbor:"1,keyasint"`
	Sub          int          `cbor:"2,keyasint"`
	KeyAgreement *platformKey `cbor:"3,keyasint"`
	PINAuth      []byte       `cbor:"4,keyasint"`
	NewPINEnc    []byte       `cbor:"5,keyasint"`
	PINHashEnc   []byte       `cbor:"6,keyasint"`
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
	if p.Sub == pinGetRetries {
		return reply(map[int]any{3: s.st.Retries})
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
	case pinGetToken, pinGetTokenPerms:
		return s.ctapGetPINToken(pp, p)
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

// ctapGetPINToken checks the PIN and hands out a new PIN token, encrypted
// to the shared secret (§6.5.5.7). Permissions are not enforced: the
// token allows makeCredential and getAssertion, all this key does.
func (s *Soft) ctapGetPINToken(pp pinProtocol, p clientPINParams) []byte {
	if p.PINHashEnc == nil {
		return []byte{ctapMissingParameter}
	}
	secret, st := s.sharedSecret(pp, p.KeyAgreement)
	if st != nil {
		return st
	}
	if st := s.checkEncryptedPIN(pp, secret, p.PINHashEnc); st != nil {
		return st
	}
	token := make([]byte, 32)
	if _, err := rand.Read(token); err != nil {
		return []byte{ctapOther}
	}
	enc, err := pp.encrypt(secret, token)
	if err != nil {
		return []byte{ctapOther}
	}
	s.ctap.token = token
	return reply(map[int]any{2: enc})
}
