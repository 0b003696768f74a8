package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/plugins/sdk"
	"github.com/keyfleet/keyfleet/policy"
)

// App sign-in: a person who holds no security key signs in to their own
// self-service pages (never the dashboard) with an authenticator app's
// code and the second check the policy names (policy.AppSignInChecks,
// today a recovery code). The pages run it; it is not an API route.

// AppSignInRequest is an app sign-in: the person, the app's answer
// ({"code": "123456"} for TOTP) and the second check.
type AppSignInRequest struct {
	User string
	// Kinds are the app kinds the pages take (the TOTP kind); the answer
	// is tried against each of the person's active factors of them, so a
	// person with two apps need not say which one shows the code.
	Kinds    []string
	Response json.RawMessage
	// Check names the second check (policy.SecondCheckRecoveryCode) and
	// Code is what the person typed for it.
	Check string
	Code  string
}

// errAppSignIn is every refusal of an app sign-in, as the visitor sees it:
// a wrong code, a used recovery code, a person with a key, a policy that
// does not allow it and a recovery lock read the same, so the answer
// tells a guesser nothing about the account.
var errAppSignIn = fmt.Errorf("%w: the app's code or the second check was not accepted", ErrUnauthenticated)

// AppSignIn checks an app sign-in: the app's answer (a wrong one counts
// towards lockout once, as any verification), then the second check (a
// wrong recovery code counts towards the recovery lock; a right one is
// used up). It refuses a person who holds an active security key: they
// sign in with it. p is the pages' principal, which may verify users. It
// returns the user and the recovery codes they have left; every refusal
// is ErrUnauthenticated (wrapped), the reason being in the audit trail
// (user.app_sign_in_refused). Errors besides: *ForbiddenError, ErrLocked,
// ErrUnavailable.
func (s *Service) AppSignIn(ctx context.Context, p Principal, in AppSignInRequest) (User, int, error) {
	if err := p.authorize(VerifyUsers, ""); err != nil {
		return User{}, 0, err
	}
	u, rc, why, err := s.appSignInPrecheck(ctx, in.User, in.Check)
	if err != nil {
		return User{}, 0, err
	}
	if why != "" {
		s.refuseAppSignIn(ctx, p, u.ID, why)
		return User{}, 0, errAppSignIn
	}
	ok, err := s.verifyAnyApp(ctx, p, u.ID, in.Kinds, in.Response)
	if errors.Is(err, ErrLocked) || errors.Is(err, ErrUnavailable) {
		return User{}, 0, err
	}
	if err != nil || !ok {
		return User{}, 0, errAppSignIn
	}
	matched := useRecoveryCode(&rc, in.Code, s.now()) // slow hash, outside the transaction
	left, err := s.recordAppSignIn(ctx, p, u.ID, rc, matched)
	if err != nil {
		return User{}, 0, err
	}
	if !matched {
		return User{}, 0, errAppSignIn
	}
	return u, left, nil
}

// verifyAnyApp checks a code-only answer against each of the user's
// active factors of kinds, in one transaction: the first that accepts it
// records a successful verification; when none does, one failure is
// recorded (on the first), as for any wrong answer.
func (s *Service) verifyAnyApp(ctx context.Context, p Principal, userID string, kinds []string, response []byte) (bool, error) {
	ok := false
	err := s.store.Update(ctx, func(tx Tx) error {
		now := s.now()
		u, factors, _, err := s.verifiableIn(tx, api.BeginVerify{User: userID, Kinds: kinds}, now)
		if err != nil {
			return err
		}
		v := Verification{UserID: u.ID, CreatedBy: p.UserID, CreatedAt: now, ExpiresAt: now}
		for _, f := range factors {
			if err := s.challengeFree(ctx, u, f, now); err != nil {
				return err
			}
			out, err := s.runFinish(ctx, u, f, v, VerificationFactor{Kind: f.Kind}, response, now)
			if err != nil {
				return err
			}
			if out.OK {
				ok = true
				return s.recordVerify(ctx, tx, p, &u, &f, out)
			}
		}
		return s.recordVerify(ctx, tx, p, &u, &factors[0], sdk.FinishVerifyResponse{Reason: "no app accepted the code"})
	})
	return ok, err
}

