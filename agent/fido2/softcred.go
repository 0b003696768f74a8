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
	flagED = 0x80
)

// Credential id prefixes: a wrapped key (non-resident) or a handle to a
// stored credential (resident). idWrapped ids (a PKCS #8 key, no options)
// are still read; new non-resident credentials are idWrappedV2: the raw
// P-256 scalar and the credential's options, 63 bytes in all, within the
// 128 a YubiKey reports as maxCredentialIdLength.
const (
	idWrapped   = 0x01
	idResident  = 0x02
	idWrappedV2 = 0x03
)

// Bits of a wrapped credential's option byte.
const wrapHMACSecret = 0x01

var ctap2 = func() cbor.EncMode {
	em, err := cbor.CTAP2EncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return em
}()

// credOptions are what a credential was made with besides its key: the
// hmac-secret extension (CTAP 2.1 §12.5) and its credProtect level
// (§12.1; 0 when none was asked, which acts as 1).
type credOptions struct {
	HMACSecret  bool
	CredProtect byte
}

// foundCred is a credential the key holds: its id and key, its options,
// and for a resident one the stored record.
type foundCred struct {
	id   []byte
	key  *ecdsa.PrivateKey
	opts credOptions
	res  *resident
}

func (f foundCred) userID() []byte {
	if f.res == nil {
		return nil
	}
	return f.res.UserID
}

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
	uv, err := s.userVerified(req.PIN, req.UV, req.ResidentKey)
	if err != nil {
		return agent.Attestation{}, err
	}
	c, err := s.makeCredential(req, uv, credOptions{}, nil)
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
// the UV flag): the exclude list, a touch, the key, the attestation. ext
// is the authenticator extension output to put in the authenticator data
// (nil: none). Called with s.mu held.
func (s *Soft) makeCredential(req agent.MakeCredentialRequest, uv byte, o credOptions, ext map[string]any) (credential, error) {
	for _, id := range req.Exclude {
		if c, ok := s.credential(req.RPID, id); ok && (c.opts.CredProtect < 3 || uv != 0) {
			if err := s.touch(); err != nil { // CTAP: touch first, then CREDENTIAL_EXCLUDED
				return credential{}, err
			}
			return credential{}, agent.ErrCredentialExcluded
		}
	}
	if err := s.touch(); err != nil {
		return credential{}, err
	}
	key, id, err := s.newCredential(req, o)
	if err != nil {
		return credential{}, err
	}
	s.st.Counter++
	flags := byte(flagUP|flagAT) | uv
	if ext != nil {
		flags |= flagED
	}
	authData, err := s.authData(req.RPID, flags, id, &key.PublicKey, ext)
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
// and returns the UV flag. A key with a PIN wants it for a discoverable
// credential; a non-discoverable one may be made without
// (makeCredUvNotRqd, CTAP 2.1 §6.1.2 step 6), and an assertion without UV
// needs only a touch. Called with s.mu held.
func (s *Soft) userVerified(pin string, uv, residentKey bool) (byte, error) {
	if pin == "" && !uv && !(residentKey && s.st.PINHash != nil) {
		return 0, nil
	}
	if err := s.checkPIN(pin); err != nil {
		return 0, err
	}
	return flagUV, nil
}

// newCredential makes a key and its credential id. Called with s.mu held.
func (s *Soft) newCredential(req agent.MakeCredentialRequest, o credOptions) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	if !req.ResidentKey {
		id, err := s.wrap(req.RPID, key, o)
		return key, id, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
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
	s.st.Resident = append(s.st.Resident, resident{ID: id, RPID: req.RPID, RPName: req.RPName, UserID: req.UserID,
		UserName: req.UserName, DisplayName: req.DisplayName, Key: der, HMACSecret: o.HMACSecret, CredProtect: o.CredProtect})
	return key, id, nil
}

func (s *Soft) aead() (cipher.AEAD, error) {
	b, err := aes.NewCipher(s.st.Master)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// wrap seals a credential key and its options to the RP ID: the id is the
// key itself, encrypted, so a non-resident credential costs the key no
// storage.
func (s *Soft) wrap(rpID string, key *ecdsa.PrivateKey, o credOptions) ([]byte, error) {
	g, err := s.aead()
	if err != nil {
		return nil, err
	}
	scalar, err := key.Bytes()
	if err != nil {
		return nil, err
	}
	var bits byte
	if o.HMACSecret {
		bits |= wrapHMACSecret
	}
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	h := sha256.Sum256([]byte(rpID))
	plain := append([]byte{bits, o.CredProtect}, scalar...)
	return g.Seal(append([]byte{idWrappedV2}, nonce...), nonce, plain, h[:]), nil
}

// unwrap opens a wrapped credential id for rpID.
func (s *Soft) unwrap(rpID string, id []byte) (foundCred, bool) {
	g, err := s.aead()
	if err != nil || len(id) < 1+g.NonceSize() {
		return foundCred{}, false
	}
	h := sha256.Sum256([]byte(rpID))
	plain, err := g.Open(nil, id[1:1+g.NonceSize()], id[1+g.NonceSize():], h[:])
	if err != nil {
		return foundCred{}, false
	}
	if id[0] == idWrapped {
		k, ok := parseKey(plain)
		return foundCred{id: id, key: k}, ok
	}
	if len(plain) != 2+32 {
		return foundCred{}, false
	}
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), plain[2:])
	if err != nil {
		return foundCred{}, false
	}
	return foundCred{id: id, key: k, opts: credOptions{HMACSecret: plain[0]&wrapHMACSecret != 0, CredProtect: plain[1]}}, true
}

