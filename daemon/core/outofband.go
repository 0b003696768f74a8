package core

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/foreground"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// Out-of-band kinds (sdk.Info.OutOfBand: a push) are answered on the
// user's device, away from the application that began the verification.
// core begins them like any kind, hands the kind's delivery to an
// [OutOfBand] (daemon/push) that sends it and keeps the verification
// pending, and finishes them with the device's answer (AnswerOutOfBand)
// or closes them at their deadline (ExpireOutOfBand). The application
// waits for or polls the outcome through FinishVerify, with no response.
//
// This is the seam for every surface that verifies: the API's begin and
// finish, and a RADIUS listener's Access-Challenge loop (begin with the
// factor, then finish with Wait "0s" on each round until it is no longer
// pending).

// OutOfBand delivers out-of-band verifications and keeps them pending.
// daemon/push implements it; without one, out-of-band factors are never
// offered.
type OutOfBand interface {
	// Deliver sends p to its factor's device and keeps it pending until
	// it is answered (AnswerOutOfBand) or p.Deadline passes
	// (ExpireOutOfBand). Errors: ErrTooMany when the user is prompted
	// too often; ErrUnavailable when it cannot take more.
	Deliver(ctx context.Context, p Pending) error
	// Await waits up to wait for the outcome of a pending verification
	// and hands it over once; done is false while it is still pending.
	// Errors: ErrVerificationClosed when nothing is pending under that
	// id and factor (never delivered, its outcome already taken, or
	// lost when keyfleetd restarted).
	Await(ctx context.Context, verificationID, factorID string, wait time.Duration) (res api.VerifyResult, done bool, err error)
}

// Pending is one out-of-band verification waiting for its device.
type Pending struct {
	// Ticket is the sealed verification, for AnswerOutOfBand and
	// ExpireOutOfBand. It is the application's handle too: keep it out
	// of every channel and log.
	Ticket         string
	VerificationID string
	FactorID       string
	Kind           string
	UserID         string
	Username       string
	// Application and Address describe the sign-in (shown on the device,
	// and in a relay's notification).
	Application, Address string
	// Delivery is the kind's message for the device (sdk
	// BeginVerifyResponse.Delivery): nothing in it lets its reader answer.
	Delivery []byte
	// Time is when the push began; Deadline is when the verification
	// stops waiting for an answer.
	Time, Deadline time.Time
}

// OutOfBandOutcome is what an answer from a device did.
type OutOfBandOutcome struct {
	Result api.VerifyResult
	// Reason is the kind's reason for a refusal (for the device and the
	// log, never a secret); Reported is set for "this wasn't me".
	Reason     string
	Reported   bool
	Suspicious bool
}

// isOutOfBand reports whether kind is answered out of band.
func (s *Service) isOutOfBand(kind string) bool {
	k, ok := s.kinds[kind]
	return ok && k.info.OutOfBand
}

