package core

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

const prefixVerification = "ver_"

// BeginVerify starts verifying a user for an application: one challenge
// per active factor of the accepted kinds. Errors: ErrNotFound,
// ErrLocked, ErrNoUsableFactor, *ForbiddenError.
func (s *Service) BeginVerify(ctx context.Context, p Principal, in api.BeginVerify) (api.Verification, error) {
	if err := p.authorize(VerifyUsers, ""); err != nil {
		return api.Verification{}, err
	}
	return s.beginVerify(ctx, p, in, nil, true)
}

// beginVerify is BeginVerify without the permission check, leaving out the
// factors in exclude (a recovery case's lost factors), and out-of-band
// factors unless oob (see offerOutOfBand).
func (s *Service) beginVerify(ctx context.Context, p Principal, in api.BeginVerify, exclude []string, oob bool) (api.Verification, error) {
	sign, err := signInContext(p, in)
	if err != nil {
		return api.Verification{}, err
	}
	u, factors, err := s.verifiable(ctx, in)
	if err != nil {
		return api.Verification{}, err
	}
	factors = slices.DeleteFunc(factors, func(f Factor) bool { return slices.Contains(exclude, f.ID) })
	if len(factors) == 0 {
		return api.Verification{}, fmt.Errorf("%w: %s has no other active factor to prove who they are with; use a recovery code or a helpdesk identity check", ErrNoUsableFactor, u.Username)
	}
	if factors, err = s.offerOutOfBand(u, factors, in, oob); err != nil {
		return api.Verification{}, err
	}
	now := s.now()
	v := Verification{ID: newID(prefixVerification, now, s.cfg.Rand), UserID: u.ID, CreatedBy: p.UserID,
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.VerifyTTL), Factors: map[string]VerificationFactor{},
		Application: sign.Application, Address: sign.Address}
	out := api.Verification{ID: v.ID, UserID: u.ID, ExpiresAt: v.ExpiresAt, Factors: []api.VerificationFactor{}}
	// One challenge for every factor offered: a WebAuthn client can then
	// ask for any of the user's keys in one request. Sharing it is safe
	// because the verification is finished once, with one factor.
	challenge, err := s.newChallenge()
	if err != nil {
		return api.Verification{}, err
	}
	var pending []Pending
	for _, f := range factors {
		vf, af, begun, err := s.beginFactor(ctx, u, f, v.ID, challenge, now, sign)
		if err != nil {
			return api.Verification{}, err
		}
		v.Factors[f.ID], out.Factors = vf, append(out.Factors, af)
		if af.OutOfBand {
			pending = append(pending, Pending{VerificationID: v.ID, FactorID: f.ID, Kind: f.Kind, Application: sign.Application,
				Address: sign.Address, Delivery: begun.Delivery, Time: now, Deadline: *af.Deadline})
		}
	}
	// Nothing is stored: the verification travels sealed in its own id,
	// and finishing it marks it used (single use) in the same write.
	if out.ID, err = s.sealVerification(v); err != nil || len(pending) == 0 {
		return out, err
	}
	return out, s.deliver(ctx, out.ID, u, pending)
}

// verificationAAD binds a sealed verification to its purpose.
const verificationAAD = "keyfleet-verification"

// sealVerification encodes v as an opaque id: "ver_" and the sealed JSON.
func (s *Service) sealVerification(v Verification) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	sealed, err := s.sealer.Seal(b, []byte(verificationAAD))
	if err != nil {
		return "", fmt.Errorf("sealing the verification: %w", err)
	}
	return prefixVerification + base64.RawURLEncoding.EncodeToString(sealed), nil
}

// openVerificationID reverses sealVerification; false for anything else.
func (s *Service) openVerificationID(id string) (Verification, bool) {
	raw, ok := strings.CutPrefix(id, prefixVerification)
	if !ok {
		return Verification{}, false
	}
	sealed, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return Verification{}, false
	}
	b, err := s.sealer.Open(sealed, []byte(verificationAAD))
	if err != nil {
		return Verification{}, false
	}
	var v Verification
	return v, json.Unmarshal(b, &v) == nil
}

