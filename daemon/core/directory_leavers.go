package core

import (
	"context"
	"fmt"

	"github.com/keyfleet/keyfleet/api"
)

// Leavers: a user the directory disabled, or no longer has, is disabled
// in keyfleet at once and their active factors suspended. That only takes
// access away, so no second person is needed; revoking the factors or
// deleting the user still is two-person. A user the source disabled comes
// back (enabled, the same factors resumed) when the directory enables
// them again; a user a person disabled stays disabled.

// leaverBatch is how many leavers one transaction disables.
const leaverBatch = 200

// disableLinked disables a linked user, suspends their active factors,
// cancels their open enrolments and withdraws the source's pending
// request for them.
func (s *Service) disableLinked(ctx context.Context, tx Tx, b *directoryBatch, u User, gone bool, reason string) error {
	before := u.summary()
	link := *u.External
	link.Disabled, link.Gone = true, gone
	ev := s.eventCtx(ctx, b.p, reason)
	ev.extra = map[string]string{"source": b.source}
	if link.RequestID != "" {
		if a, err := tx.Approval(link.RequestID); err == nil && a.stateAt(s.now()) == api.ApprovalPending {
			if err := s.withdraw(ctx, tx, b.p, a); err != nil {
				return err
			}
		}
		link.RequestID = ""
	}
	u.Status, u.UpdatedAt, u.External = api.UserDisabled, s.now(), &link
	if err := tx.PutUser(u); err != nil {
		return err
	}
	if err := ev.audit(tx, "user.disable", userTarget(u), before, u.summary()); err != nil {
		return err
	}
	suspended, err := s.suspendAll(tx, ev, u.ID, "suspended by the directory: "+reason)
	if err != nil {
		return err
	}
	if len(suspended) > 0 {
		link.Suspended = append(link.Suspended, suspended...)
		if err := tx.PutUser(u); err != nil {
			return err
		}
	}
	if err := s.cancelOpenEnrolments(tx, ev, u.ID); err != nil {
		return err
	}
	b.rep.Disabled++
	b.note(u.Username, u.ID, api.ChangeDisabled, fmt.Sprintf("%s; %d factor(s) suspended", reason, len(suspended)))
	return nil
}

// suspendAll suspends a user's active factors and returns their ids.
func (s *Service) suspendAll(tx Tx, ev *eventCtx, userID, reason string) ([]string, error) {
	var fs []Factor
	err := forEach(tx.Factors, FactorFilter{UserID: userID, State: api.FactorActive}, func(f Factor) error {
		fs = append(fs, f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, f := range fs {
		before := f.summary()
		if err := s.move(&f, "suspend", reason); err != nil {
			return nil, err
		}
		if err := tx.PutFactor(f); err != nil {
			return nil, err
		}
		if err := ev.audit(tx, "factor.suspend", factorTarget(f), before, f.summary()); err != nil {
			return nil, err
		}
		ids = append(ids, f.ID)
	}
	return ids, nil
}

func (s *Service) cancelOpenEnrolments(tx Tx, ev *eventCtx, userID string) error {
	var open []Enrolment
	err := forEach(tx.Enrolments, EnrolmentFilter{UserID: userID, State: api.EnrolmentOpen}, func(e Enrolment) error {
		open = append(open, e)
		return nil
	})
	if err != nil {
		return err
	}
	for _, e := range open {
		e.State = api.EnrolmentCancelled
		if err := tx.PutEnrolment(e); err != nil {
			return err
		}
		if err := ev.audit(tx, "enrolment.cancel", targetRef{"enrolment", e.ID, ""}, map[string]any{"state": api.EnrolmentOpen}, map[string]any{"state": e.State}); err != nil {
			return err
		}
	}
	return nil
}

// enableLinked enables a user the source had disabled and resumes the
// factors it suspended (those still suspended).
func (s *Service) enableLinked(ctx context.Context, tx Tx, b *directoryBatch, u User) (User, error) {
	before := u.summary()
	link := *u.External
	suspended := link.Suspended
	link.Disabled, link.Gone, link.Suspended = false, false, nil
	u.Status, u.UpdatedAt, u.External = api.UserActive, s.now(), &link
	if err := tx.PutUser(u); err != nil {
		return u, err
	}
	ev := s.eventCtx(ctx, b.p, "enabled in the directory")
	ev.extra = map[string]string{"source": b.source}
	if err := ev.audit(tx, "user.enable", userTarget(u), before, u.summary()); err != nil {
		return u, err
	}
	resumed := 0
	for _, id := range suspended {
		f, err := tx.Factor(id)
		if isNotFound(err) || (err == nil && f.State != api.FactorSuspended) {
			continue // revoked or resumed meanwhile
		}
		if err != nil {
			return u, err
		}
		fb := f.summary()
		if err := s.move(&f, "resume", "enabled in the directory"); err != nil {
			return u, err
		}
		if err := tx.PutFactor(f); err != nil {
			return u, err
		}
		if err := ev.audit(tx, "factor.resume", factorTarget(f), fb, f.summary()); err != nil {
			return u, err
		}
		resumed++
	}
	b.rep.Enabled++
	b.note(u.Username, u.ID, api.ChangeEnabled, fmt.Sprintf("enabled in the directory; %d factor(s) resumed", resumed))
	return u, nil
}

// DirectoryLeavers lists the users linked to p's source that a full read
// of the directory did not see (seen reports the ids it did), and counts
// the source's linked users. Users already marked gone, and users an
// operator linked by username that the directory never matched, are not
// leavers.
func (s *Service) DirectoryLeavers(ctx context.Context, p Principal, seen func(externalID string) bool) (leavers []string, linked int, err error) {
	source, err := sourceOf(p)
	if err != nil {
		return nil, 0, err
	}
	err = s.store.View(ctx, func(tx ReadTx) error {
		leavers, linked = nil, 0
		return forEach(tx.Users, UserFilter{}, func(u User) error {
			l := u.External
			if l == nil || l.Source != source {
				return nil
			}
			linked++
			if l.ID != "" && !l.Gone && !seen(l.ID) {
				leavers = append(leavers, u.ID)
			}
			return nil
		})
	})
	return leavers, linked, err
}

// DisableLeavers disables the given users of p's source as gone from the
// directory (DirectoryLeavers found them), a batch per transaction. A user
// a person had disabled is only marked gone.
func (s *Service) DisableLeavers(ctx context.Context, p Principal, src DirectorySource, ids []string, rep *api.DirectorySyncReport) error {
	source, err := sourceOf(p)
	if err != nil {
		return err
	}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), leaverBatch)]
		ids = ids[len(chunk):]
		err := s.directoryUpdate(ctx, p, source, src, rep, func(tx Tx, b *directoryBatch) error {
			for _, id := range chunk {
				if err := s.markGone(ctx, tx, b, id, "no longer in the directory"); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// markGone disables a linked user who left the source, or only marks a
// disabled one as gone.
func (s *Service) markGone(ctx context.Context, tx Tx, b *directoryBatch, id, reason string) error {
	u, err := tx.User(id)
	if isNotFound(err) {
		return nil // deleted meanwhile
	}
	if err != nil {
		return err
	}
	if u.External == nil || u.External.Source != b.source || u.External.Gone {
		return nil // unlinked or already gone meanwhile
	}
	if u.Status == api.UserActive {
		return s.disableLinked(ctx, tx, b, u, true, reason)
	}
	link := *u.External
	link.Gone = true
	u.External = &link
	b.note(u.Username, u.ID, api.ChangeDisabled, reason+"; already disabled")
	return tx.PutUser(u)
}
