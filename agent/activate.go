package agent

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/keyfleet/keyfleet/api"
)

// Activator is what activation needs from keyfleetd: a challenge for one
// pending factor, and its activation by the answer, verified through the
// kind's FinishVerify with the user as the principal.
//
//	POST /v1/factors/{id}/activate/begin → api.VerificationFactor
//	POST /v1/factors/{id}/activate {"response": …} → api.Factor (active)
type Activator interface {
	BeginActivation(ctx context.Context, factorID string) (api.VerificationFactor, error)
	ActivateFactor(ctx context.Context, factorID string, response json.RawMessage) (api.Factor, error)
}

// ActivateOptions are the user's PINs: the hand-over PIN printed at the
// desk and the new PIN the user chose.
type ActivateOptions struct {
	HandoverPIN, NewPIN string
	Origin              string
	Touch               func()
}

// Activate replaces a pending factor's hand-over PIN on the key with the
// user's own and proves possession, which makes the factor active.
// Errors wrap *WrongPINError (retries left), ErrPINBlocked, ErrNoAnswer
// (the key does not hold the factor) or the daemon's.
func Activate(ctx context.Context, d Activator, f api.Factor, k Keys, o ActivateOptions) (api.Factor, error) {
	if err := changePIN(f.Kind, k, o); err != nil {
		return api.Factor{}, err
	}
	vf, err := d.BeginActivation(ctx, f.ID)
	if err != nil {
		return api.Factor{}, fmt.Errorf("asking the daemon for an activation challenge: %w", err)
	}
	k.PIN, k.Origin, k.Touch = o.NewPIN, o.Origin, o.Touch
	resp, err := k.Answer(vf)
	if err != nil {
		return api.Factor{}, err
	}
	return d.ActivateFactor(ctx, f.ID, resp)
}

func changePIN(kind string, k Keys, o ActivateOptions) error {
	if o.NewPIN == o.HandoverPIN {
		return fmt.Errorf("choose a new PIN: it must differ from the hand-over PIN")
	}
	switch {
	case kind == "piv" && k.PIV != nil:
		if len(o.NewPIN) < 6 || len(o.NewPIN) > 8 {
			return fmt.Errorf("the PIV PIN must have 6 to 8 characters")
		}
		if err := k.PIV.SetPIN(o.HandoverPIN, o.NewPIN); err != nil {
			return fmt.Errorf("changing the PIV PIN: %w", err)
		}
	case kind == "fido2" && k.FIDO2 != nil:
		if err := k.FIDO2.ChangePIN(o.HandoverPIN, o.NewPIN); err != nil {
			return fmt.Errorf("changing the FIDO2 PIN: %w", err)
		}
	default:
		return ErrNoAnswer
	}
	return nil
}
