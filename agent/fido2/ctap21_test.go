package fido2

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/keyfleet/keyfleet/agent"
)

// platform is a test's CTAP2 platform over a software key: it gets PIN
// tokens with permissions and sends raw commands.
type platform struct {
	t   *testing.T
	k   *Soft
	tok *CTAPToken
}

func newPlatform(t *testing.T, o SoftOptions) *platform {
	k := newTestSoft(t, o)
	p := &platform{t: t, k: k, tok: &CTAPToken{t: loop{k}, path: "test"}}
	if err := p.tok.SetPIN("24681357"); err != nil {
		t.Fatal(err)
	}
	return p
}

// token gets a pinUvAuthToken with perms for rpID (getPinToken when legacy).
func (p *platform) token(perms byte, rpID string, legacy bool) (pinSession, []byte) {
	p.t.Helper()
	s, err := p.tok.agree()
	if err != nil {
		p.t.Fatal(err)
	}
	hashEnc, _ := s.pp.encrypt(s.secret, pinHash("24681357"))
	params := map[int]any{1: s.proto, 2: pinGetTokenPerms, 3: s.ours, 6: hashEnc, 9: perms}
	if rpID != "" {
		params[10] = rpID
	}
	if legacy {
		params = map[int]any{1: s.proto, 2: pinGetToken, 3: s.ours, 6: hashEnc}
	}
	var r struct {
		Token []byte `cbor:"2,keyasint"`
	}
	if err := p.tok.call(cmdClientPIN, params, &r); err != nil {
		p.t.Fatalf("getting a token: %v", err)
	}
	tok, err := s.pp.decrypt(s.secret, r.Token)
	if err != nil {
		p.t.Fatal(err)
	}
	return s, tok
}

// status sends cmd with params and returns the status byte and the body.
func (p *platform) status(cmd byte, params any) (byte, []byte) {
	p.t.Helper()
	req := []byte{cmd}
	if params != nil {
		req = append(req, mustCBOR(p.t, params)...)
	}
	resp := p.k.CTAP(req)
	return resp[0], resp[1:]
}

func (p *platform) resident(rpID, user string, ext map[string]any) []byte {
	p.t.Helper()
	s, tok := p.token(permMakeCredential, rpID, false)
	cdh := sha256Of("make " + user)
	params := map[int]any{1: cdh, 2: map[string]string{"id": rpID}, 3: map[string]any{"id": []byte(user), "name": user},
		4: []map[string]any{{"alg": -7, "type": "public-key"}}, 7: map[string]bool{"rk": true}, 8: s.pp.authenticate(tok, cdh), 9: s.proto}
	if ext != nil {
		params[6] = ext
	}
	st, body := p.status(cmdMakeCredential, params)
	if st != ctapOK {
		p.t.Fatalf("making %s's credential: status %02x", user, st)
	}
	var r struct {
		AuthData []byte `cbor:"2,keyasint"`
	}
	if err := cbor.Unmarshal(body, &r); err != nil {
		p.t.Fatal(err)
	}
	id, err := credentialIDOf(r.AuthData)
	if err != nil {
		p.t.Fatal(err)
	}
	return id
}

func (p *platform) assertParams(rpID string, perms byte, tokenRP string) map[int]any {
	s, tok := p.token(perms, tokenRP, false)
	cdh := sha256Of("sign in")
	return map[int]any{1: rpID, 2: cdh, 6: s.pp.authenticate(tok, cdh), 7: s.proto}
}

// TestAPINTokenIsBoundToItsPermissionsAndRP walks what malware holding
// one PIN token might try: use a token made for one site at another, a
// sign-in token to manage credentials, a spent token again.
func TestAPINTokenIsBoundToItsPermissionsAndRP(t *testing.T) {
	p := newPlatform(t, SoftOptions{})
	p.resident("a.test", "alice", nil)
	p.resident("b.test", "bob", nil)
	if st, _ := p.status(cmdGetAssertion, p.assertParams("b.test", permGetAssertion, "a.test")); st != ctapPINAuthInvalid {
		t.Fatalf("a token bound to a.test signed in at b.test: %02x", st)
	}
	if st, _ := p.status(cmdGetAssertion, p.assertParams("a.test", permMakeCredential, "a.test")); st != ctapPINAuthInvalid {
		t.Fatalf("a makeCredential token signed in: %02x", st)
	}
	s, tok := p.token(permGetAssertion, "a.test", false)
	msg := []byte{cmGetCredsMetadata}
	if st, _ := p.status(cmdCredMgmt, map[int]any{1: cmGetCredsMetadata, 3: s.proto, 4: s.pp.authenticate(tok, msg)}); st != ctapPINAuthInvalid {
		t.Fatalf("a sign-in token read the credential list: %02x", st)
	}
	params := p.assertParams("a.test", permGetAssertion, "a.test")
	if st, _ := p.status(cmdGetAssertion, params); st != ctapOK {
		t.Fatalf("the right token: %02x", st)
	}
	if st, _ := p.status(cmdGetAssertion, params); st != ctapPINAuthInvalid {
		t.Fatalf("a spent token signed in again: %02x", st)
	}
	if st, _ := p.status(cmdClientPIN, map[int]any{1: 2, 2: pinGetTokenPerms, 3: map[int]any{}, 6: []byte{1}, 9: 0x08}); st != ctapUnauthorizedPerm {
		t.Fatalf("a bio enrolment permission the key does not have: %02x", st)
	}
}

