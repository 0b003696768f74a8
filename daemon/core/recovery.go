package core

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/keyfleet/keyfleet/api"
)

const (
	prefixCase = "rcv_"
	// caseTTL is how long a case waits for identity and enrolment.
	caseTTL = 72 * time.Hour
	// maxRecoveryFailures wrong answers lock recovery for a user until an
	// administrator clears it.
	maxRecoveryFailures = 5
)

// OpenRecovery opens a recovery case for a user who lost a factor. The
// lost factors are suspended now if asked, a lost device is marked lost
// (revoking every factor on it), and the rest waits for the replacement.
func (s *Service) OpenRecovery(ctx context.Context, p Principal, in api.OpenRecovery) (RecoveryCase, error) {
	if err := p.authorize(ManageRecovery, ""); err != nil {
		return RecoveryCase{}, err
	}
	if in.Reason == "" {
		return RecoveryCase{}, invalid("reason", "is required: say what happened (\"left the key on a train\")")
	}
	if err := validText("reason", in.Reason, 500); err != nil {
		return RecoveryCase{}, err
	}
	var c RecoveryCase
	err := s.store.Update(ctx, func(tx Tx) error {
		u, err := lookupUser(tx, in.User)
		if err != nil {
			return err
		}
		if u.RecoveryLocked {
			return recoveryLocked(u)
		}
		// The lost key is marked in the case's own transaction: a case that
		// cannot open leaves the device as it was.
		if err := s.lostDevice(ctx, tx, p, u, in); err != nil {
			return err
		}
		lost, err := lostFactors(tx, u.ID, in.LostFactors)
		if err != nil {
			return err
		}
		now := s.now()
		c = RecoveryCase{ID: newID(prefixCase, now, s.cfg.Rand), UserID: u.ID, Username: u.Username, Reason: in.Reason,
			State: api.CaseOpen, OpenedBy: p.Actor(), OpenedAt: now, ExpiresAt: now.Add(caseTTL), LostFactorIDs: lost, Suspended: in.Suspend}
		if in.Suspend {
			if err := s.suspendLost(ctx, tx, p, c); err != nil {
				return err
			}
		}
		if err := tx.PutRecoveryCase(c); err != nil {
			return err
		}
		return s.caseEvent(ctx, tx, p, c, "recovery.open", nil)
	})
	return c, err
}

func (s *Service) lostDevice(ctx context.Context, tx Tx, p Principal, u User, in api.OpenRecovery) error {
	if in.LostDevice == "" {
		return nil
	}
	d, err := tx.Device(in.LostDevice)
	if err != nil {
		return err
	}
	if d.UserID != u.ID {
		return invalid("lost_device", "device %s is not %s's", d.ID, u.Username)
	}
	_, _, err = s.markLost(ctx, tx, p, d.ID, "recovery: "+in.Reason)
	return err
}

func recoveryLocked(u User) error {
	return fmt.Errorf("%w: recovery for %s is locked after repeated failed attempts; an administrator must clear it (keyfleet users recovery-unlock %s)", ErrLocked, u.Username, u.Username)
}

// lostFactors checks the named factors belong to the user; none named
// means every factor that is not revoked.
func lostFactors(tx ReadTx, userID string, named []string) ([]string, error) {
	var out []string
	for _, id := range named {
		f, err := tx.Factor(id)
		if err != nil {
			return nil, err
		}
		if f.UserID != userID {
			return nil, invalid("lost_factors", "factor %s belongs to another user", id)
		}
		out = append(out, id)
	}
	if len(named) > 0 {
		return out, nil
	}
	err := forEach(tx.Factors, FactorFilter{UserID: userID}, func(f Factor) error {
		if f.State != api.FactorRevoked {
			out = append(out, f.ID)
		}
		return nil
	})
	return out, err
}

