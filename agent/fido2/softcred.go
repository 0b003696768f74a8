package fido2

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"slices"

	"github.com/fxamacker/cbor/v2"

	"github.com/keyfleet/keyfleet/agent"
)

// Authenticator data flags (WebAuthn §6.1).
const (
	flagUP = 0x01
	flagUV = 0x04
	flagAT = 0x40
)

// Credential id prefixes: a wrapped key (non-resident) or a handle to a
// stored credential (resident).
const (
	idWrapped  = 0x01
	idResident = 0x02
)

var ctap2 = func() cbor.EncMode {
	em, err := cbor.CTAP2EncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return em
}()

// MakeCredential makes a P-256 credential with packed attestation
// (WebAuthn §8.2), after the PIN (when the key has one) and a touch.
func (s *Soft) MakeCredential(req agent.MakeCredentialRequest) (agent.Attestation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed.Load() {
		return agent.Attestation{}, agent.ErrKeyRemoved
	}
	if err := checkAlgorithms(req.Algorithms); err != nil {
		return agent.Attestation{}, err
	}
	uv, err := s.userVerified(req.PIN, req.UV, true)
	if err != nil {
		return agent.Attestation{}, err
	}
	c, err := s.makeCredential(req, uv)
	if err != nil {
		return agent.Attestation{}, err
	}
	obj, err := ctap2.Marshal(map[string]any{"fmt": "packed", "attStmt": c.stmt, "authData": c.authData})
	if err != nil {
		return agent.Attestation{}, err
	}
	return agent.Attestation{CredentialID: c.id, AttestationObject: obj}, nil
}

// errAlgorithm: the request names no algorithm the key has.
var errAlgorithm = errors.New("the key supports ES256 (-7) only")

func checkAlgorithms(algs []int) error {
	if !slices.Contains(algs, -7) && len(algs) > 0 {
		return errAlgorithm
	}
	return nil
}

// credential is a new credential: its id, authenticator data and packed
// attestation statement.
type credential struct {
	id, authData []byte
	stmt         map[string]any
}

// makeCredential makes the credential once the user is verified (uv is
// the UV flag): the exclude list, a touch, the key, the attestation.
// Called with s.mu held.
func (s *Soft) makeCredential(req agent.MakeCredentialRequest, uv byte) (credential, error) {
	for _, id := range req.Exclude {
		if _, ok := s.credentialKey(req.RPID, id); ok {
			if err := s.touch(); err != nil { // CTAP: touch first, then CREDENTIAL_EXCLUDED
				return credential{}, err
			}
			return credential{}, agent.ErrCredentialExcluded
		}
	}
	if err := s.touch(); err != nil {
		return credential{}, err
	}
	key, id, err := s.newCredential(req)
	if err != nil {
		return credential{}, err
	}
	s.st.Counter++
	authData, err := s.authData(req.RPID, flagUP|uv|flagAT, id, &key.PublicKey)
	if err != nil {
		return credential{}, err
	}
	stmt, err := s.attestationStatement(authData, req.ClientDataHash, req.Enterprise && s.st.Enterprise)
	if err != nil {
		return credential{}, err
	}
	return credential{id: id, authData: authData, stmt: stmt}, s.save()
}

// userVerified checks the PIN when one is given or verification is asked,
// and returns the UV flag. A key with a PIN wants it for makeCredential
// (CTAP 2.0 §5.1 step 7; 2.1's makeCredUvNotRqd is not simulated); an
// assertion without UV needs only a touch. Called with s.mu held.
func (s *Soft) userVerified(pin string, uv, makeCred bool) (byte, error) {
	if pin == "" && !uv && !(makeCred && s.st.PINHash != nil) {
		return 0, nil
	}
	if err := s.checkPIN(pin); err != nil {
		return 0, err
	}
	return flagUV, nil
}

// newCredential makes a key and its credential id. Called with s.mu held.
func (s *Soft) newCredential(req agent.MakeCredentialRequest) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	if !req.ResidentKey {
		id, err := s.wrap(req.RPID, der)
		return key, id, err
	}
	id := make([]byte, 17)
	id[0] = idResident
	if _, err := rand.Read(id[1:]); err != nil {
		return nil, nil, err
	}
	// A resident credential replaces the RP's earlier one for the same
	// user (CTAP 2.1 §6.1.2 step 17).
	s.st.Resident = slices.DeleteFunc(s.st.Resident, func(r resident) bool {
		return r.RPID == req.RPID && bytes.Equal(r.UserID, req.UserID)
	})
	s.st.Resident = append(s.st.Resident, resident{ID: id, RPID: req.RPID, UserID: req.UserID, UserName: req.UserName, Key: der})
	return key, id, nil
}

