package core

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/keyfleet/keyfleet/api"
)

// purposeEnrolment marks the token of a redeemed enrolment code.
const purposeEnrolment = "enrolment"

// errCodeNotValid is every refusal of an enrolment code: wrong, used,
// expired, cancelled and a disabled user all read the same, so a guess
// learns nothing.
var errCodeNotValid = fmt.Errorf("%w: the enrolment code is not valid (wrong, used or expired); ask your administrator for a new one", ErrUnauthenticated)

// RedeemEnrolmentCode turns an enrolment code (api.EnrolmentCode: the
// enrolment's id and its code's secret) into a token that can only complete that
// enrolment, for its user, until the enrolment expires. A code works
// once. Errors: ErrUnauthenticated for any code that is not an open,
// unredeemed enrolment of an active user.
func (s *Service) RedeemEnrolmentCode(ctx context.Context, code string) (api.RedeemedEnrolment, error) {
	id, secret, ok := api.ParseEnrolmentCode(code)
	if !ok {
		s.auditRefusedCode(ctx, "enrolment.code_refused")
		return api.RedeemedEnrolment{}, errCodeNotValid
	}
	var out api.RedeemedEnrolment
	err := s.store.Update(ctx, func(tx Tx) error {
		e, u, err := s.redeemableEnrolment(tx, id, secret)
		if err != nil {
			return err
		}
		now := s.now()
		t, secret, err := s.mintToken(u, "enrolment code "+e.ID, []string{roleEnrolment}, e.ExpiresAt.Sub(now), u.ID)
		if err != nil {
			return err
		}
		t.Purpose, t.EnrolmentID = purposeEnrolment, e.ID
		e.CodeRedeemedAt = &now
		if err := tx.PutToken(t); err != nil {
			return err
		}
		if err := tx.PutEnrolment(e); err != nil {
			return err
		}
		out = api.RedeemedEnrolment{Token: secret, UserID: u.ID, Username: u.Username, ExpiresAt: e.ExpiresAt, Enrolment: e.API(now)}
		out.Enrolment.Display = s.UserDisplay(e) // the redeemer holds the factor
		ev := s.eventCtx(ctx, Principal{UserID: u.ID, Username: u.Username, Auth: "enrolment_code"}, "")
		ev.extra = map[string]string{"enrolment_id": e.ID, "kind": e.Kind, "token_id": t.ID}
		return ev.audit(tx, "enrolment.code_redeemed", userTarget(u), nil, nil)
	})
	if errors.Is(err, errCodeNotValid) {
		s.auditRefusedCode(ctx, "enrolment.code_refused")
	}
	return out, err
}

// redeemableEnrolment finds the open, unredeemed enrolment a code names,
// of an active user, or errCodeNotValid.
func (s *Service) redeemableEnrolment(tx ReadTx, id string, secret []byte) (Enrolment, User, error) {
	e, err := tx.Enrolment(id)
	if err != nil || len(e.CodeHash) == 0 || subtle.ConstantTimeCompare(e.CodeHash, codeHash(secret)) != 1 {
		return Enrolment{}, User{}, errCodeNotValid
	}
	if e.stateAt(s.now()) != api.EnrolmentOpen || e.CodeRedeemedAt != nil {
		return Enrolment{}, User{}, errCodeNotValid
	}
	u, err := tx.User(e.UserID)
	if err != nil || u.Status != api.UserActive {
		return Enrolment{}, User{}, errCodeNotValid
	}
	return e, u, nil
}

// CheckEnrolmentCode returns the open, unredeemed enrolment a code names,
// for a page that lets its holder enrol without redeeming it for a token
// (the web welcome page). Errors: ErrUnauthenticated for any code that
// RedeemEnrolmentCode would refuse.
func (s *Service) CheckEnrolmentCode(ctx context.Context, code string) (Enrolment, error) {
	id, secret, ok := api.ParseEnrolmentCode(code)
	if !ok {
		s.auditRefusedCode(ctx, "enrolment.code_refused")
		return Enrolment{}, errCodeNotValid
	}
	var e Enrolment
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		e, _, err = s.redeemableEnrolment(tx, id, secret)
		return err
	})
	if errors.Is(err, errCodeNotValid) {
		s.auditRefusedCode(ctx, "enrolment.code_refused")
	}
	return e, err
}

// checkBoundEnrolment refuses, for the principal of a redeemed enrolment
// code, any enrolment but the one the code named.
func (p Principal) checkBoundEnrolment(id string) error {
	if p.EnrolmentID == "" || p.EnrolmentID == id {
		return nil
	}
	return &ForbiddenError{Principal: p.Username, Action: CompleteEnrol,
		Reason: "this enrolment code's token may complete only enrolment " + p.EnrolmentID}
}

// afterCodeEnrol revokes a redeemed enrolment code's token once its one
// enrolment is complete.
func (s *Service) afterCodeEnrol(tx Tx, p Principal) error {
	if p.EnrolmentID == "" || p.TokenID == "" {
		return nil
	}
	t, err := tx.Token(p.TokenID)
	if err != nil {
		return err
	}
	t.RevokedAt = ptr(s.now())
	return tx.PutToken(t)
}