// TestGetNextAssertionOnlyRightAfterTheSignIn: the other accounts of a
// discoverable sign-in are handed out only by the very next commands, and
// only for 30 s.
func TestGetNextAssertionOnlyRightAfterTheSignIn(t *testing.T) {
	now := time.Now()
	p := newPlatform(t, SoftOptions{Now: func() time.Time { return now }})
	p.resident("a.test", "alice", nil)
	p.resident("a.test", "bob", nil)
	p.resident("a.test", "carol", nil)
	users := func(body []byte) string {
		var r struct {
			User struct {
				Name string `cbor:"name"`
			} `cbor:"4,keyasint"`
			N int `cbor:"5,keyasint"`
		}
		if err := cbor.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		return r.User.Name
	}
	st, body := p.status(cmdGetAssertion, p.assertParams("a.test", permGetAssertion, "a.test"))
	if st != ctapOK || users(body) != "carol" {
		t.Fatalf("first account: %02x %q", st, users(body))
	}
	if st, body := p.status(cmdGetNextAssertion, nil); st != ctapOK || users(body) != "bob" {
		t.Fatalf("second account: %02x", st)
	}
	p.status(cmdGetInfo, nil)
	if st, _ := p.status(cmdGetNextAssertion, nil); st != ctapNotAllowed {
		t.Fatalf("after another command: %02x", st)
	}
	p.status(cmdGetAssertion, p.assertParams("a.test", permGetAssertion, "a.test"))
	now = now.Add(31 * time.Second)
	if st, _ := p.status(cmdGetNextAssertion, nil); st != ctapNotAllowed {
		t.Fatalf("31 s later: %02x", st)
	}
}

// TestCredProtectHidesCredentials: level 2 keeps a credential out of a
// discovery without UV, level 3 out of any sign-in without UV.
func TestCredProtectHidesCredentials(t *testing.T) {
	p := newPlatform(t, SoftOptions{})
	id := p.resident("a.test", "alice", map[string]any{"credProtect": 3})
	cdh := sha256Of("x")
	allow := []credentialDescriptor{{ID: id, Type: "public-key"}}
	if st, _ := p.status(cmdGetAssertion, map[int]any{1: "a.test", 2: cdh, 3: allow}); st != ctapNoCredentials {
		t.Fatalf("a uvRequired credential without UV: %02x", st)
	}
	if st, _ := p.status(cmdGetAssertion, p.assertParams("a.test", permGetAssertion, "a.test")); st != ctapOK {
		t.Fatalf("with UV: %02x", st)
	}
	p.resident("b.test", "bob", map[string]any{"credProtect": 2})
	if st, _ := p.status(cmdGetAssertion, map[int]any{1: "b.test", 2: cdh}); st != ctapNoCredentials {
		t.Fatalf("a level-2 credential discovered without UV: %02x", st)
	}
}

// TestHMACSecretRefusesSaltsItCannotAuthenticate: hmac-secret salts must
// come authenticated with the shared secret of this key's agreement.
func TestHMACSecretRefusesSaltsItCannotAuthenticate(t *testing.T) {
	p := newPlatform(t, SoftOptions{})
	id := p.resident("a.test", "alice", map[string]any{"hmac-secret": true})
	s, err := p.tok.agree()
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := s.pp.encrypt(s.secret, bytes.Repeat([]byte{7}, 32))
	ext := map[string]any{"hmac-secret": map[int]any{1: s.ours, 2: enc, 3: bytes.Repeat([]byte{0}, 32), 4: s.proto}}
	params := map[int]any{1: "a.test", 2: sha256Of("x"), 3: []credentialDescriptor{{ID: id, Type: "public-key"}}, 4: ext}
	if st, _ := p.status(cmdGetAssertion, params); st != ctapPINAuthInvalid {
		t.Fatalf("unauthenticated salts: %02x", st)
	}
}

