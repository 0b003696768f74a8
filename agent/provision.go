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

// ProvisionPIV provisions tok for a user: optional reset, new management
// key (kept PIN-protected on the key), new PIN and PUK, key generation as
// the daemon's enrolment asks, attestation and proof of possession, then
// completion. Errors wrap ErrNotFactoryFresh, *WrongPINError, the token's
// errors, or the daemon's (whose problem detail says why a key was
// rejected).
func ProvisionPIV(ctx context.Context, d Daemon, tok PIVToken, o ProvisionOptions) (ProvisionResult, error) {
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	info, err := prepare(tok, o.Reset)
	if err != nil {
		return ProvisionResult{}, err
	}
	e, err := enrolmentFor(ctx, d, o.Enrolment, o.User, "piv")
	if err != nil {
		return ProvisionResult{}, err
	}
	spec, err := specFrom(e.Params)
	if err != nil {
		return ProvisionResult{}, err
	}
	res := ProvisionResult{Device: info}
	secrets, err := newSecrets(o)
	if err != nil {
		return res, err
	}
	res.HandoverPIN, res.PUK = secrets.handover, secrets.puk
	payload, err := setUp(tok, spec, secrets, e.Challenge)
	if err != nil {
		return res, err
	}
	payload.Handover = secrets.handover != ""
	body, err := json.Marshal(payload)
	if err != nil {
		return res, err
	}
	res.Factor, err = d.CompleteEnrolment(ctx, e.ID, api.CompleteEnrolment{Label: o.Label, Payload: body})
	if err != nil {
		return res, fmt.Errorf("completing the enrolment: %w", err)
	}
	return res, nil
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

func prepare(tok PIVToken, reset bool) (DeviceInfo, error) {
	if reset {
		if err := tok.Reset(); err != nil {
			return DeviceInfo{}, fmt.Errorf("resetting the key: %w", err)
		}
	}
	fresh, err := tok.IsFactoryFresh()
	if err != nil {
		return DeviceInfo{}, err
	}
	if !fresh {
		return DeviceInfo{}, ErrNotFactoryFresh
	}
	return tok.Info()
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
