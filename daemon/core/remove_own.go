package core

import (
	"context"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/proof"
	"github.com/keyfleet/keyfleet/policy"
)

// RemoveOwnFactor is a person removing one of their own factors. While the
// policy is still met without it, the factor is revoked at once; when its
// removal would leave them short of the policy (in grace or non-compliant),
// it becomes a revoke request that an administrator or security officer
// approves, as every removal of MFA that weakens someone does. It returns
// the revoked factor, or the approval (and the factor as it stands). Errors: ErrNotFound, *ForbiddenError (another user's factor),
// *TransitionError (already revoked), ErrPolicyViolation (the last active
// factor goes only with a planned replacement).
func (s *Service) RemoveOwnFactor(ctx context.Context, p Principal, id, reason string) (Factor, Approval, error) {
	if reason == "" {
		reason = "removed by its owner"
	}
	if err := validText("reason", reason, 500); err != nil {
		return Factor{}, Approval{}, err
	}
	receipt, err := s.prove(ctx, p, proof.Binding{Action: proof.FactorRemove, Subject: id})
	if err != nil {
		return Factor{}, Approval{}, err
	}
	var a Approval
	var f Factor
	err = s.store.Update(ctx, func(tx Tx) error {
		var err error
		f, err = tx.Factor(id)
		if err != nil {
			return err
		}
		if f.UserID != p.UserID {
			return &ForbiddenError{Principal: p.Username, Action: RemoveOwnFactors, Reason: "it is another user's factor; ask an administrator to request its removal"}
		}
		if err := p.authorize(RemoveOwnFactors, f.UserID); err != nil {
			return err
		}
		if f.State == api.FactorRevoked {
			return &TransitionError{Kind: "factor", ID: f.ID, From: f.State, Action: "remove", Hint: moveHints[f.State]}
		}
		if err := s.checkRemoval(tx, f, false); err != nil {
			return err
		}
		short, err := s.shortWithout(tx, f)
		if err != nil {
			return err
		}
		if short {
			a, err = s.requestTx(ctx, tx, p, reason, request{action: api.ActionFactorRevoke, perm: RemoveOwnFactors,
				target: factorTarget(f), owner: f.UserID})
			return err
		}
		ev := s.eventCtx(ctx, p, reason)
		receipt.note(ev)
		if err := s.revokeFactor(tx, ev, f, reason); err != nil {
			return err
		}
		f, err = tx.Factor(id)
		return err
	})
	return f, a, err
}

// shortWithout reports whether f's user would fall short of the policy
// (grace or non-compliant) without f.
func (s *Service) shortWithout(tx ReadTx, f Factor) (bool, error) {
	_, doc, err := s.currentPolicy(tx)
	if err != nil {
		return false, err
	}
	facts, err := tx.UserPolicyFacts(f.UserID)
	if err != nil {
		return false, err
	}
	return s.decideFacts(doc, facts, f.ID, s.now()).Status != policy.StatusCompliant, nil
}
