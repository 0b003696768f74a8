package agent

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math/big"

	"github.com/keyfleet/keyfleet/api"
)

// Daemon is what the workflows need from keyfleetd; *client.Client has it.
type Daemon interface {
	CreateEnrolment(ctx context.Context, in api.CreateEnrolment) (api.Enrolment, error)
	CompleteEnrolment(ctx context.Context, id string, in api.CompleteEnrolment) (api.Factor, error)
	// PreflightEnrolment asks, before the key is changed, whether the
	// enrolment can be completed on it.
	PreflightEnrolment(ctx context.Context, id string, in api.Preflight) (api.PreflightResult, error)
	CancelEnrolment(ctx context.Context, id string) (api.Enrolment, error)
}

// Factory defaults of a YubiKey's PIV applet.
const (
	defaultPIN = "123456"
	defaultPUK = "12345678"
)

// ProvisionOptions configure one PIV provisioning.
type ProvisionOptions struct {
	User string
	// PIN is the user's new PIN, typed at the desk. Empty means a random
	// hand-over PIN: it is returned once to print, and the factor stays
	// pending until the user activates it.
	PIN string
	// Reset wipes a key that is not factory fresh.
	Reset bool
	Label string
	Rand  io.Reader // default crypto/rand
	// Enrolment, if set, is an open piv enrolment to complete (one
	// redeemed from an enrolment code); nil creates one for User.
	Enrolment *api.Enrolment
}

// ProvisionResult is what the operator is shown once.
type ProvisionResult struct {
	Factor api.Factor
	Device DeviceInfo
	// HandoverPIN is set when the PIN was chosen at random.
	HandoverPIN string
	// PUK is random; print it for the sealed envelope or discard it.
	PUK string
}

// String never shows the PIN or PUK.
func (r ProvisionResult) String() string {
	return fmt.Sprintf("factor %s (%s) on key %d", r.Factor.ID, r.Factor.State, r.Device.Serial)
}

// ProvisionPIV provisions tok for a user. It reads the key and asks the
// daemon first (PreflightPIV): nothing on the key changes unless the
// daemon would accept it. Then optional reset, new management key (kept
// PIN-protected on the key), new PIN and PUK, key generation as the
// daemon's enrolment asks, attestation and proof of possession, and
// completion. When setting up fails or the daemon refuses completion
// after the key was changed, the key is put back to factory settings (it
// was factory fresh, or reset by this run, before) so that the next run
// needs no --reset. Errors wrap ErrNotFactoryFresh, ErrPreflight,
// *RefusedError, *WrongPINError, the token's errors, or the daemon's
// (whose problem detail says why a key was rejected).
func ProvisionPIV(ctx context.Context, d Daemon, tok PIVToken, o ProvisionOptions) (ProvisionResult, error) {
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	e, info, err := preflightPIV(ctx, d, tok, o)
	if err != nil {
		return ProvisionResult{Device: info}, err
	}
	res := ProvisionResult{Device: info}
	if err := prepare(tok, o.Reset); err != nil {
		return res, err
	}
	secrets, err := newSecrets(o)
	if err != nil {
		return res, err
	}
	res.HandoverPIN, res.PUK = secrets.handover, secrets.puk
	res.Factor, err = setUpAndComplete(ctx, d, tok, e, secrets, o.Label)
	if err != nil {
		res.HandoverPIN, res.PUK = "", "" // nothing to hand over
	}
	return res, err
}

// preflightPIV reads the key (nothing changes), finds or opens the
// enrolment and asks the daemon whether it can be completed on this key.
// A refusal closes an enrolment this run opened.
func preflightPIV(ctx context.Context, d Daemon, tok PIVToken, o ProvisionOptions) (api.Enrolment, DeviceInfo, error) {
	info, err := tok.Info()
	if err != nil {
		return api.Enrolment{}, info, err
	}
	if !o.Reset {
		if fresh, err := tok.IsFactoryFresh(); err != nil || !fresh {
			return api.Enrolment{}, info, cmpOr(err, ErrNotFactoryFresh)
		}
	}
	e, err := enrolmentFor(ctx, d, o.Enrolment, o.User, "piv")
	if err != nil {
		return api.Enrolment{}, info, err
	}
	if err := PreflightPIV(ctx, d, tok, e.ID, info); err != nil {
		if o.Enrolment == nil {
			_, _ = d.CancelEnrolment(ctx, e.ID) // opened for this key only
		}
		return api.Enrolment{}, info, err
	}
	return e, info, nil
}

func cmpOr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

// setUpAndComplete changes the key, then completes the enrolment; on a
// failure after the first change it restores the key (see restore).
func setUpAndComplete(ctx context.Context, d Daemon, tok PIVToken, e api.Enrolment, s secrets, label string) (api.Factor, error) {
	spec, err := specFrom(e.Params)
	if err != nil {
		return api.Factor{}, err
	}
	payload, err := setUp(tok, spec, s, e.Challenge)
	if err != nil {
		return api.Factor{}, restore(tok, err)
	}
	payload.Handover = s.handover != ""
	body, err := json.Marshal(payload)
	if err != nil {
		return api.Factor{}, restore(tok, err)
	}
	f, err := d.CompleteEnrolment(ctx, e.ID, api.CompleteEnrolment{Label: label, Payload: body})
	switch {
	case err == nil:
		return f, nil
	case refusedByDaemon(err):
		return api.Factor{}, restore(tok, fmt.Errorf("completing the enrolment: %w", err))
	}
	// The answer did not come: the factor may exist. Leave the key as it
	// is, so that a factor keyfleetd kept still works.
	return api.Factor{}, fmt.Errorf("completing the enrolment: %w; keyfleetd's answer did not arrive, so the key was left as it is: "+
		"check with 'keyfleet factors list --user %s' whether the factor exists; if not, run the command again with --reset", err, e.UserID)
}

