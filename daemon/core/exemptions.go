package core

import (
	"context"
	"slices"
	"time"

	"github.com/keyfleet/keyfleet/api"
)

// MaxExemption is the longest an exemption may run: exemptions are
// time-boxed, and a longer one is a policy change.
const MaxExemption = 366 * 24 * time.Hour

// RequestExemption asks for a user to be exempt from the policy until a
// time, for a reason. Nothing changes until a different admin or security
// officer approves it; approval stores the exemption. Errors:
// *ValidationError, ErrNotFound, ErrAlreadyExists (a request for the user
// is pending), *ForbiddenError.
func (s *Service) RequestExemption(ctx context.Context, p Principal, ref string, in api.CreateExemption) (Approval, error) {
	if err := s.validExemption(in); err != nil {
		return Approval{}, err
	}
	return s.request(ctx, p, in.Reason, func(tx Tx) (request, error) {
		u, err := lookupUser(tx, ref)
		if err != nil {
			return request{}, err
		}
		return request{action: api.ActionUserExempt, perm: RequestExempt, target: userTarget(u), owner: u.ID,
			params: map[string]string{paramUntil: in.Until.UTC().Format(time.RFC3339)}}, nil
	})
}

func (s *Service) validExemption(in api.CreateExemption) error {
	if in.Reason == "" {
		return invalid("reason", "is required: say why the user is exempt (it is shown in their status and the audit log)")
	}
	if err := validText("reason", in.Reason, 500); err != nil {
		return err
	}
	now := s.now()
	switch {
	case in.Until.IsZero():
		return invalid("until", "is required: when the exemption ends, like 2026-07-01T00:00:00Z")
	case !in.Until.After(now):
		return invalid("until", "%s has passed; give a time in the future", in.Until.UTC().Format(time.RFC3339))
	case in.Until.Sub(now) > MaxExemption:
		return invalid("until", "%s is more than %d days away; exemptions are time-boxed: ask again when it ends, or change the policy",
			in.Until.UTC().Format(time.RFC3339), int(MaxExemption.Hours()/24))
	}
	return nil
}

// grantExemption runs inside the approval's transaction.
func (s *Service) grantExemption(tx Tx, ev *eventCtx, u User, a Approval) error {
	until, err := time.Parse(time.RFC3339, a.Params[paramUntil])
	if err != nil {
		return invalid("until", "approval %s holds no end time", a.ID)
	}
	if !until.After(s.now()) {
		return &TransitionError{Kind: "exemption", ID: a.ID, From: "past its end " + a.Params[paramUntil], Action: "grant",
			Hint: "request a new exemption"}
	}
	x := Exemption{ID: a.ID, UserID: u.ID, Reason: a.Reason, Until: until, RequestedBy: a.RequestedBy,
		ApprovedBy: ev.approver, CreatedAt: s.now()}
	if err := tx.PutExemption(x); err != nil {
		return err
	}
	return ev.audit(tx, "user.exempt", userTarget(u), nil, map[string]any{"until": x.Until, "exemption_id": x.ID})
}

// ListExemptions lists a user's approved exemptions, newest first, expired
// ones too, for whoever may read the user's MFA status.
func (s *Service) ListExemptions(ctx context.Context, p Principal, ref string) ([]Exemption, error) {
	var out []Exemption
	err := s.store.View(ctx, func(tx ReadTx) error {
		u, err := lookupUser(tx, ref)
		if err != nil {
			return err
		}
		if err := p.authorize(ReadMFAStatus, u.ID); err != nil {
			return err
		}
		out, err = tx.Exemptions(u.ID)
		return err
	})
	slices.SortFunc(out, func(a, b Exemption) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, err
}
