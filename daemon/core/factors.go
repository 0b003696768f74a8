package core

import (
	"context"
	"slices"

	"github.com/keyfleet/keyfleet/api"
)

// factorMoves is the factor state machine: action → states it may start
// from → state it ends in. Anything else is a *TransitionError.
var factorMoves = map[string]struct {
	from []string
	to   string
}{
	"activate": {[]string{api.FactorPending}, api.FactorActive},
	"suspend":  {[]string{api.FactorActive}, api.FactorSuspended},
	"resume":   {[]string{api.FactorSuspended}, api.FactorActive},
	"revoke":   {[]string{api.FactorPending, api.FactorActive, api.FactorSuspended}, api.FactorRevoked},
}

var moveHints = map[string]string{
	api.FactorRevoked:   "a revoked factor stays revoked; enrol a new one",
	api.FactorPending:   "a pending factor must be activated first",
	api.FactorSuspended: "resume it first",
	api.FactorActive:    "it is already active",
}

// move applies a state-machine action to f in memory.
func (s *Service) move(f *Factor, action, reason string) error {
	m, ok := factorMoves[action]
	if !ok || !slices.Contains(m.from, f.State) {
		return &TransitionError{Kind: "factor", ID: f.ID, From: f.State, Action: action, Hint: moveHints[f.State]}
	}
	now := s.now()
	f.State, f.StateReason = m.to, reason
	switch m.to {
	case api.FactorActive:
		if f.ActivatedAt == nil {
			f.ActivatedAt = &now
		}
	case api.FactorRevoked:
		f.RevokedAt = &now
		f.Secret = nil // crypto-shred: a revoked factor never verifies again
	}
	return nil
}

// GetFactor returns a factor. Errors: ErrNotFound, *ForbiddenError.
func (s *Service) GetFactor(ctx context.Context, p Principal, id string) (Factor, error) {
	var f Factor
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		f, err = tx.Factor(id)
		return err
	})
	if err != nil {
		return Factor{}, err
	}
	return f, p.authorize(ReadFactors, f.UserID)
}

// ListFactors lists factors, oldest first. A principal who may read only
// their own factors sees only those.
func (s *Service) ListFactors(ctx context.Context, p Principal, f FactorFilter, pg PageReq) ([]Factor, string, error) {
	own, err := p.ownFilter(ReadFactors)
	if err != nil {
		return nil, "", err
	}
	var out []Factor
	var next string
	err = s.store.View(ctx, func(tx ReadTx) error {
		if f.UserID != "" {
			u, err := lookupFor(tx, p, ReadFactors, f.UserID)
			if err != nil {
				return err
			}
			f.UserID = u.ID
		}
		if own != "" {
			if f.UserID != "" && f.UserID != own {
				return p.authorize(ReadFactors, f.UserID)
			}
			f.UserID = own
		}
		out, next, err = tx.Factors(f, pg.Clamp())
		return err
	})
	return out, next, err
}

// factorChange loads a factor, checks p may act on it, applies change and
// records it. It is the shape of every direct factor mutation.
func (s *Service) factorChange(ctx context.Context, p Principal, id string, a Action, action, reason string, change func(*Factor) error) (Factor, error) {
	var f Factor
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		if f, err = tx.Factor(id); err != nil {
			return err
		}
		if err := p.authorize(a, f.UserID); err != nil {
			return err
		}
		before := f.summary()
		if err := change(&f); err != nil {
			return err
		}
		if err := tx.PutFactor(f); err != nil {
			return err
		}
		return s.eventCtx(ctx, p, reason).audit(tx, action, factorTarget(f), before, f.summary())
	})
	return f, err
}

// RenameFactor sets a factor's label.
func (s *Service) RenameFactor(ctx context.Context, p Principal, id string, in api.UpdateFactor) (Factor, error) {
	if in.Label == nil {
		return s.GetFactor(ctx, p, id)
	}
	if err := validLabel(*in.Label); err != nil {
		return Factor{}, err
	}
	return s.factorChange(ctx, p, id, UpdateFactors, "factor.rename", "", func(f *Factor) error {
		f.Label = *in.Label
		return nil
	})
}

func validLabel(l string) error { return validText("label", l, 64) }

// SuspendFactor stops an active factor from verifying until it is resumed.
func (s *Service) SuspendFactor(ctx context.Context, p Principal, id, reason string) (Factor, error) {
	if err := validText("reason", reason, 500); err != nil {
		return Factor{}, err
	}
	return s.factorChange(ctx, p, id, SuspendFactors, "factor.suspend", reason, func(f *Factor) error {
		return s.move(f, "suspend", reason)
	})
}

// ResumeFactor makes a suspended factor active again.
func (s *Service) ResumeFactor(ctx context.Context, p Principal, id, reason string) (Factor, error) {
	if err := validText("reason", reason, 500); err != nil {
		return Factor{}, err
	}
	return s.factorChange(ctx, p, id, ResumeFactors, "factor.resume", reason, func(f *Factor) error {
		return s.move(f, "resume", reason)
	})
}

// revokeFactor runs from an approved request or a lost device.
func (s *Service) revokeFactor(tx Tx, ev *eventCtx, f Factor, reason string) error {
	before := f.summary()
	if err := s.move(&f, "revoke", reason); err != nil {
		return err
	}
	if err := tx.PutFactor(f); err != nil {
		return err
	}
	return ev.audit(tx, "factor.revoke", factorTarget(f), before, f.summary())
}

func (s *Service) deleteFactor(tx Tx, ev *eventCtx, f Factor) error {
	if err := tx.DeleteFactor(f); err != nil {
		return err
	}
	return ev.audit(tx, "factor.delete", factorTarget(f), f.summary(), nil)
}