// OutOfBandKinds lists the registered out-of-band kinds.
func (s *Service) OutOfBandKinds() []string {
	var out []string
	for name, k := range s.kinds {
		if k.info.OutOfBand {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// offerOutOfBand decides which out-of-band factors a verification offers:
// none when oob is off or nothing delivers them; otherwise those the
// request asked for by kind or id, or all of them when the user has
// nothing else. A user whose pushes are locked gets none. It errs only
// when that leaves no factor at all.
func (s *Service) offerOutOfBand(u User, factors []Factor, in api.BeginVerify, oob bool) ([]Factor, error) {
	var others, push []Factor
	for _, f := range factors {
		if s.isOutOfBand(f.Kind) {
			push = append(push, f)
		} else {
			others = append(others, f)
		}
	}
	if len(push) == 0 {
		return factors, nil
	}
	asked := func(f Factor) bool { return in.FactorID == f.ID || slices.Contains(in.Kinds, f.Kind) }
	switch {
	case !oob || s.cfg.OutOfBand == nil:
		push = nil
	case len(others) > 0:
		push = slices.DeleteFunc(push, func(f Factor) bool { return !asked(f) })
	}
	if len(push) > 0 && u.PushesLockedAt != nil {
		if len(others) == 0 {
			return nil, fmt.Errorf("%w: pushes to %s are locked since %s, when they reported a push as not theirs; an administrator unlocks them (keyfleet users unlock %s)",
				ErrLocked, u.Username, u.PushesLockedAt.Format(time.RFC3339), u.Username)
		}
		push = nil
	}
	if len(others)+len(push) == 0 {
		return nil, fmt.Errorf("%w: %s has only factors answered on a device (push), and this keyfleetd cannot send pushes for this request", ErrNoUsableFactor, u.Username)
	}
	return append(others, push...), nil
}

// signInContext checks and fills what a push shows about the sign-in.
func signInContext(p Principal, in api.BeginVerify) (sdk.VerifyContext, error) {
	c := sdk.VerifyContext{Application: strings.TrimSpace(in.Application), Address: strings.TrimSpace(in.Address)}
	if c.Application == "" {
		c.Application = p.Username
	}
	if len(c.Application) > 100 || strings.ContainsFunc(c.Application, unicode.IsControl) {
		return c, invalid("application", "must be at most 100 characters on one line")
	}
	if c.Address != "" {
		a, err := netip.ParseAddr(c.Address)
		if err != nil {
			return c, invalid("address", "%q is not an IP address; send the address the sign-in comes from, or none", c.Address)
		}
		c.Address = a.String()
	}
	return c, nil
}

// deliver hands a begun verification's out-of-band factors to the
// deliverer, with the sealed verification as their ticket.
func (s *Service) deliver(ctx context.Context, ticket string, u User, pending []Pending) error {
	for _, pd := range pending {
		pd.Ticket, pd.UserID, pd.Username = ticket, u.ID, u.Username
		if err := s.cfg.OutOfBand.Deliver(ctx, pd); err != nil {
			return fmt.Errorf("sending the %s prompt: %w", pd.Kind, err)
		}
	}
	return nil
}

// awaitOutOfBand is FinishVerify for an out-of-band factor: it waits for
// the device's answer (recorded when it came) and hands it over once.
func (s *Service) awaitOutOfBand(ctx context.Context, v Verification, in api.FinishVerify) (api.VerifyResult, error) {
	pending := api.VerifyResult{UserID: v.UserID, FactorID: in.FactorID, Kind: v.Factors[in.FactorID].Kind, Pending: true}
	if len(in.Response) > 0 && string(in.Response) != "null" {
		return api.VerifyResult{}, invalid("response", "a %s factor is answered on the user's device; finish without a response to wait for the answer", pending.Kind)
	}
	wait := v.ExpiresAt.Sub(s.now())
	if in.Wait != "" {
		d, err := time.ParseDuration(in.Wait)
		if err != nil || d < 0 {
			return api.VerifyResult{}, invalid("wait", "%q is not a duration like 20s (0s answers at once)", in.Wait)
		}
		wait = min(d, wait)
	}
	foreground.Release(ctx) // waiting on the user's device is not work of keyfleetd's
	res, done, err := s.cfg.OutOfBand.Await(ctx, v.ID, in.FactorID, wait)
	switch {
	case errors.Is(err, ErrVerificationClosed):
		return api.VerifyResult{}, fmt.Errorf("%w: no answer is pending for this push: it was finished already, or keyfleetd restarted since it began; begin a new verification", ErrVerificationClosed)
	case err != nil:
		return api.VerifyResult{}, err
	case !done:
		return pending, nil
	}
	return res, nil
}

// DeviceFactor returns the factor a companion says it answers for, when
// it is an active out-of-band factor of an active user: what a device's
// channel is authenticated against (the device then proves it holds the
// factor's key). It checks no principal: the key is the credential.
// Errors: ErrNotFound for anything else (nothing says which),
// ErrUnavailable.
func (s *Service) DeviceFactor(ctx context.Context, id string) (Factor, error) {
	var f Factor
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		if f, err = tx.Factor(id); err != nil {
			return err
		}
		u, err := tx.User(f.UserID)
		if err != nil {
			return err
		}
		if f.State != api.FactorActive || !s.isOutOfBand(f.Kind) || u.Status != api.UserActive {
			return &NotFoundError{Kind: "push factor", Ref: id}
		}
		return nil
	})
	if isNotFound(err) {
		return Factor{}, &NotFoundError{Kind: "push factor", Ref: id}
	}
	return f, err
}