// verifiable finds the user and the factors they may verify with now.
func (s *Service) verifiable(ctx context.Context, in api.BeginVerify) (User, []Factor, error) {
	var u User
	var out []Factor
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		u, out, _, err = s.verifiableIn(tx, in, s.now())
		return err
	})
	return u, out, err
}

// verifiableIn is verifiable inside tx; it also returns the policy version
// the factors were checked against.
func (s *Service) verifiableIn(tx ReadTx, in api.BeginVerify, now time.Time) (User, []Factor, int, error) {
	u, err := lookupUser(tx, in.User)
	if err != nil {
		return u, nil, 0, err
	}
	if u.Status != api.UserActive {
		return u, nil, 0, &TransitionError{Kind: "user", ID: u.Username, From: u.Status, Action: "verify", Hint: "a disabled user cannot sign in"}
	}
	if locked(u.LockedUntil, now) {
		return u, nil, 0, fmt.Errorf("%w: %s until %s; an administrator can unlock sooner", ErrLocked, u.Username, u.LockedUntil.Format(time.RFC3339))
	}
	var out []Factor
	usable := func(f Factor) error {
		if _, ok := s.kinds[f.Kind]; ok && f.UserID == u.ID && f.State == api.FactorActive && !locked(f.LockedUntil, now) &&
			(len(in.Kinds) == 0 || slices.Contains(in.Kinds, f.Kind)) && (in.FactorID == "" || in.FactorID == f.ID) {
			out = append(out, f)
		}
		return nil
	}
	if in.FactorID != "" {
		// One factor named: read it alone rather than all the user's.
		f, err := tx.Factor(in.FactorID)
		if err != nil && !errors.As(err, new(*NotFoundError)) {
			return u, nil, 0, err
		}
		if err == nil {
			usable(f)
		}
	} else if err := forEach(tx.Factors, FactorFilter{UserID: u.ID, State: api.FactorActive}, usable); err != nil {
		return u, nil, 0, err
	}
	out, version, err := s.verifiableKinds(tx, u, out)
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("%w: %s has no active, unlocked factor of the accepted kinds; they must enrol one (GET /v1/users/%s/mfa-status)", ErrNoUsableFactor, u.Username, u.Username)
	}
	return u, out, version, err
}

// newChallenge draws the 32 random bytes of an enrolment's or a
// verification's challenge.
func (s *Service) newChallenge() ([]byte, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(s.cfg.Rand, b); err != nil {
		return nil, fmt.Errorf("drawing a challenge: %w", err)
	}
	return b, nil
}

func locked(until *time.Time, now time.Time) bool { return until != nil && now.Before(*until) }

// beginFactor begins verifying one factor within the verification vid.
// For an out-of-band kind the answer's OutOfBand and Deadline are set
// (the deadline no later than the verification's expiry) and the kind's
// response, with its Delivery, is returned.
func (s *Service) beginFactor(ctx context.Context, u User, f Factor, vid string, challenge []byte, now time.Time, sign sdk.VerifyContext) (VerificationFactor, api.VerificationFactor, sdk.BeginVerifyResponse, error) {
	k := s.kinds[f.Kind]
	state, err := s.openSecret(f)
	if err != nil {
		return VerificationFactor{}, api.VerificationFactor{}, sdk.BeginVerifyResponse{}, err
	}
	res, err := k.BeginVerify(ctx, sdk.BeginVerifyRequest{User: sdkUser(u), FactorID: f.ID, State: state, Challenge: challenge, Now: now,
		VerificationID: vid, Context: sign})
	if err != nil {
		return VerificationFactor{}, api.VerificationFactor{}, res, kindError(f.Kind, err)
	}
	vf := VerificationFactor{Kind: f.Kind}
	if len(res.Session) > 0 {
		if vf.Sealed, err = s.sealer.Seal(res.Session, []byte(vid+"/"+f.ID)); err != nil {
			return VerificationFactor{}, api.VerificationFactor{}, res, err
		}
	}
	af := api.VerificationFactor{FactorID: f.ID, Kind: f.Kind, Label: f.Label, Prompt: jsonOrNil(res.Prompt)}
	for _, in := range k.info.VerifyInputs {
		af.Inputs = append(af.Inputs, in.Name)
	}
	if k.info.OutOfBand {
		if res.Deadline.IsZero() || len(res.Delivery) == 0 {
			return vf, af, res, fmt.Errorf("factor kind %s is answered out of band but gave no delivery or deadline", f.Kind)
		}
		dl := res.Deadline.UTC()
		if limit := now.Add(s.cfg.VerifyTTL); dl.After(limit) {
			dl = limit
		}
		af.OutOfBand, af.Deadline = true, &dl
	}
	return vf, af, res, nil
}