// enrolmentFor is the enrolment to complete: the one given, which must be
// of kind, or a new one for user.
func enrolmentFor(ctx context.Context, d Daemon, given *api.Enrolment, user, kind string) (api.Enrolment, error) {
	if given != nil {
		if given.Kind != kind {
			return api.Enrolment{}, fmt.Errorf("enrolment %s is for a %s factor, not %s", given.ID, given.Kind, kind)
		}
		return *given, nil
	}
	e, err := d.CreateEnrolment(ctx, api.CreateEnrolment{User: user, Kind: kind})
	if err != nil {
		return api.Enrolment{}, fmt.Errorf("creating the enrolment: %w", err)
	}
	return e, nil
}

// prepare resets the key when asked (the daemon accepted it first) and
// checks it is factory fresh.
func prepare(tok PIVToken, reset bool) error {
	if reset {
		if err := tok.Reset(); err != nil {
			return fmt.Errorf("resetting the key: %w", err)
		}
	}
	fresh, err := tok.IsFactoryFresh()
	if err != nil {
		return err
	}
	if !fresh {
		return ErrNotFactoryFresh
	}
	return nil
}

func specFrom(params []byte) (KeySpec, error) {
	var p map[string]string
	if err := json.Unmarshal(params, &p); err != nil {
		return KeySpec{}, fmt.Errorf("reading the enrolment's requirements: %w", err)
	}
	return KeySpec{Slot: p[api.PIVParamSlot], Algorithm: p[api.PIVParamAlgorithm],
		PINPolicy: p[api.PIVParamPINPolicy], TouchPolicy: p[api.PIVParamTouchPolicy]}, nil
}

type secrets struct {
	pin, handover, puk string
	mgmt               []byte
}

func newSecrets(o ProvisionOptions) (secrets, error) {
	s := secrets{pin: o.PIN, mgmt: make([]byte, 24)}
	var err error
	if s.pin == "" {
		if s.pin, err = randomDigits(o.Rand, 8); err != nil {
			return s, err
		}
		s.handover = s.pin
	}
	if len(s.pin) < 6 || len(s.pin) > 8 {
		return s, fmt.Errorf("the PIN must have 6 to 8 characters")
	}
	if s.puk, err = randomDigits(o.Rand, 8); err != nil {
		return s, err
	}
	_, err = io.ReadFull(o.Rand, s.mgmt)
	return s, err
}

func randomDigits(r io.Reader, n int) (string, error) {
	max := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
	v, err := rand.Int(r, max)
	if err != nil {
		return "", fmt.Errorf("drawing a random PIN: %w", err)
	}
	return fmt.Sprintf("%0*d", n, v), nil
}

// setUp changes the secrets, generates and attests the key and signs the
// challenge.
func setUp(tok PIVToken, spec KeySpec, s secrets, challenge []byte) (api.PIVEnrolment, error) {
	if err := tok.SetManagementKey(s.mgmt); err != nil {
		return api.PIVEnrolment{}, fmt.Errorf("setting the management key: %w", err)
	}
	if err := tok.SetPIN(defaultPIN, s.pin); err != nil {
		return api.PIVEnrolment{}, fmt.Errorf("setting the PIN: %w", err)
	}
	if err := tok.SetPUK(defaultPUK, s.puk); err != nil {
		return api.PIVEnrolment{}, fmt.Errorf("setting the PUK: %w", err)
	}
	if err := tok.StoreManagementKey(s.mgmt); err != nil {
		return api.PIVEnrolment{}, fmt.Errorf("storing the management key: %w", err)
	}
	pub, err := tok.GenerateKey(s.mgmt, spec)
	if err != nil {
		return api.PIVEnrolment{}, fmt.Errorf("generating the key in slot %s: %w", spec.Slot, err)
	}
	slot, dev, err := tok.Attest(spec.Slot)
	if err != nil {
		return api.PIVEnrolment{}, fmt.Errorf("attesting slot %s: %w", spec.Slot, err)
	}
	digest := sha256.Sum256(challenge)
	sig, err := tok.SignDigest(spec.Slot, pub, s.pin, digest[:])
	if err != nil {
		return api.PIVEnrolment{}, fmt.Errorf("signing the enrolment challenge: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return api.PIVEnrolment{}, err
	}
	return api.PIVEnrolment{SlotCert: slot.Raw, DeviceCert: dev.Raw, PublicKey: spki, Signature: sig}, nil
}

// RandomPIN draws a PIN of n digits, for a sealed hand-over.
func RandomPIN(n int) (string, error) { return randomDigits(rand.Reader, n) }
