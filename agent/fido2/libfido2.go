//go:build cgo && !nolibfido2

package fido2

import (
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
	libfido2 "github.com/keys-pub/go-libfido2"

	"github.com/keyfleet/keyfleet/agent"
)

// Opener finds FIDO2 keys on USB HID through libfido2. The zero value is
// ready.
type Opener struct{}

var _ agent.FIDO2Opener = Opener{}

// Devices lists the paths of connected FIDO2 keys (none on a machine
// without USB HID, without an error).
func (Opener) Devices() ([]string, error) {
	locs, err := libfido2.DeviceLocations()
	if err != nil {
		return nil, fmt.Errorf("listing FIDO2 keys: %w", err)
	}
	var out []string
	for _, l := range locs {
		out = append(out, l.Path)
	}
	return out, nil
}

// Open opens the key at path.
func (Opener) Open(path string) (agent.FIDO2Token, error) {
	d, err := libfido2.NewDevice(path)
	if err != nil {
		return nil, fmt.Errorf("opening the FIDO2 key %s: %w", path, mapErr(err))
	}
	return &Token{dev: d, path: path}, nil
}

// Token is one FIDO2 key through libfido2. go-libfido2 opens and closes
// the HID device around every call, so Token holds no handle.
type Token struct {
	dev  *libfido2.Device
	path string
}

var _ agent.FIDO2Token = (*Token)(nil)

// Close releases nothing (see Token).
func (t *Token) Close() error { return nil }

// Info reads authenticatorGetInfo.
func (t *Token) Info() (agent.FIDO2Info, error) {
	in, err := t.dev.Info()
	if err != nil {
		return agent.FIDO2Info{}, mapErr(err)
	}
	info := agent.FIDO2Info{Path: t.path, AAGUID: in.AAGUID, Versions: in.Versions}
	for _, o := range in.Options {
		switch o.Name {
		case "clientPin":
			info.PINSet = o.Value == libfido2.True
		case "ep":
			// Debian's libfido2 1.12 cannot ask for enterprise attestation
			// (fido_cred_set_entattest came later) and go-libfido2 has no
			// call for it, so a key that offers it is still asked for
			// direct attestation.
			info.Enterprise = false
		}
	}
	return info, nil
}

// SetPIN sets the first PIN.
func (t *Token) SetPIN(pin string) error { return mapErr(t.dev.SetPIN(pin, "")) }

// ChangePIN replaces the PIN.
func (t *Token) ChangePIN(oldPIN, newPIN string) error {
	return t.pinErr(t.dev.SetPIN(newPIN, oldPIN))
}

// PINRetries reads the PIN retry counter.
func (t *Token) PINRetries() (int, error) {
	n, err := t.dev.RetryCount()
	return n, mapErr(err)
}

// pinErr maps a wrong PIN to *agent.WrongPINError with the retries left
// (libfido2 does not return them with the error).
func (t *Token) pinErr(err error) error {
	if !errors.Is(err, libfido2.ErrPinInvalid) {
		return mapErr(err)
	}
	n, rerr := t.dev.RetryCount()
	if rerr != nil {
		return &agent.WrongPINError{Retries: -1}
	}
	if n == 0 {
		return agent.ErrPINBlocked
	}
	return &agent.WrongPINError{Retries: n}
}

// MakeCredential makes a credential; the key blinks for a touch.
func (t *Token) MakeCredential(req agent.MakeCredentialRequest) (agent.Attestation, error) {
	opts := &libfido2.MakeCredentialOpts{RK: libfido2.False, UV: libfido2.Default}
	if req.ResidentKey {
		opts.RK = libfido2.True
	}
	if req.UV && req.PIN == "" {
		opts.UV = libfido2.True // a bio key verifies without a PIN
	}
	typ := libfido2.ES256
	if len(req.Algorithms) > 0 && req.Algorithms[0] == int(libfido2.EDDSA) {
		typ = libfido2.EDDSA
	}
	// libfido2 1.12 takes no exclude list through go-libfido2: a key that
	// already holds the credential makes a second one, and the daemon
	// refuses it as already registered if it knows the id.
	att, err := t.dev.MakeCredential(req.ClientDataHash, libfido2.RelyingParty{ID: req.RPID, Name: req.RPName},
		libfido2.User{ID: req.UserID, Name: req.UserName, DisplayName: req.DisplayName}, typ, req.PIN, opts)
	if err != nil {
		return agent.Attestation{}, t.pinErr(err)
	}
	obj, err := attestationObject(att)
	if err != nil {
		return agent.Attestation{}, err
	}
	return agent.Attestation{CredentialID: att.CredentialID, AttestationObject: obj}, nil
}