func (s *Service) openSecret(f Factor) ([]byte, error) {
	if len(f.Secret) == 0 {
		return nil, nil
	}
	b, err := s.sealer.Open(f.Secret, []byte(f.ID))
	if err != nil {
		return nil, fmt.Errorf("opening factor %s state: %w", f.ID, err)
	}
	return b, nil
}

// FinishVerify checks a user's answer. A wrong answer is not an error: the
// result is OK false, with no detail, and counts towards lockout. The
// verification is single use. Errors: ErrNotFound (unknown verification),
// ErrVerificationClosed, ErrLocked, ErrInvalid (factor not in it).
func (s *Service) FinishVerify(ctx context.Context, p Principal, in api.FinishVerify) (api.VerifyResult, error) {
	if err := p.authorize(VerifyUsers, ""); err != nil {
		return api.VerifyResult{}, err
	}
	if v, vf, err := s.openVerification(nil, p, in); err == nil && s.isOutOfBand(vf.Kind) {
		return s.awaitOutOfBand(ctx, v, in)
	}
	if in.Wait != "" {
		return api.VerifyResult{}, invalid("wait", "only a factor answered on the user's device (push) waits; leave wait out")
	}
	return s.finishVerify(ctx, p, in, nil)
}

// finishVerify is FinishVerify without the permission check; after, if not
// nil, runs in the same transaction with the outcome.
func (s *Service) finishVerify(ctx context.Context, p Principal, in api.FinishVerify, after func(tx Tx, res api.VerifyResult) error) (api.VerifyResult, error) {
	var res api.VerifyResult
	var noteKey string
	err := s.store.Update(ctx, func(tx Tx) error {
		v, vf, err := s.openVerification(tx, p, in)
		if err != nil {
			return err
		}
		fresh, err := tx.UseVerification(v.ID, v.ExpiresAt)
		if err != nil {
			return err
		}
		if !fresh {
			return &NotFoundError{Kind: "verification", Ref: "(already finished)"}
		}
		if s.isOutOfBand(vf.Kind) {
			return invalid("factor_id", "a %s factor is not answered this way", vf.Kind)
		}
		if res, noteKey, err = s.checkAnswer(ctx, tx, p, v, vf, in); err != nil || after == nil {
			return err
		}
		return after(tx, res)
	})
	if err == nil && res.OK {
		s.notePolicy(ctx, res.UserID, noteKey)
	}
	return res, err
}

// CheckVerify checks a response that needs no challenge (a TOTP or HOTP
// code) in one call and one transaction: what BeginVerify and FinishVerify
// do, without a verification to carry between them. It serves kinds whose
// BeginVerify keeps no session; a kind that answers a challenge (PIV,
// FIDO2) is refused with ErrInvalid, pointing at begin and finish. The
// user must have one active factor of the accepted kinds, or in.FactorID
// names it. Replay protection is the factor's own state (a TOTP factor's
// last accepted step), updated in the same transaction. Errors are those
// of BeginVerify and FinishVerify.
func (s *Service) CheckVerify(ctx context.Context, p Principal, in api.CheckVerify) (api.VerifyResult, error) {
	if err := p.authorize(VerifyUsers, ""); err != nil {
		return api.VerifyResult{}, err
	}
	var res api.VerifyResult
	var key string
	err := s.store.Update(ctx, func(tx Tx) error {
		now := s.now()
		u, factors, version, err := s.verifiableIn(tx, api.BeginVerify{User: in.User, Kinds: in.Kinds, FactorID: in.FactorID}, now)
		if err != nil {
			return err
		}
		if len(factors) > 1 {
			return invalid("factor_id", "%s has %d active factors of the accepted kinds; name the one that answers with factor_id, or narrow kinds", u.Username, len(factors))
		}
		f := factors[0]
		if err := s.challengeFree(ctx, u, f, now); err != nil {
			return err
		}
		v := Verification{UserID: u.ID, CreatedBy: p.UserID, CreatedAt: now, ExpiresAt: now}
		res, key, err = s.answer(ctx, tx, p, v, VerificationFactor{Kind: f.Kind}, u, f, in.Response, version)
		return err
	})
	if err == nil && res.OK {
		s.notePolicy(ctx, res.UserID, key)
	}
	return res, err
}