func (s *Soft) aead() (cipher.AEAD, error) {
	b, err := aes.NewCipher(s.st.Master)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// wrap seals a credential key to the RP ID: the id is the key itself,
// encrypted, so a non-resident credential costs the key no storage.
func (s *Soft) wrap(rpID string, der []byte) ([]byte, error) {
	g, err := s.aead()
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	h := sha256.Sum256([]byte(rpID))
	return g.Seal(append([]byte{idWrapped}, nonce...), nonce, der, h[:]), nil
}

// credentialKey finds the key of a credential id for rpID.
func (s *Soft) credentialKey(rpID string, id []byte) (*ecdsa.PrivateKey, bool) {
	var der []byte
	switch {
	case len(id) > 1 && id[0] == idWrapped:
		g, err := s.aead()
		if err != nil || len(id) < 1+g.NonceSize() {
			return nil, false
		}
		h := sha256.Sum256([]byte(rpID))
		if der, err = g.Open(nil, id[1:1+g.NonceSize()], id[1+g.NonceSize():], h[:]); err != nil {
			return nil, false
		}
	case len(id) > 1 && id[0] == idResident:
		i := slices.IndexFunc(s.st.Resident, func(r resident) bool { return r.RPID == rpID && bytes.Equal(r.ID, id) })
		if i < 0 {
			return nil, false
		}
		der = s.st.Resident[i].Key
	default:
		return nil, false
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	ec, ok := k.(*ecdsa.PrivateKey)
	return ec, err == nil && ok
}

// authData builds authenticator data (WebAuthn §6.1), with attested
// credential data (§6.5.2) when pub is not nil. Called with s.mu held.
func (s *Soft) authData(rpID string, flags byte, id []byte, pub *ecdsa.PublicKey) ([]byte, error) {
	h := sha256.Sum256([]byte(rpID))
	var b bytes.Buffer
	b.Write(h[:])
	b.WriteByte(flags)
	b.Write(binary.BigEndian.AppendUint32(nil, s.st.Counter))
	if pub == nil {
		return b.Bytes(), nil
	}
	b.Write(s.st.AAGUID)
	b.Write(binary.BigEndian.AppendUint16(nil, uint16(len(id))))
	b.Write(id)
	cose, err := coseKey(pub)
	if err != nil {
		return nil, err
	}
	b.Write(cose)
	return b.Bytes(), nil
}

// coseKey encodes an EC2 P-256 ES256 key (RFC 9053 §7.1.1).
func coseKey(pub *ecdsa.PublicKey) ([]byte, error) {
	raw, err := pub.Bytes() // 0x04 ‖ X ‖ Y
	if err != nil {
		return nil, err
	}
	return ctap2.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: raw[1:33], -3: raw[33:65]})
}

// attestationStatement signs authData ‖ clientDataHash with the
// attestation key (packed, WebAuthn §8.2).
func (s *Soft) attestationStatement(authData, clientDataHash []byte, enterprise bool) (map[string]any, error) {
	cert := s.st.AttCert
	if enterprise {
		cert = s.st.EntCert
	}
	sig, err := sign(s.attKey, append(bytes.Clone(authData), clientDataHash...))
	if err != nil {
		return nil, err
	}
	return map[string]any{"alg": -7, "sig": sig, "x5c": [][]byte{cert}}, nil
}

func sign(k *ecdsa.PrivateKey, msg []byte) ([]byte, error) {
	d := sha256.Sum256(msg)
	return ecdsa.SignASN1(rand.Reader, k, d[:])
}

// GetAssertion signs authData ‖ clientDataHash with the first allowed
// credential the key holds, after the PIN (when asked) and a touch.
func (s *Soft) GetAssertion(req agent.GetAssertionRequest) (agent.Assertion, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed.Load() {
		return agent.Assertion{}, agent.ErrKeyRemoved
	}
	uv, err := s.userVerified(req.PIN, req.UV, false)
	if err != nil {
		return agent.Assertion{}, err
	}
	return s.getAssertion(req, uv|flagUP)
}

// getAssertion signs once the user is verified; flags holds UV and UP
// (without UP there is no touch: CTAP 2.1 §6.2.2 "up" option false).
// Called with s.mu held.
func (s *Soft) getAssertion(req agent.GetAssertionRequest, flags byte) (agent.Assertion, error) {
	id, key, user := s.find(req.RPID, req.Allow)
	if key == nil {
		return agent.Assertion{}, agent.ErrNoCredential
	}
	if flags&flagUP != 0 {
		if err := s.touch(); err != nil {
			return agent.Assertion{}, err
		}
	}
	s.st.Counter++
	ad, _ := s.authData(req.RPID, flags, nil, nil)
	sig, err := sign(key, append(bytes.Clone(ad), req.ClientDataHash...))
	if err != nil {
		return agent.Assertion{}, err
	}
	return agent.Assertion{CredentialID: id, AuthData: ad, Signature: sig, UserHandle: user}, s.save()
}

// find returns the first allowed credential, or with an empty allow list
// a resident one (discoverable credentials, §6.2.3).
func (s *Soft) find(rpID string, allow [][]byte) ([]byte, *ecdsa.PrivateKey, []byte) {
	for _, id := range allow {
		if k, ok := s.credentialKey(rpID, id); ok {
			return id, k, s.userOf(id)
		}
	}
	if len(allow) > 0 {
		return nil, nil, nil
	}
	for _, r := range s.st.Resident {
		if r.RPID == rpID {
			k, _ := s.credentialKey(rpID, r.ID)
			return r.ID, k, r.UserID
		}
	}
	return nil, nil, nil
}

func (s *Soft) userOf(id []byte) []byte {
	for _, r := range s.st.Resident {
		if bytes.Equal(r.ID, id) {
			return r.UserID
		}
	}
	return nil
}