func (s *Service) suspendLost(ctx context.Context, tx Tx, p Principal, c RecoveryCase) error {
	ev := s.eventCtx(ctx, p, "recovery: "+c.Reason)
	ev.extra = map[string]string{"case_id": c.ID}
	for _, id := range c.LostFactorIDs {
		f, err := tx.Factor(id)
		if err != nil {
			return err
		}
		if f.State != api.FactorActive {
			continue
		}
		before := f.summary()
		if err := s.move(&f, "suspend", "reported lost"); err != nil {
			return err
		}
		if err := tx.PutFactor(f); err != nil {
			return err
		}
		if err := ev.audit(tx, "factor.suspend", factorTarget(f), before, f.summary()); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) caseEvent(ctx context.Context, tx Tx, p Principal, c RecoveryCase, action string, before map[string]any) error {
	ev := s.eventCtx(ctx, p, c.Reason)
	ev.extra = map[string]string{"case_id": c.ID}
	if c.Method != "" {
		ev.extra["method"] = c.Method
	}
	ev.approver = c.ApprovedBy
	return ev.audit(tx, action, targetRef{"user", c.UserID, c.Username}, before, c.summary())
}

// GetRecovery returns a case.
func (s *Service) GetRecovery(ctx context.Context, p Principal, id string) (RecoveryCase, error) {
	if err := p.authorize(ReadRecovery, ""); err != nil {
		return RecoveryCase{}, err
	}
	var c RecoveryCase
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		c, err = tx.RecoveryCase(id)
		return err
	})
	return c, err
}

// ListRecovery lists cases, oldest first.
func (s *Service) ListRecovery(ctx context.Context, p Principal, f RecoveryFilter, pg PageReq) ([]RecoveryCase, string, error) {
	if err := p.authorize(ReadRecovery, ""); err != nil {
		return nil, "", err
	}
	var out []RecoveryCase
	var next string
	err := s.store.View(ctx, func(tx ReadTx) error {
		if f.UserID != "" {
			u, err := lookupUser(tx, f.UserID)
			if err != nil {
				return err
			}
			f.UserID = u.ID
		}
		var err error
		out, next, err = tx.RecoveryCases(f, pg.Clamp())
		return err
	})
	return out, next, err
}

// openCase loads a case that still waits for identity.
func (s *Service) openCase(tx ReadTx, id string) (RecoveryCase, User, error) {
	c, err := tx.RecoveryCase(id)
	if err != nil {
		return RecoveryCase{}, User{}, err
	}
	if st := c.stateAt(s.now()); st != api.CaseOpen {
		return RecoveryCase{}, User{}, &TransitionError{Kind: "recovery case", ID: c.ID, From: st, Action: "confirm identity for",
			Hint: "only an open case can be confirmed; open a new case if needed"}
	}
	u, err := tx.User(c.UserID)
	if err == nil && u.RecoveryLocked {
		err = recoveryLocked(u)
	}
	return c, u, err
}

// confirm records how identity was confirmed.
func (s *Service) confirm(ctx context.Context, tx Tx, p Principal, c RecoveryCase, method, detail string, approver *api.Actor) error {
	before := c.summary()
	now := s.now()
	c.State, c.Method, c.MethodDetail, c.ConfirmedBy, c.ConfirmedAt, c.ApprovedBy = api.CaseConfirmed, method, detail, ptr(p.Actor()), &now, approver
	if err := tx.PutRecoveryCase(c); err != nil {
		return err
	}
	return s.caseEvent(ctx, tx, p, c, "recovery.confirm", before)
}

// recoveryFailed counts a wrong answer against the user and locks recovery
// at the limit, loudly.
func (s *Service) recoveryFailed(ctx context.Context, tx Tx, p Principal, c RecoveryCase, method string) error {
	u, err := tx.User(c.UserID)
	if err != nil {
		return err
	}
	u.RecoveryFailures++
	ev := s.eventCtx(ctx, p, "")
	ev.extra = map[string]string{"case_id": c.ID, "method": method}
	if err := ev.audit(tx, "recovery.failed", userTarget(u), nil, map[string]any{"failures": u.RecoveryFailures}); err != nil {
		return err
	}
	if u.RecoveryFailures >= maxRecoveryFailures && !u.RecoveryLocked {
		u.RecoveryLocked = true
		if err := ev.audit(tx, "recovery.locked", userTarget(u), nil, map[string]any{"recovery_locked": true}); err != nil {
			return err
		}
	}
	return tx.PutUser(u)
}