// challengeFree begins a verification of f and refuses it when the kind
// keeps a session: its answer depends on a challenge the caller never saw.
// A kind that declares itself challenge-free (sdk.Info.ChallengeFree: a
// TOTP or HOTP code) is taken at its word, which saves a call to it (for
// a plugin, a round trip to its process).
func (s *Service) challengeFree(ctx context.Context, u User, f Factor, now time.Time) error {
	if s.kinds[f.Kind].info.ChallengeFree {
		return nil
	}
	state, err := s.openSecret(f)
	if err != nil {
		return err
	}
	challenge, err := s.newChallenge()
	if err != nil {
		return err
	}
	begun, err := s.kinds[f.Kind].BeginVerify(ctx, sdk.BeginVerifyRequest{User: sdkUser(u), FactorID: f.ID, State: state, Challenge: challenge, Now: now})
	if err != nil {
		return kindError(f.Kind, err)
	}
	if len(begun.Session) > 0 {
		return invalid("kinds", "a %s factor answers a challenge; use POST /v1/verify/begin, then /v1/verify/finish", f.Kind)
	}
	return nil
}

// notePolicy records the rules that now apply to a user, after a
// verification. It runs in its own transaction: evaluating reads all of
// the user's factors, and doing that inside the verification would make
// two verifications of the same user's different factors collide. It
// writes only when a rule applies for the first time, and it is skipped
// when it already ran for the same policy version and the same user
// attributes (see notedPolicy).
func (s *Service) notePolicy(ctx context.Context, userID, key string) {
	if s.noted.has(userID, key) {
		return
	}
	err := s.store.Update(ctx, func(tx Tx) error { return s.noteEvaluation(ctx, tx, userID) })
	if err != nil {
		s.log.Warn("recording the policy rules that apply", "user_id", userID, "err", err)
		return
	}
	s.noted.add(userID, key)
}

// notedPolicy remembers, per user, the policy version and user attributes
// for which the rules that apply were last recorded. Which rules apply
// depends on nothing else (policy.Match: groups, roles, user kind), and
// recorded first-applied times are only ever forgotten with the user, so
// noting again for the same key would find nothing new. It is bounded:
// past maxNoted users it starts afresh, which costs one evaluation each.
type notedPolicy struct {
	mu sync.Mutex
	m  map[string]string
}

const maxNoted = 200_000

func (n *notedPolicy) has(userID, key string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return key != "" && n.m[userID] == key
}

func (n *notedPolicy) add(userID, key string) {
	if key == "" {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.m) >= maxNoted {
		clear(n.m)
	}
	n.m[userID] = key
}

// noteKey names what decides which rules apply to u under version.
func noteKey(version int, u User) string {
	return fmt.Sprintf("%d\x00%s\x00%q\x00%q", version, u.Kind, u.Groups, u.Roles)
}