// TestResetOnlyInThePowerUpWindow: a reset later than 5 s after the key
// was plugged in changes nothing; within the window it wipes the key.
func TestResetOnlyInThePowerUpWindow(t *testing.T) {
	now := time.Now()
	p := newPlatform(t, SoftOptions{Now: func() time.Time { return now }})
	id := p.resident("a.test", "alice", nil)
	now = now.Add(5*time.Second + time.Millisecond)
	if st, _ := p.status(cmdReset, nil); st != ctapNotAllowed {
		t.Fatalf("a late reset: %02x", st)
	}
	p.k.PowerCycle() // a reader power cycle does not reopen the window
	if st, _ := p.status(cmdReset, nil); st != ctapNotAllowed {
		t.Fatalf("a reset after a reader power cycle: %02x", st)
	}
	p.k.PowerUp()
	if st, _ := p.status(cmdReset, nil); st != ctapOK {
		t.Fatalf("a reset just after plugging in: %02x", st)
	}
	if info, _ := p.k.Info(); info.PINSet {
		t.Fatal("the PIN survived the reset")
	}
	if _, err := p.k.GetAssertion(agent.GetAssertionRequest{RPID: "a.test", ClientDataHash: sha256Of("x"), Allow: [][]byte{id}}); err != agent.ErrNoCredential {
		t.Fatalf("a credential survived the reset: %v", err)
	}
}

// TestNewCredentialIDsFitWhatTheKeyReports: non-discoverable credential
// ids stay within the 128 bytes getInfo promises, and ids of the earlier
// format still sign.
func TestNewCredentialIDsFitWhatTheKeyReports(t *testing.T) {
	k := newTestSoft(t, SoftOptions{})
	att, err := makeCred(k, "", false)
	if err != nil || len(att.CredentialID) > maxCredentialIDBytes {
		t.Fatalf("id of %d bytes, %v", len(att.CredentialID), err)
	}
	der, _ := x509MarshalNewKey(t)
	old, err := k.wrapPKCS8("keyfleet.test", der)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte("x"))
	if _, err := k.GetAssertion(agent.GetAssertionRequest{RPID: "keyfleet.test", ClientDataHash: h[:], Allow: [][]byte{old}}); err != nil {
		t.Fatalf("an id of the earlier format: %v", err)
	}
}

func x509MarshalNewKey(t *testing.T) ([]byte, error) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return x509.MarshalPKCS8PrivateKey(k)
}

// wrapPKCS8 makes a credential id of the earlier format (idWrapped: a
// PKCS #8 key sealed to the RP ID), as keys made before kept them.
func (s *Soft) wrapPKCS8(rpID string, der []byte) ([]byte, error) {
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

// TestResetThroughTheTokenInterfaces: the agent's FIDO2Token.Reset, on
// the software key and through the CTAP client, refuses outside the
// power-up window with agent.ErrResetWindow, waits for a touch, and
// within the window forgets credentials and PIN.
func TestResetThroughTheTokenInterfaces(t *testing.T) {
	for _, via := range []string{"the software key", "the CTAP client"} {
		t.Run(via, func(t *testing.T) {
			now := time.Now()
			k := newTestSoft(t, SoftOptions{Now: func() time.Time { return now }})
			var tok agent.FIDO2Token = k
			if via == "the CTAP client" {
				tok = NewCTAPToken(loop{k}, "test")
			}
			if err := tok.SetPIN("2468"); err != nil {
				t.Fatal(err)
			}
			now = now.Add(6 * time.Second)
			if err := tok.Reset(); !errors.Is(err, agent.ErrResetWindow) {
				t.Fatalf("a late reset: %v", err)
			}
			k.PowerUp()
			k.SetTouch(TouchTimeout)
			if err := tok.Reset(); !errors.Is(err, agent.ErrTouchTimeout) {
				t.Fatalf("a reset nobody touched the key for: %v", err)
			}
			if info, _ := tok.Info(); !info.PINSet {
				t.Fatal("a refused reset removed the PIN")
			}
			k.SetTouch(TouchApprove)
			if err := tok.Reset(); err != nil {
				t.Fatal(err)
			}
			if info, _ := tok.Info(); info.PINSet {
				t.Fatal("the PIN survived the reset")
			}
		})
	}
}