// BeginRecoveryVerify starts proving identity with another active factor
// of the user (not one of the lost ones).
func (s *Service) BeginRecoveryVerify(ctx context.Context, p Principal, caseID string) (api.Verification, error) {
	if err := p.authorize(ManageRecovery, ""); err != nil {
		return api.Verification{}, err
	}
	var c RecoveryCase
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		c, _, err = s.openCase(tx, caseID)
		return err
	})
	if err != nil {
		return api.Verification{}, err
	}
	return s.beginVerify(ctx, p, api.BeginVerify{User: c.UserID}, c.LostFactorIDs, false)
}

// FinishRecoveryVerify checks the answer; a right one confirms the case.
func (s *Service) FinishRecoveryVerify(ctx context.Context, p Principal, caseID string, in api.RecoveryFactorAnswer) (RecoveryCase, error) {
	if err := p.authorize(ManageRecovery, ""); err != nil {
		return RecoveryCase{}, err
	}
	var c RecoveryCase
	var ok bool
	_, err := s.finishVerify(ctx, p, api.FinishVerify{ID: in.VerificationID, FactorID: in.FactorID, Response: in.Response},
		func(tx Tx, res api.VerifyResult) error {
			var err error
			if c, _, err = s.openCase(tx, caseID); err != nil {
				return err
			}
			if slices.Contains(c.LostFactorIDs, in.FactorID) || res.UserID != c.UserID {
				return invalid("factor_id", "a lost factor, or another user's, cannot prove identity")
			}
			if ok = res.OK; !ok {
				return s.recoveryFailed(ctx, tx, p, c, api.MethodFactor)
			}
			return s.confirm(ctx, tx, p, c, api.MethodFactor, "factor "+in.FactorID, nil)
		})
	if err == nil && !ok {
		err = fmt.Errorf("%w: the answer was not accepted; try again", ErrInvalid)
	}
	if err != nil {
		return RecoveryCase{}, err
	}
	return s.GetRecovery(ctx, p, caseID)
}

// ConfirmWithRecoveryCode checks one of the user's recovery codes (read
// out to the helpdesk, or typed by the user); it works once.
func (s *Service) ConfirmWithRecoveryCode(ctx context.Context, p Principal, caseID, code string) (RecoveryCase, error) {
	if err := p.authorize(ManageRecovery, ""); err != nil {
		return RecoveryCase{}, err
	}
	var c RecoveryCase
	var rc RecoveryCodes
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		if c, _, err = s.openCase(tx, caseID); err != nil {
			return err
		}
		rc, err = tx.RecoveryCodes(c.UserID)
		return err
	})
	if err != nil {
		return RecoveryCase{}, err
	}
	matched := useRecoveryCode(&rc, code, s.now()) // slow hash, outside the transaction
	err = s.store.Update(ctx, func(tx Tx) error {
		cur, _, err := s.openCase(tx, caseID)
		if err != nil {
			return err
		}
		fresh, err := tx.RecoveryCodes(cur.UserID)
		if err != nil {
			return err
		}
		if !matched || fresh.Remaining() != rc.Remaining()+1 {
			return s.recoveryFailed(ctx, tx, p, cur, api.MethodRecoveryCode)
		}
		if err := tx.PutRecoveryCodes(rc); err != nil {
			return err
		}
		c = cur
		return s.confirm(ctx, tx, p, cur, api.MethodRecoveryCode, fmt.Sprintf("%d codes left", rc.Remaining()), nil)
	})
	if err == nil && !matched {
		err = fmt.Errorf("%w: that recovery code is wrong or was used already", ErrInvalid)
	}
	if err != nil {
		return RecoveryCase{}, err
	}
	return s.GetRecovery(ctx, p, caseID)
}