func (s *Service) openVerification(tx Tx, p Principal, in api.FinishVerify) (Verification, VerificationFactor, error) {
	v, ok := s.openVerificationID(in.ID)
	if !ok || v.CreatedBy != p.UserID {
		return Verification{}, VerificationFactor{}, &NotFoundError{Kind: "verification", Ref: shortRef(in.ID)}
	}
	if !s.now().Before(v.ExpiresAt) {
		return Verification{}, VerificationFactor{}, fmt.Errorf("%w: the verification expired; begin a new one", ErrVerificationClosed)
	}
	vf, ok := v.Factors[in.FactorID]
	if !ok {
		return Verification{}, VerificationFactor{}, invalid("factor_id", "%q is not one of the factors this verification offered", in.FactorID)
	}
	return v, vf, nil
}

// checkAnswer runs the kind's check inside the transaction, so that two
// racing answers with the same code see each other's state (replay).
// It also returns the user's noteKey for notePolicy.
func (s *Service) checkAnswer(ctx context.Context, tx Tx, p Principal, v Verification, vf VerificationFactor, in api.FinishVerify) (api.VerifyResult, string, error) {
	u, err := tx.User(v.UserID)
	if err != nil {
		return api.VerifyResult{UserID: v.UserID, FactorID: in.FactorID, Kind: vf.Kind}, "", err
	}
	f, err := tx.Factor(in.FactorID)
	if err != nil {
		return api.VerifyResult{UserID: v.UserID, FactorID: in.FactorID, Kind: vf.Kind}, "", err
	}
	return s.answer(ctx, tx, p, v, vf, u, f, in.Response, -1)
}

// answer is checkAnswer with the user and factor read from tx; version is
// the policy version the factor's kind was already checked against in tx,
// or -1 to check it here (the policy may have changed since the
// verification began).
func (s *Service) answer(ctx context.Context, tx Tx, p Principal, v Verification, vf VerificationFactor, u User, f Factor, response []byte, version int) (api.VerifyResult, string, error) {
	res := api.VerifyResult{UserID: u.ID, FactorID: f.ID, Kind: vf.Kind}
	now := s.now()
	if locked(u.LockedUntil, now) || locked(f.LockedUntil, now) {
		return res, "", fmt.Errorf("%w: try again later or ask an administrator to unlock", ErrLocked)
	}
	if f.State != api.FactorActive || u.Status != api.UserActive {
		return res, "", s.recordVerify(ctx, tx, p, &u, &f, sdk.FinishVerifyResponse{Reason: "factor or user not active"})
	}
	if version < 0 {
		var err error
		if version, err = s.checkVerification(tx, u, f.Kind); err != nil {
			return res, "", err
		}
	}
	out, err := s.runFinish(ctx, u, f, v, vf, response, now)
	if err != nil {
		return res, "", err
	}
	res.OK = out.OK
	return res, noteKey(version, u), s.recordVerify(ctx, tx, p, &u, &f, out)
}

func (s *Service) runFinish(ctx context.Context, u User, f Factor, v Verification, vf VerificationFactor, response []byte, now time.Time) (sdk.FinishVerifyResponse, error) {
	state, err := s.openSecret(f)
	if err != nil {
		return sdk.FinishVerifyResponse{}, err
	}
	var session []byte
	if len(vf.Sealed) > 0 {
		if session, err = s.sealer.Open(vf.Sealed, []byte(v.ID+"/"+f.ID)); err != nil {
			return sdk.FinishVerifyResponse{}, err
		}
	}
	out, err := s.kinds[f.Kind].FinishVerify(ctx, sdk.FinishVerifyRequest{User: sdkUser(u), FactorID: f.ID,
		State: state, Session: session, Response: response, Now: now})
	if err != nil {
		kerr := kindError(f.Kind, err)
		if !isInvalid(kerr) {
			return sdk.FinishVerifyResponse{}, kerr
		}
		// A malformed answer counts as a wrong one: no probing for free.
		return sdk.FinishVerifyResponse{Reason: "malformed response"}, nil
	}
	return out, nil
}

// recordVerify applies a verification's outcome: last use and new state
// on success; failure counters and lockouts otherwise; and audits it.
func (s *Service) recordVerify(ctx context.Context, tx Tx, p Principal, u *User, f *Factor, out sdk.FinishVerifyResponse) error {
	return s.recordVerifyWith(ctx, tx, p, u, f, out, nil)
}