// GetAssertion signs with the first allowed credential; the key blinks.
func (t *Token) GetAssertion(req agent.GetAssertionRequest) (agent.Assertion, error) {
	opts := &libfido2.AssertionOpts{UP: libfido2.True, UV: libfido2.Default}
	if req.UV && req.PIN == "" {
		opts.UV = libfido2.True
	}
	a, err := t.dev.Assertion(req.RPID, req.ClientDataHash, req.Allow, req.PIN, opts)
	if err != nil {
		return agent.Assertion{}, t.pinErr(err)
	}
	ad, err := unwrapBytes(a.AuthDataCBOR)
	if err != nil {
		return agent.Assertion{}, err
	}
	return agent.Assertion{CredentialID: a.CredentialID, AuthData: ad, Signature: a.Sig, UserHandle: a.User.ID}, nil
}

// Reset is authenticatorReset through libfido2's fido_dev_reset; the key
// blinks for a touch. Hardware quirk: a YubiKey answers NOT_ALLOWED to a
// reset later than 5 s after it was plugged in (agent.ErrResetWindow).
func (t *Token) Reset() error {
	err := t.dev.Reset()
	if errors.Is(err, libfido2.ErrNotAllowed) {
		return agent.ErrResetWindow
	}
	return mapErr(err)
}

// unwrapBytes decodes a CBOR byte string. Hardware quirk (libfido2):
// fido_cred_authdata_ptr and fido_assert_authdata_ptr return the
// authenticator data as the CBOR byte string the key sent, header
// included, not the raw bytes WebAuthn signs over.
func unwrapBytes(b []byte) ([]byte, error) {
	var raw []byte
	if err := cbor.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("the key's authenticator data is not a CBOR byte string: %w", err)
	}
	return raw, nil
}

// attestationObject rebuilds the WebAuthn attestation object (§6.5.4)
// from libfido2's parts. Quirk: libfido2 1.12 exposes only the first x5c
// certificate; YubiKeys send only their leaf, so nothing is lost there.
func attestationObject(att *libfido2.Attestation) ([]byte, error) {
	ad, err := unwrapBytes(att.AuthData)
	if err != nil {
		return nil, err
	}
	stmt := map[string]any{}
	if att.Format != "none" {
		stmt["alg"] = int(att.CredentialType)
		stmt["sig"] = att.Sig
		if len(att.Cert) > 0 {
			stmt["x5c"] = [][]byte{att.Cert}
		}
	}
	return ctap2.Marshal(map[string]any{"fmt": att.Format, "attStmt": stmt, "authData": ad})
}

// mapErr turns libfido2's errors into the agent's.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, libfido2.ErrPinAuthBlocked):
		return agent.ErrPINAuthBlocked // CTAP 0x34: three wrong PINs in a row, until re-inserted
	case errors.Is(err, libfido2.ErrPinRequired):
		return agent.ErrFIDO2PINRequired
	case errors.Is(err, libfido2.ErrPinPolicyViolation):
		return agent.ErrPINPolicy
	case errors.Is(err, libfido2.ErrActionTimeout), errors.Is(err, libfido2.ErrUserPresenceRequired):
		return agent.ErrTouchTimeout
	case errors.Is(err, libfido2.ErrOperationDenied):
		return agent.ErrTouchDenied
	case errors.Is(err, libfido2.ErrNoCredentials):
		return agent.ErrNoCredential
	case errors.Is(err, libfido2.ErrTX), errors.Is(err, libfido2.ErrRX):
		// A key pulled out mid-command fails the HID transfer.
		return fmt.Errorf("%w (%v)", agent.ErrKeyRemoved, err)
	}
	return err
}
