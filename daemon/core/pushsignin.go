package core

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/keyfleet/keyfleet/api"
)

// Push sign-in: a person who holds no security key, only a push
// companion, signs in to their own self-service pages (never the
// dashboard) with a push they approve on the companion (number matching)
// and the second check the policy names for it (policy.PushSignInChecks,
// today a recovery code). The second check is checked before any push
// goes out, so knowing a username is not enough to send pushes to its
// person, and used up only once the push is approved. The pages run it;
// it is not an API route. A push proves no action (provingFactors), so
// such a session reaches nothing that needs a proof.

// PushSignInApplication is what a push sign-in's push says the sign-in
// is for.
const PushSignInApplication = "keyfleet self-service pages"

// PushSignInRequest begins a push sign-in.
type PushSignInRequest struct {
	User string
	// Kinds are the push kinds the pages take; a push goes to each of the
	// person's active companions of them.
	Kinds []string
	// Check names the second check (policy.SecondCheckRecoveryCode) and
	// Code is what the person typed for it.
	Check, Code string
	// Address is the sign-in's client address, shown with the push.
	Address string
}

// PushSignInFinish asks for the outcome of a begun push sign-in.
type PushSignInFinish struct {
	// UserID, VerificationID and FactorID are the begun sign-in's, as the
	// pages kept them (never as the browser sends them).
	UserID, VerificationID, FactorID string
	// Check and Code are the second check again: used up on approval.
	Check, Code string
	// Wait is how long to wait for the answer ("0s": not at all).
	Wait string
}

// PushSignInResult is a push sign-in's state: still pending, or signed
// in as User with Left recovery codes left.
type PushSignInResult struct {
	Pending bool
	User    User
	Left    int
}

// errPushSignIn is every refusal of a push sign-in, as the visitor sees
// it: a wrong or used recovery code, a person with a key or without a
// companion, a policy that does not allow it, a denied, unanswered or
// wrongly answered push read the same.
var errPushSignIn = fmt.Errorf("%w: the push or the second check was not accepted", ErrUnauthenticated)

// BeginPushSignIn checks the second check without using it up (a wrong
// or used recovery code counts towards the recovery lock) and then sends
// a push to each of the person's companions. It refuses a person who
// holds an active security key. p is the pages' principal, which may
// verify users. It returns the verification: each factor's prompt holds
// the number its companion asks for. Every refusal is ErrUnauthenticated
// (wrapped), the reason in the audit trail (user.push_sign_in_refused).
// Errors besides: *ForbiddenError, ErrLocked (the person's pushes are
// locked), ErrTooMany (too many pushes), ErrUnavailable.
func (s *Service) BeginPushSignIn(ctx context.Context, p Principal, in PushSignInRequest) (api.Verification, error) {
	if err := p.authorize(VerifyUsers, ""); err != nil {
		return api.Verification{}, err
	}
	u, rc, why, err := s.signInPrecheck(ctx, pushWay, in.User, in.Check)
	if err != nil {
		return api.Verification{}, err
	}
	if why != "" {
		s.refuseSignIn(ctx, pushWay, p, u.ID, why)
		return api.Verification{}, errPushSignIn
	}
	probe := rc
	probe.Codes = slices.Clone(rc.Codes)
	if !useRecoveryCode(&probe, in.Code, s.now()) { // slow hash, outside any transaction
		if _, err := s.recordSignIn(ctx, pushWay, p, u.ID, rc, false); err != nil {
			return api.Verification{}, err
		}
		return api.Verification{}, errPushSignIn
	}
	v, err := s.BeginVerify(ctx, p, api.BeginVerify{User: u.ID, Kinds: in.Kinds, Application: PushSignInApplication, Address: in.Address})
	switch {
	case errors.Is(err, ErrNoUsableFactor), errors.Is(err, ErrNotFound):
		s.refuseSignIn(ctx, pushWay, p, u.ID, "they have no active push companion")
		return api.Verification{}, errPushSignIn
	case err != nil:
		return api.Verification{}, err
	}
	if !slices.ContainsFunc(v.Factors, func(f api.VerificationFactor) bool { return f.OutOfBand }) {
		s.refuseSignIn(ctx, pushWay, p, u.ID, "no push went out")
		return api.Verification{}, errPushSignIn
	}
	return v, nil
}

// FinishPushSignIn waits up to in.Wait for the answer to one factor's
// push of a begun push sign-in. Approved by the person it was sent to,
// and the second check still right (and the person still without a
// key), it uses the recovery code up and returns the user signed in.
// Every refusal (denied, a wrong number, no answer in time, already
// finished, a code used meanwhile) is ErrUnauthenticated (wrapped): the
// sign-in is over, begin again. Errors besides: *ForbiddenError,
// ErrLocked, ErrUnavailable.
func (s *Service) FinishPushSignIn(ctx context.Context, p Principal, in PushSignInFinish) (PushSignInResult, error) {
	if err := p.authorize(VerifyUsers, ""); err != nil {
		return PushSignInResult{}, err
	}
	res, err := s.FinishVerify(ctx, p, api.FinishVerify{ID: in.VerificationID, FactorID: in.FactorID, Wait: in.Wait})
	switch {
	case errors.Is(err, ErrVerificationClosed), errors.Is(err, ErrNotFound), errors.Is(err, ErrInvalid):
		return PushSignInResult{}, errPushSignIn
	case err != nil:
		return PushSignInResult{}, err
	case res.Pending:
		return PushSignInResult{Pending: true}, nil
	case !res.OK || res.UserID != in.UserID:
		return PushSignInResult{}, errPushSignIn
	}
	u, rc, why, err := s.signInPrecheck(ctx, pushWay, in.UserID, in.Check)
	if err != nil {
		return PushSignInResult{}, err
	}
	if why != "" {
		s.refuseSignIn(ctx, pushWay, p, u.ID, why)
		return PushSignInResult{}, errPushSignIn
	}
	matched := useRecoveryCode(&rc, in.Code, s.now())
	left, err := s.recordSignIn(ctx, pushWay, p, u.ID, rc, matched)
	if err != nil {
		return PushSignInResult{}, err
	}
	if !matched {
		return PushSignInResult{}, errPushSignIn
	}
	return PushSignInResult{User: u, Left: left}, nil
}