// recordVerifyWith is recordVerify with more extra fields for the audit
// records (the sign-in an out-of-band answer was for).
func (s *Service) recordVerifyWith(ctx context.Context, tx Tx, p Principal, u *User, f *Factor, out sdk.FinishVerifyResponse, more map[string]string) error {
	now := s.now()
	ev := s.eventCtx(ctx, p, "")
	ev.extra = map[string]string{"user_id": u.ID, "kind": f.Kind}
	for k, v := range more {
		if v != "" {
			ev.extra[k] = v
		}
	}
	if out.OK {
		return s.verified(tx, ev, u, f, out.State, now)
	}
	ev.extra["reason"] = out.Reason
	if out.Suspicious {
		ev.extra["suspicious"] = "true"
	}
	f.Failures++
	u.Failures++
	if err := ev.audit(tx, "factor.verify_failed", factorTarget(*f), nil, map[string]any{"failures": f.Failures}); err != nil {
		return err
	}
	if f.Failures >= s.cfg.MaxFailures && !locked(f.LockedUntil, now) {
		f.LockedUntil = ptr(now.Add(s.cfg.LockoutFor))
		if err := ev.audit(tx, "factor.lockout", factorTarget(*f), nil, map[string]any{"locked_until": *f.LockedUntil}); err != nil {
			return err
		}
	}
	if u.Failures >= s.cfg.MaxFailures && !locked(u.LockedUntil, now) {
		u.LockedUntil = ptr(now.Add(s.cfg.LockoutFor))
		if err := ev.audit(tx, "user.lockout", userTarget(*u), nil, map[string]any{"locked_until": *u.LockedUntil}); err != nil {
			return err
		}
	}
	if err := tx.PutFactor(*f); err != nil {
		return err
	}
	return tx.PutUser(*u)
}

func (s *Service) verified(tx Tx, ev *eventCtx, u *User, f *Factor, newState []byte, now time.Time) error {
	f.LastUsedAt, f.Failures, f.LockedUntil = &now, 0, nil
	if newState != nil {
		sealed, err := s.sealer.Seal(newState, []byte(f.ID))
		if err != nil {
			return err
		}
		f.Secret = sealed
	}
	if err := tx.PutFactor(*f); err != nil {
		return err
	}
	if u.Failures > 0 || u.LockedUntil != nil {
		u.Failures, u.LockedUntil = 0, nil
		if err := tx.PutUser(*u); err != nil {
			return err
		}
	}
	return ev.audit(tx, "factor.verify", factorTarget(*f), nil, map[string]any{"outcome": "success"})
}

// UnlockUser clears a user's lockout and those of all their factors, and
// lets pushes go to them again after they reported one.
func (s *Service) UnlockUser(ctx context.Context, p Principal, ref, reason string) (User, error) {
	if err := validText("reason", reason, 500); err != nil {
		return User{}, err
	}
	var u User
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		if u, err = lookupUser(tx, ref); err != nil {
			return err
		}
		if err := p.authorize(UnlockUsers, u.ID); err != nil {
			return err
		}
		var before map[string]any
		if u.PushesLockedAt != nil { // pushes locked after "this wasn't me": unlocking sends them again
			before = map[string]any{"pushes_locked_at": *u.PushesLockedAt}
		}
		u.Failures, u.LockedUntil, u.PushesLockedAt = 0, nil, nil
		if err := tx.PutUser(u); err != nil {
			return err
		}
		err = forEach(tx.Factors, FactorFilter{UserID: u.ID}, func(f Factor) error {
			if f.Failures == 0 && f.LockedUntil == nil {
				return nil
			}
			f.Failures, f.LockedUntil = 0, nil
			return tx.PutFactor(f)
		})
		if err != nil {
			return err
		}
		return s.eventCtx(ctx, p, reason).audit(tx, "user.unlock", userTarget(u), before, nil)
	})
	return u, err
}

func isInvalid(err error) bool { return errors.Is(err, ErrInvalid) }

// shortRef keeps error messages short when an id is a long sealed blob.
func shortRef(id string) string {
	if len(id) > 24 {
		return id[:24] + "…"
	}
	return id
}