// appSignInPrecheck reads what an app sign-in needs; why names a refusal.
func (s *Service) appSignInPrecheck(ctx context.Context, ref, check string) (User, RecoveryCodes, string, error) {
	var u User
	var rc RecoveryCodes
	why := ""
	err := s.store.View(ctx, func(tx ReadTx) error {
		_, doc, err := s.currentPolicy(tx)
		if err != nil {
			return err
		}
		if u, err = lookupUser(tx, ref); err != nil {
			return err
		}
		switch {
		case !slices.Contains(policy.AppSignInChecks(doc), check):
			why = "the policy does not allow app sign-in with " + check
		case u.RecoveryLocked:
			why = "recovery is locked"
		}
		if why != "" {
			return nil
		}
		if key, err := s.holdsKey(tx, u.ID); err != nil || key {
			why = "they hold a security key"
			return err
		}
		rc, err = tx.RecoveryCodes(u.ID)
		if isNotFound(err) {
			why, err = "they have no recovery codes", nil
		}
		return err
	})
	if isNotFound(err) {
		return u, rc, "no such user", nil
	}
	return u, rc, why, err
}

// recordAppSignIn stores the used code (or counts a wrong one towards the
// recovery lock) and audits the outcome. It returns the codes left.
func (s *Service) recordAppSignIn(ctx context.Context, p Principal, userID string, rc RecoveryCodes, matched bool) (int, error) {
	left := 0
	err := s.store.Update(ctx, func(tx Tx) error {
		u, err := tx.User(userID)
		if err != nil {
			return err
		}
		fresh, err := tx.RecoveryCodes(userID)
		if err != nil {
			return err
		}
		if !matched || fresh.Remaining() != rc.Remaining()+1 {
			return s.appSignInFailed(ctx, tx, p, u)
		}
		if err := tx.PutRecoveryCodes(rc); err != nil {
			return err
		}
		left = rc.Remaining()
		ev := s.eventCtx(ctx, p, "")
		ev.extra = map[string]string{"second_check": policy.SecondCheckRecoveryCode, "pages": "self-service"}
		return ev.audit(tx, "user.app_sign_in", userTarget(u), nil, map[string]any{"recovery_codes_left": left})
	})
	return left, err
}

// appSignInFailed counts a wrong second check towards the recovery lock.
func (s *Service) appSignInFailed(ctx context.Context, tx Tx, p Principal, u User) error {
	u.RecoveryFailures++
	ev := s.eventCtx(ctx, p, "")
	ev.extra = map[string]string{"refused": "wrong or used recovery code"}
	if err := ev.audit(tx, "user.app_sign_in_refused", userTarget(u), nil, map[string]any{"failures": u.RecoveryFailures}); err != nil {
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

// refuseAppSignIn audits a refusal that changed nothing.
func (s *Service) refuseAppSignIn(ctx context.Context, p Principal, userID, why string) {
	if userID == "" {
		return // no such user: nobody to name
	}
	err := s.store.Update(ctx, func(tx Tx) error {
		u, err := tx.User(userID)
		if err != nil {
			return nil // nobody to name
		}
		ev := s.eventCtx(ctx, p, "")
		ev.extra = map[string]string{"refused": why}
		return ev.audit(tx, "user.app_sign_in_refused", userTarget(u), nil, nil)
	})
	if err != nil {
		s.log.Warn("auditing a refused app sign-in", "err", err)
	}
}

// AppSignInChecks returns the second checks the current policy names for
// app sign-in to self-service (nil: app sign-in is off). The sign-in page
// reads it to say what it will ask; it is no secret.
func (s *Service) AppSignInChecks(ctx context.Context) ([]string, error) {
	var out []string
	err := s.store.View(ctx, func(tx ReadTx) error {
		_, doc, err := s.currentPolicy(tx)
		out = policy.AppSignInChecks(doc)
		return err
	})
	return out, err
}
