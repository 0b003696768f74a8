package core

import (
	"context"
	"fmt"
	"slices"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// activationID names the one activation a pending factor can have open.
func activationID(factorID string) string { return "act_" + factorID }

// BeginActivation starts proving possession of a pending factor (a key
// handed over sealed): the user answers the kind's challenge with the
// key, and ActivateFactor makes it active. Only the factor's own user (or
// an admin) may. Errors: ErrNotFound, *ForbiddenError, *TransitionError.
func (s *Service) BeginActivation(ctx context.Context, p Principal, factorID string) (api.VerificationFactor, error) {
	var f Factor
	var u User
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		if f, err = tx.Factor(factorID); err != nil {
			return err
		}
		if err := p.authorize(ActivateFactors, f.UserID); err != nil {
			return err
		}
		if f.State != api.FactorPending {
			return &TransitionError{Kind: "factor", ID: f.ID, From: f.State, Action: "activate", Hint: moveHints[f.State]}
		}
		if u, err = tx.User(f.UserID); err != nil {
			return err
		}
		// A key handed to a staff account is activated by its holder only:
		// an administrator who activated it would be holding it.
		if u.ID != p.UserID && slices.ContainsFunc(u.Roles, func(r string) bool { return r != api.RoleUser }) && !p.needsNoProof() {
			return &ForbiddenError{Principal: p.Username, Action: ActivateFactors,
				Reason: fmt.Sprintf("%s holds a role beyond user; only they activate a key handed to them", u.Username)}
		}
		return nil
	})
	if err != nil {
		return api.VerificationFactor{}, err
	}
	now := s.now()
	v := Verification{ID: activationID(f.ID), UserID: u.ID, CreatedBy: p.UserID, CreatedAt: now,
		ExpiresAt: now.Add(s.cfg.VerifyTTL), Factors: map[string]VerificationFactor{}}
	challenge, err := s.newChallenge()
	if err != nil {
		return api.VerificationFactor{}, err
	}
	vf, af, _, err := s.beginFactor(ctx, u, f, v.ID, challenge, now, sdk.VerifyContext{})
	if err != nil {
		return api.VerificationFactor{}, err
	}
	v.Factors[f.ID] = vf
	return af, s.store.Update(ctx, func(tx Tx) error { return tx.PutVerification(v) })
}

// ActivateFactor checks the answer to BeginActivation's challenge and moves
// the factor from pending to active in the same transaction. A wrong
// answer counts towards lockout, as a failed verification does.
func (s *Service) ActivateFactor(ctx context.Context, p Principal, factorID string, response []byte) (Factor, error) {
	var f Factor
	var ok bool
	err := s.store.Update(ctx, func(tx Tx) error {
		v, err := tx.Verification(activationID(factorID))
		if err != nil || v.CreatedBy != p.UserID || !s.now().Before(v.ExpiresAt) {
			return fmt.Errorf("%w: no open activation for factor %s; begin one first", ErrVerificationClosed, factorID)
		}
		if err := tx.DeleteVerification(v); err != nil {
			return err
		}
		if f, err = tx.Factor(factorID); err != nil {
			return err
		}
		if err := p.authorize(ActivateFactors, f.UserID); err != nil {
			return err
		}
		u, err := tx.User(f.UserID)
		if err != nil {
			return err
		}
		out, err := s.runFinish(ctx, u, f, v, v.Factors[f.ID], response, s.now())
		if err != nil {
			return err
		}
		if ok = out.OK; !ok {
			return s.recordVerify(ctx, tx, p, &u, &f, out)
		}
		return s.activate(ctx, tx, p, &f, out.State)
	})
	if err == nil && !ok {
		err = fmt.Errorf("%w: the key's answer was not accepted; check it is the right key and try again", ErrInvalid)
	}
	return f, err
}

func (s *Service) activate(ctx context.Context, tx Tx, p Principal, f *Factor, newState []byte) error {
	before := f.summary()
	if err := s.move(f, "activate", "possession proved"); err != nil {
		return err
	}
	if newState != nil {
		sealed, err := s.sealer.Seal(newState, []byte(f.ID))
		if err != nil {
			return err
		}
		f.Secret = sealed
	}
	now := s.now()
	f.LastUsedAt = &now
	if err := tx.PutFactor(*f); err != nil {
		return err
	}
	return s.eventCtx(ctx, p, "").audit(tx, "factor.activate", factorTarget(*f), before, f.summary())
}
