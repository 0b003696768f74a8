package core

import (
	"context"
	"fmt"
	"strconv"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// ActionPushReported is the audit action of a push the user reported as
// not theirs (high severity); ActionPushUnanswered of one that ran out.
const (
	ActionPushReported   = "push.reported"
	ActionPushUnanswered = "push.unanswered"
)

// openTicket opens a pending verification's ticket for factorID, which
// must be an out-of-band factor it offered. Errors: ErrVerificationClosed.
func (s *Service) openTicket(ticket, factorID string) (Verification, VerificationFactor, error) {
	v, ok := s.openVerificationID(ticket)
	vf, offered := v.Factors[factorID]
	if !ok || !offered || !s.isOutOfBand(vf.Kind) {
		return Verification{}, VerificationFactor{}, fmt.Errorf("%w: not a pending push", ErrVerificationClosed)
	}
	return v, vf, nil
}

// devicePrincipal is the user answering on their own device: the actor
// of an out-of-band answer's audit records.
func devicePrincipal(u User, f Factor) Principal {
	return Principal{UserID: u.ID, Username: u.Username, Auth: "device:" + f.ID}
}

// AnswerOutOfBand finishes a pending out-of-band verification with its
// device's answer; ticket is Pending.Ticket. It runs as FinishVerify
// does, in one transaction: the verification is used up, the kind checks
// the answer, failures count towards lockout, and it is audited. Any
// answer resets the factor's unanswered count. An answer reported as
// "this wasn't me" is recorded even for a locked user, locks the user's
// pushes and raises push.reported. Errors: ErrVerificationClosed (used
// already or expired), ErrNotFound, ErrUnavailable.
func (s *Service) AnswerOutOfBand(ctx context.Context, ticket, factorID string, response []byte) (OutOfBandOutcome, error) {
	v, vf, err := s.openTicket(ticket, factorID)
	if err != nil {
		return OutOfBandOutcome{}, err
	}
	if !s.now().Before(v.ExpiresAt) {
		return OutOfBandOutcome{}, fmt.Errorf("%w: the push expired", ErrVerificationClosed)
	}
	var out OutOfBandOutcome
	var key string
	err = s.store.Update(ctx, func(tx Tx) error {
		fresh, err := tx.UseVerification(v.ID, v.ExpiresAt)
		if err != nil {
			return err
		}
		if !fresh {
			return fmt.Errorf("%w: the push was answered already", ErrVerificationClosed)
		}
		out, key, err = s.answerDevice(ctx, tx, v, vf, factorID, response)
		return err
	})
	if err == nil && out.Result.OK {
		s.notePolicy(ctx, out.Result.UserID, key)
	}
	return out, err
}

// answerDevice checks and records a device's answer inside tx.
func (s *Service) answerDevice(ctx context.Context, tx Tx, v Verification, vf VerificationFactor, factorID string, response []byte) (OutOfBandOutcome, string, error) {
	u, err := tx.User(v.UserID)
	if err != nil {
		return OutOfBandOutcome{}, "", err
	}
	f, err := tx.Factor(factorID)
	if err != nil {
		return OutOfBandOutcome{}, "", err
	}
	p := devicePrincipal(u, f)
	out := OutOfBandOutcome{Result: api.VerifyResult{UserID: u.ID, FactorID: f.ID, Kind: vf.Kind}}
	version, err := s.checkVerificationOf(tx, u, f)
	if err != nil {
		return out, "", err
	}
	res := sdk.FinishVerifyResponse{Reason: "factor or user not active"}
	if f.State == api.FactorActive && u.Status == api.UserActive {
		if res, err = s.runFinish(ctx, u, f, v, vf, response, s.now()); err != nil {
			return out, "", err
		}
	}
	now := s.now()
	if res.OK && (locked(u.LockedUntil, now) || locked(f.LockedUntil, now)) {
		res = sdk.FinishVerifyResponse{Reason: "the user or factor is locked"}
	}
	out.Result.OK, out.Reason, out.Reported, out.Suspicious = res.OK, res.Reason, res.Reported, res.Suspicious
	f.Unanswered = 0
	signIn := map[string]string{"requested_by": v.CreatedBy, "application": v.Application, "address": v.Address}
	if err := s.recordVerifyWith(ctx, tx, p, &u, &f, res, signIn); err != nil {
		return out, "", err
	}
	if res.Reported {
		return out, "", s.lockPushes(ctx, tx, p, u, f, v)
	}
	return out, noteKey(version, u), nil
}

// lockPushes stops prompting a user who reported a push as not theirs,
// and raises the high-severity push.reported event.
func (s *Service) lockPushes(ctx context.Context, tx Tx, p Principal, u User, f Factor, v Verification) error {
	u, err := tx.User(u.ID) // as recordVerify left it
	if err != nil {
		return err
	}
	now := s.now()
	if u.PushesLockedAt == nil {
		u.PushesLockedAt = &now
		if err := tx.PutUser(u); err != nil {
			return err
		}
	}
	ev := s.eventCtx(ctx, p, "")
	ev.extra = map[string]string{"user_id": u.ID, "kind": f.Kind, "factor_id": f.ID, "requested_by": v.CreatedBy,
		"application": v.Application, "address": v.Address, "suspicious": "true"}
	return ev.audit(tx, ActionPushReported, userTarget(u), nil, map[string]any{"pushes_locked_at": now})
}

// ExpireOutOfBand closes a pending out-of-band verification whose
// deadline passed unanswered: it is used up (a late answer finds it
// closed), the factor's unanswered count goes up, and push.unanswered is
// audited. It reports false when the verification was finished already
// (an answer won the race). Errors: ErrVerificationClosed for a ticket
// that is not a pending push, ErrUnavailable.
func (s *Service) ExpireOutOfBand(ctx context.Context, ticket, factorID string) (bool, error) {
	v, vf, err := s.openTicket(ticket, factorID)
	if err != nil {
		return false, err
	}
	expired := false
	err = s.store.Update(ctx, func(tx Tx) error {
		fresh, err := tx.UseVerification(v.ID, v.ExpiresAt)
		if err != nil || !fresh {
			return err
		}
		expired = true
		f, err := tx.Factor(factorID)
		if err != nil {
			return err
		}
		u, err := tx.User(f.UserID)
		if err != nil {
			return err
		}
		now := s.now()
		f.Unanswered, f.LastUnansweredAt = f.Unanswered+1, &now
		if err := tx.PutFactor(f); err != nil {
			return err
		}
		ev := s.eventCtx(ctx, devicePrincipal(u, f), "")
		ev.p.Auth = "system" // nobody answered: keyfleetd closes it
		ev.extra = map[string]string{"user_id": u.ID, "kind": vf.Kind, "requested_by": v.CreatedBy,
			"application": v.Application, "address": v.Address, "unanswered": strconv.Itoa(f.Unanswered)}
		return ev.audit(tx, ActionPushUnanswered, factorTarget(f), nil, map[string]any{"unanswered": f.Unanswered})
	})
	return expired, err
}
