package agent

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/keyfleet/keyfleet/api"
)

// FIDO2Options configure one FIDO2 provisioning.
type FIDO2Options struct {
	User, Label string
	// PIN is set as the key's first PIN when it has none, or is the key's
	// PIN when it has one. Never logged, never sent to the daemon.
	PIN string
	// Handover marks PIN as a printed hand-over PIN: the factor stays
	// pending until the user activates it.
	Handover bool
	// Touch is called before the key waits for a touch.
	Touch func()
	// Enrolment, if set, is an open fido2 enrolment to complete (one
	// redeemed from an enrolment code); nil creates one for User.
	Enrolment *api.Enrolment
}

// FIDO2Result is what the operator is shown.
type FIDO2Result struct {
	Factor api.Factor
	Key    FIDO2Info
}

// ProvisionFIDO2 sets the key's PIN if it has none, makes a credential for
// the daemon's relying party from the enrolment's challenge (enterprise
// attestation where the key and the enrolment allow it), and submits it.
// Errors wrap ErrFIDO2PINRequired, *WrongPINError, ErrPINBlocked,
// ErrTouchTimeout, ErrKeyRemoved, or the daemon's (whose problem detail
// says why a key was rejected).
func ProvisionFIDO2(ctx context.Context, d Daemon, tok FIDO2Token, o FIDO2Options) (FIDO2Result, error) {
	info, err := tok.Info()
	if err != nil {
		return FIDO2Result{}, err
	}
	if o.PIN == "" {
		if info.PINSet {
			return FIDO2Result{Key: info}, ErrFIDO2PINRequired
		}
		return FIDO2Result{Key: info}, fmt.Errorf("a FIDO2 PIN is needed to set on the key")
	}
	if !info.PINSet {
		if err := tok.SetPIN(o.PIN); err != nil {
			return FIDO2Result{Key: info}, fmt.Errorf("setting the key's FIDO2 PIN: %w", err)
		}
	}
	e, err := enrolmentFor(ctx, d, o.Enrolment, o.User, "fido2")
	if err != nil {
		return FIDO2Result{Key: info}, err
	}
	return completeFIDO2(ctx, d, tok, e, info, o)
}

// completeFIDO2 registers the key for an open enrolment.
func completeFIDO2(ctx context.Context, d Daemon, tok FIDO2Token, e api.Enrolment, info FIDO2Info, o FIDO2Options) (FIDO2Result, error) {
	res := FIDO2Result{Key: info}
	opts, origin, err := CreationOptions(e.Params)
	if err != nil {
		return res, err
	}
	reg, err := Register(tok, opts, Ceremony{Origin: origin, PIN: o.PIN, Touch: o.Touch})
	if err != nil {
		return res, fmt.Errorf("making the credential: %w", err)
	}
	reg.Handover = o.Handover
	body, err := json.Marshal(reg)
	if err != nil {
		return res, err
	}
	res.Factor, err = d.CompleteEnrolment(ctx, e.ID, api.CompleteEnrolment{Label: o.Label, Payload: body})
	if err != nil {
		return res, fmt.Errorf("completing the enrolment: %w", err)
	}
	return res, nil
}