func parseKey(der []byte) (*ecdsa.PrivateKey, bool) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	ec, ok := k.(*ecdsa.PrivateKey)
	return ec, err == nil && ok
}

// credential finds the credential of an id for rpID.
func (s *Soft) credential(rpID string, id []byte) (foundCred, bool) {
	switch {
	case len(id) > 1 && (id[0] == idWrapped || id[0] == idWrappedV2):
		return s.unwrap(rpID, id)
	case len(id) > 1 && id[0] == idResident:
		i := slices.IndexFunc(s.st.Resident, func(r resident) bool { return r.RPID == rpID && bytes.Equal(r.ID, id) })
		if i < 0 {
			return foundCred{}, false
		}
		return s.residentCred(i)
	}
	return foundCred{}, false
}

// residentCred is the i-th stored credential as a foundCred.
func (s *Soft) residentCred(i int) (foundCred, bool) {
	r := &s.st.Resident[i]
	k, ok := parseKey(r.Key)
	return foundCred{id: r.ID, key: k, opts: credOptions{HMACSecret: r.HMACSecret, CredProtect: r.CredProtect}, res: r}, ok
}

// authData builds authenticator data (WebAuthn §6.1), with attested
// credential data (§6.5.2) when pub is not nil and extension outputs when
// ext is not nil. Called with s.mu held.
func (s *Soft) authData(rpID string, flags byte, id []byte, pub *ecdsa.PublicKey, ext map[string]any) ([]byte, error) {
	h := sha256.Sum256([]byte(rpID))
	var b bytes.Buffer
	b.Write(h[:])
	b.WriteByte(flags)
	b.Write(binary.BigEndian.AppendUint32(nil, s.st.Counter))
	if pub != nil {
		b.Write(s.st.AAGUID)
		b.Write(binary.BigEndian.AppendUint16(nil, uint16(len(id))))
		b.Write(id)
		cose, err := coseKey(pub)
		if err != nil {
			return nil, err
		}
		b.Write(cose)
	}
	if ext != nil {
		e, err := ctap2.Marshal(ext)
		if err != nil {
			return nil, err
		}
		b.Write(e)
	}
	return b.Bytes(), nil
}

// coseKey encodes an EC2 P-256 ES256 key (RFC 9053 §7.1.1).
func coseKey(pub *ecdsa.PublicKey) ([]byte, error) {
	m, err := coseKeyMap(pub)
	if err != nil {
		return nil, err
	}
	return ctap2.Marshal(m)
}

func coseKeyMap(pub *ecdsa.PublicKey) (map[int]any, error) {
	raw, err := pub.Bytes() // 0x04 ‖ X ‖ Y
	if err != nil {
		return nil, err
	}
	return map[int]any{1: 2, 3: -7, -1: 1, -2: raw[1:33], -3: raw[33:65]}, nil
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
// credential the key holds (with an empty allow list, its most recent
// discoverable one for the RP), after the PIN (when asked) and a touch.
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
	creds := s.matching(req.RPID, req.Allow, uv != 0)
	if len(creds) == 0 {
		return agent.Assertion{}, agent.ErrNoCredential
	}
	if err := s.touch(); err != nil {
		return agent.Assertion{}, err
	}
	a, err := s.assert(req.RPID, req.ClientDataHash, creds[0], uv|flagUP, nil)
	if err != nil {
		return agent.Assertion{}, err
	}
	return a, s.save()
}

// assert signs one assertion with c; ext is the authenticator extension
// output (nil: none). It counts the signature; the caller saves. Called
// with s.mu held.
func (s *Soft) assert(rpID string, clientDataHash []byte, c foundCred, flags byte, ext map[string]any) (agent.Assertion, error) {
	if ext != nil {
		flags |= flagED
	}
	s.st.Counter++
	ad, err := s.authData(rpID, flags, nil, nil, ext)
	if err != nil {
		return agent.Assertion{}, err
	}
	sig, err := sign(c.key, append(bytes.Clone(ad), clientDataHash...))
	if err != nil {
		return agent.Assertion{}, err
	}
	return agent.Assertion{CredentialID: c.id, AuthData: ad, Signature: sig, UserHandle: c.userID()}, nil
}

// matching returns the credentials an assertion may use (CTAP 2.1 §6.2.2
// step 7): the allowed ones the key holds, or with an empty allow list
// the RP's discoverable ones, most recent first. credProtect hides a
// credential: level 3 unless the user is verified, level 2 from a
// discovery without UV (§12.1). Called with s.mu held.
func (s *Soft) matching(rpID string, allow [][]byte, uv bool) []foundCred {
	var out []foundCred
	for _, id := range allow {
		if c, ok := s.credential(rpID, id); ok && (c.opts.CredProtect < 3 || uv) {
			out = append(out, c)
		}
	}
	if len(allow) > 0 {
		return out
	}
	for i := len(s.st.Resident) - 1; i >= 0; i-- {
		r := s.st.Resident[i]
		if r.RPID != rpID || (r.CredProtect >= 2 && !uv) {
			continue
		}
		if c, ok := s.residentCred(i); ok {
			out = append(out, c)
		}
	}
	return out
}