var identityMethods = []string{"in_person_id", "video_call_manager", "callback_known_number", "other"}

// RequestIdentityCheck records how the helpdesk confirmed the user's
// identity and asks a second principal (security officer or admin, not the
// requester) to approve it; approval confirms the case.
func (s *Service) RequestIdentityCheck(ctx context.Context, p Principal, caseID string, in api.IdentityCheck) (Approval, error) {
	if !slices.Contains(identityMethods, in.Method) {
		return Approval{}, invalid("method", "%q is not a method; use one of %v", in.Method, identityMethods)
	}
	if in.Detail == "" {
		return Approval{}, invalid("detail", "is required: say what was checked (\"passport seen at the desk, number ends 1234\")")
	}
	return s.request(ctx, p, in.Method+": "+in.Detail, func(tx Tx) (request, error) {
		c, _, err := s.openCase(tx, caseID)
		if err != nil {
			return request{}, err
		}
		return request{action: api.ActionRecoveryIdentity, perm: ManageRecovery, target: targetRef{"recovery_case", c.ID, c.Username}, owner: c.UserID}, nil
	})
}

// confirmByApproval runs when a helpdesk identity check is approved.
func (s *Service) confirmByApproval(ctx context.Context, tx Tx, approver Principal, a Approval) error {
	c, _, err := s.openCase(tx, a.TargetID)
	if err != nil {
		return err
	}
	return s.confirm(ctx, tx, requester(a), c, api.MethodHelpdeskCheck, a.Reason, ptr(approver.Actor()))
}

// CancelRecovery closes a case without a replacement; suspended factors
// stay suspended for the helpdesk to resume or revoke.
func (s *Service) CancelRecovery(ctx context.Context, p Principal, caseID, reason string) (RecoveryCase, error) {
	if err := p.authorize(ManageRecovery, ""); err != nil {
		return RecoveryCase{}, err
	}
	var c RecoveryCase
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		if c, err = tx.RecoveryCase(caseID); err != nil {
			return err
		}
		if st := c.stateAt(s.now()); st != api.CaseOpen && st != api.CaseConfirmed {
			return &TransitionError{Kind: "recovery case", ID: c.ID, From: st, Action: "cancel"}
		}
		before := c.summary()
		now := s.now()
		c.State, c.ClosedAt = api.CaseCancelled, &now
		if err := tx.PutRecoveryCase(c); err != nil {
			return err
		}
		// Every credential dies with what granted it: the case's pass, and
		// the token anyone redeemed it for.
		if err := s.revokeCasePass(tx, c); err != nil {
			return err
		}
		return s.caseEvent(ctx, tx, p, c, "recovery.cancel", before)
	})
	return c, err
}

// ClearRecoveryLock lets a locked user's recovery go ahead again.
func (s *Service) ClearRecoveryLock(ctx context.Context, p Principal, ref, reason string) (User, error) {
	var u User
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		if u, err = lookupUser(tx, ref); err != nil {
			return err
		}
		if err := p.authorize(ClearRecovery, u.ID); err != nil {
			return err
		}
		u.RecoveryLocked, u.RecoveryFailures = false, 0
		if err := tx.PutUser(u); err != nil {
			return err
		}
		return s.eventCtx(ctx, p, reason).audit(tx, "recovery.unlock", userTarget(u), nil, nil)
	})
	return u, err
}

// revokeCasePass revokes a case's pass and the token it was redeemed for.
func (s *Service) revokeCasePass(tx Tx, c RecoveryCase) error {
	if c.PassID == "" {
		return nil
	}
	pass, err := tx.AccessPass(c.PassID)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.revokePass(tx, pass)
}
