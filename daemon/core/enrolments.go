package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/proof"
	"github.com/keyfleet/keyfleet/plugins/sdk"
	"github.com/keyfleet/keyfleet/policy"
)

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// CreateEnrolment opens a single-use, expiring challenge for a user to
// register a factor of a kind. It returns what the kind wants shown once
// to the person enrolling (Display: never stored, may hold a secret such
// as a TOTP URI).
func (s *Service) CreateEnrolment(ctx context.Context, p Principal, in api.CreateEnrolment) (Enrolment, map[string]string, error) {
	k, ok := s.kinds[in.Kind]
	if !ok {
		return Enrolment{}, nil, s.unsupported(in.Kind)
	}
	ttl, err := s.enrolmentTTL(in.TTL)
	if err != nil {
		return Enrolment{}, nil, err
	}
	u, err := s.enrollable(ctx, p, in.User, in.Kind)
	if err != nil {
		return Enrolment{}, nil, err
	}
	receipt, err := s.proveAdding(ctx, p, u, in.Kind)
	if err != nil {
		return Enrolment{}, nil, err
	}
	now := s.now()
	challenge, err := s.newChallenge()
	if err != nil {
		return Enrolment{}, nil, err
	}
	e := Enrolment{ID: newID(prefixEnrolment, now, s.cfg.Rand), UserID: u.ID, Kind: in.Kind, State: api.EnrolmentOpen,
		Challenge: challenge, CreatedBy: p.UserID, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	opts, err := s.enrolOptions(ctx, u, in.Kind, in.Options)
	if err != nil {
		return Enrolment{}, nil, err
	}
	begun, err := k.BeginEnrol(ctx, sdk.BeginEnrolRequest{User: sdkUser(u), EnrolmentID: e.ID, Challenge: e.Challenge, Options: opts, Now: now})
	if err != nil {
		return Enrolment{}, nil, kindError(in.Kind, err)
	}
	if err := s.sealEnrolment(&e, begun); err != nil {
		return Enrolment{}, nil, err
	}
	display, err := s.holderDisplay(p, &e, begun.Display)
	if err != nil {
		return Enrolment{}, nil, err
	}
	if err := s.codeFor(p, u, &e); err != nil {
		return Enrolment{}, nil, err
	}
	err = s.store.Update(ctx, func(tx Tx) error {
		if _, err := s.activeUser(tx, u.ID); err != nil {
			return err
		}
		if err := tx.PutEnrolment(e); err != nil {
			return err
		}
		if err := s.handleUser(tx, u.ID, p, handledEnrolled); err != nil {
			return err
		}
		after := map[string]any{"enrolment_id": e.ID, "kind": e.Kind, "expires_at": e.ExpiresAt}
		if len(in.Options) > 0 {
			after["options"] = in.Options // parameters, never secrets (checkRequestedOptions)
		}
		ev := s.eventCtx(ctx, p, "")
		receipt.note(ev)
		return ev.audit(tx, "enrolment.create", targetRef{"user", u.ID, u.Username}, nil, after)
	})
	return e, display, err
}

// codeFor gives e an enrolment code when p may hand one on. A code hands
// on the power to complete this enrolment: only to a creator who holds it
// (an enroller or admin, not a helpdesk), and never for a staff account
// someone else enrols (whoever held the code would hold a key of that
// account).
func (s *Service) codeFor(p Principal, u User, e *Enrolment) error {
	if !p.Can(CompleteEnrol, u.ID) || p.EnrolmentID != "" || !(p.isSystem() || p.UserID == u.ID || !isStaff(u)) {
		return nil
	}
	secret := make([]byte, 24)
	if _, err := io.ReadFull(s.cfg.Rand, secret); err != nil {
		return err
	}
	e.CodeHash, e.code = codeHash(secret), api.EnrolmentCode(e.ID, secret)
	return nil
}

// holderDisplay returns what the kind shows the person enrolling when p
// is that person; otherwise it seals it into e for the user alone.
func (s *Service) holderDisplay(p Principal, e *Enrolment, display map[string]string) (map[string]string, error) {
	if len(display) == 0 || p.UserID == e.UserID {
		return display, nil
	}
	b, err := json.Marshal(display)
	if err != nil {
		return nil, err
	}
	if e.SealedDisplay, err = s.sealer.Seal(b, []byte(e.ID+"/display")); err != nil {
		return nil, fmt.Errorf("sealing what the enrolment shows its user: %w", err)
	}
	return nil, nil
}

// UserDisplay opens what an open enrolment shows its user (nil when
// nothing is kept for them).
func (s *Service) UserDisplay(e Enrolment) map[string]string {
	if len(e.SealedDisplay) == 0 || e.stateAt(s.now()) != api.EnrolmentOpen {
		return nil
	}
	b, err := s.sealer.Open(e.SealedDisplay, []byte(e.ID+"/display"))
	var out map[string]string
	if err != nil || json.Unmarshal(b, &out) != nil {
		return nil
	}
	return out
}

// proveAdding asks a person adding a factor to their own account, when it
// has one already, for a proof with an existing factor: a stolen token
// alone cannot add an attacker's authenticator.
func (s *Service) proveAdding(ctx context.Context, p Principal, u User, kind string) (proofReceipt, error) {
	if p.UserID != u.ID || p.PassID != "" || p.EnrolmentID != "" || p.needsNoProof() {
		return proofReceipt{}, nil
	}
	has := false
	err := s.store.View(ctx, func(tx ReadTx) error {
		factors, _, err := tx.Factors(FactorFilter{UserID: u.ID, State: api.FactorActive}, PageReq{Limit: 1})
		has = len(factors) > 0
		return err
	})
	if err != nil || !has {
		return proofReceipt{}, err
	}
	return s.prove(ctx, p, addBinding(u.ID, kind))
}

// addBinding is what a proof for adding a factor is bound to.
func addBinding(userID, kind string) proof.Binding {
	return proof.Binding{Action: proof.FactorAdd, Subject: userID, Details: map[string]string{"kind": kind}}
}

// enrollable finds the user an enrolment is for and checks p may enrol them.
func (s *Service) enrollable(ctx context.Context, p Principal, ref, kind string) (User, error) {
	var u User
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		if u, err = lookupUser(tx, ref); err != nil {
			return err
		}
		if err := p.authorize(CreateEnrolments, u.ID); err != nil {
			return err
		}
		if err := s.checkPassEnrolment(tx, p, kind); err != nil {
			return err
		}
		_, err = s.activeUser(tx, u.ID)
		return err
	})
	return u, err
}

func (s *Service) activeUser(tx ReadTx, id string) (User, error) {
	u, err := tx.User(id)
	if err == nil && u.Status != api.UserActive {
		err = &TransitionError{Kind: "user", ID: u.Username, From: u.Status, Action: "enrol a factor for", Hint: "enable the user first"}
	}
	return u, err
}

// sealEnrolment keeps what BeginEnrol returned: params in the clear, state
// sealed to this enrolment.
func (s *Service) sealEnrolment(e *Enrolment, begun sdk.BeginEnrolResponse) error {
	if len(begun.Params) > 0 {
		b, err := json.Marshal(begun.Params)
		if err != nil {
			return err
		}
		e.Params = b
	}
	if len(begun.State) > 0 {
		sealed, err := s.sealer.Seal(begun.State, []byte(e.ID))
		if err != nil {
			return fmt.Errorf("sealing enrolment state: %w", err)
		}
		e.Sealed = sealed
	}
	return nil
}

func (s *Service) unsupported(kind string) error {
	known := s.Kinds()
	slices.Sort(known)
	if len(known) == 0 {
		return fmt.Errorf("%w: %q; this daemon has no factor kinds enabled", ErrUnsupportedKind, kind)
	}
	return fmt.Errorf("%w: %q; this daemon supports %s", ErrUnsupportedKind, kind, strings.Join(known, ", "))
}

func (s *Service) enrolmentTTL(in string) (time.Duration, error) {
	if in == "" {
		return s.cfg.EnrolmentTTL, nil
	}
	d, err := time.ParseDuration(in)
	if err != nil || d < time.Minute || d > s.cfg.MaxEnrolmentTTL {
		return 0, invalid("ttl", "%q must be a duration like 30m or 24h, between 1m and %s", in, s.cfg.MaxEnrolmentTTL)
	}
	return d, nil
}

// GetEnrolment returns an enrolment.
func (s *Service) GetEnrolment(ctx context.Context, p Principal, id string) (Enrolment, error) {
	var e Enrolment
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		e, err = tx.Enrolment(id)
		return err
	})
	if err != nil {
		return Enrolment{}, err
	}
	if err := p.authorize(ReadEnrolments, e.UserID); err != nil {
		return Enrolment{}, err
	}
	if p.UserID != e.UserID {
		e.SealedDisplay = nil
	}
	return p.redactEnrolment(e), nil
}

// redactEnrolment drops the challenge of an enrolment p may only read: the
// challenge is half of the enrolment code, so someone who could not open
// or complete the enrolment (an auditor) must not be able to build the
// code from what they read.
func (p Principal) redactEnrolment(e Enrolment) Enrolment {
	if !p.Can(CreateEnrolments, e.UserID) && !p.Can(CompleteEnrol, e.UserID) {
		e.Challenge = nil
	}
	e.Sealed = nil
	return e
}

// ListEnrolments lists enrolments, oldest first.
func (s *Service) ListEnrolments(ctx context.Context, p Principal, f EnrolmentFilter, pg PageReq) ([]Enrolment, string, error) {
	own, err := p.ownFilter(ReadEnrolments)
	if err != nil {
		return nil, "", err
	}
	var out []Enrolment
	var next string
	err = s.store.View(ctx, func(tx ReadTx) error {
		if f.UserID != "" {
			u, err := lookupFor(tx, p, ReadEnrolments, f.UserID)
			if err != nil {
				return err
			}
			f.UserID = u.ID
		}
		if own != "" {
			f.UserID = own
		}
		out, next, err = tx.Enrolments(f, pg.Clamp())
		return err
	})
	for i := range out {
		out[i] = p.redactEnrolment(out[i])
	}
	return out, next, err
}

// CancelEnrolment closes an open enrolment.
func (s *Service) CancelEnrolment(ctx context.Context, p Principal, id string) (Enrolment, error) {
	var e Enrolment
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		if e, err = tx.Enrolment(id); err != nil {
			return err
		}
		if err := p.authorize(CancelEnrolments, e.UserID); err != nil {
			return err
		}
		if e, err = s.openEnrolment(tx, id); err != nil {
			return err
		}
		e.State = api.EnrolmentCancelled
		if err := tx.PutEnrolment(e); err != nil {
			return err
		}
		return s.eventCtx(ctx, p, "").audit(tx, "enrolment.cancel", targetRef{"enrolment", e.ID, ""},
			map[string]any{"state": api.EnrolmentOpen}, map[string]any{"state": e.State})
	})
	return e, err
}

func (s *Service) openEnrolment(tx ReadTx, id string) (Enrolment, error) {
	e, err := tx.Enrolment(id)
	if err != nil {
		return Enrolment{}, err
	}
	if st := e.stateAt(s.now()); st != api.EnrolmentOpen {
		return Enrolment{}, fmt.Errorf("%w: enrolment %s is %s; create a new one", ErrEnrolmentClosed, e.ID, st)
	}
	return e, nil
}

// CompleteEnrolment checks a completed enrolment with its kind and creates
// the factor (and its device) in one transaction. The enrolment can be
// completed once.
func (s *Service) CompleteEnrolment(ctx context.Context, p Principal, id string, in api.CompleteEnrolment) (Factor, error) {
	if err := validLabel(in.Label); err != nil {
		return Factor{}, err
	}
	e, u, err := s.enrolmentFor(ctx, p, id)
	if err != nil {
		return Factor{}, err
	}
	var state []byte
	if len(e.Sealed) > 0 {
		if state, err = s.sealer.Open(e.Sealed, []byte(e.ID)); err != nil {
			return Factor{}, fmt.Errorf("opening enrolment state: %w", err)
		}
	}
	res, err := s.kinds[e.Kind].FinishEnrol(ctx, sdk.FinishEnrolRequest{User: sdkUser(u), EnrolmentID: e.ID,
		Challenge: e.Challenge, State: state, Response: in.Payload, Now: s.now()})
	if err != nil {
		err = kindError(e.Kind, err)
		return Factor{}, s.refused(ctx, p, e, u, "attestation", err)
	}
	// First recovery codes go to the person who will hold them: not to an
	// enroller completing someone else's enrolment at the desk (the user
	// makes theirs later, with the new factor).
	var codes *RecoveryCodes
	var plain []string
	if p.UserID == u.ID {
		if codes, plain, err = s.firstRecoveryCodes(ctx, u.ID); err != nil {
			return Factor{}, err
		}
	}
	var f Factor
	err = s.store.Update(ctx, func(tx Tx) error {
		// Re-read inside the write: a second completion racing this one
		// conflicts here and finds the enrolment closed.
		e, err := s.openEnrolment(tx, id)
		if err != nil {
			return err
		}
		// The policy sees the verified evidence before anything is stored.
		if err := s.checkEnrolment(tx, e.UserID, e.Kind, res.Evidence, res.Public); err != nil {
			return err
		}
		if f, err = s.storeEnrolled(ctx, tx, p, e, in.Label, res); err != nil {
			return err
		}
		if err := s.afterEnrol(ctx, tx, p, &f, codes, plain); err != nil {
			return err
		}
		if err := s.afterCodeEnrol(tx, p); err != nil {
			return err
		}
		if err := s.handleUser(tx, e.UserID, p, handledEnrolled); err != nil {
			return err
		}
		return s.noteEvaluation(ctx, tx, e.UserID)
	})
	if errors.Is(err, ErrPolicyViolation) {
		err = s.refused(ctx, p, e, u, "policy", err)
	}
	return f, err
}

// refused audits an enrolment whose key was turned away (a bad or
// untrusted attestation, a key the policy does not allow), so the trail
// and the event sinks see attempts, not only successes. The enrolment
// stays open for another key. It returns cause.
func (s *Service) refused(ctx context.Context, p Principal, e Enrolment, u User, stage string, cause error) error {
	if !errors.Is(cause, ErrInvalid) && !errors.Is(cause, ErrPolicyViolation) {
		return cause // not the key's fault: an outage, a plugin crash
	}
	extra := map[string]string{"enrolment_id": e.ID, "kind": e.Kind, "stage": stage, "reason": cause.Error()}
	if stage == "attestation" {
		extra["attestation"] = "failed"
	}
	err := s.store.Update(ctx, func(tx Tx) error {
		ev := s.eventCtx(ctx, p, "")
		ev.extra = extra
		return ev.audit(tx, "enrolment.refused", userTarget(u), nil, nil)
	})
	if err != nil {
		s.log.Warn("auditing a refused enrolment", "enrolment_id", e.ID, "err", err)
	}
	return cause
}

func (s *Service) enrolmentFor(ctx context.Context, p Principal, id string) (Enrolment, User, error) {
	var e Enrolment
	var u User
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		if e, err = tx.Enrolment(id); err != nil {
			return err
		}
		if err := p.authorize(CompleteEnrol, e.UserID); err != nil {
			return err
		}
		if err := p.checkBoundEnrolment(e.ID); err != nil {
			return err
		}
		if e, err = s.openEnrolment(tx, id); err != nil {
			return err
		}
		u, err = tx.User(e.UserID)
		return err
	})
	if _, ok := s.kinds[e.Kind]; err == nil && !ok {
		err = s.unsupported(e.Kind)
	}
	return e, u, err
}

func (s *Service) storeEnrolled(ctx context.Context, tx Tx, p Principal, e Enrolment, label string, res sdk.FinishEnrolResponse) (Factor, error) {
	now := s.now()
	f := Factor{ID: newID(prefixFactor, now, s.cfg.Rand), UserID: e.UserID, Kind: e.Kind, Label: label,
		State: api.FactorPending, CreatedAt: now, Public: jsonOrNil(res.Public), Evidence: jsonOrNil(res.Evidence)}
	ev := s.eventCtx(ctx, p, "")
	ev.extra = map[string]string{"enrolment_id": e.ID}
	if res.Device != nil {
		d, err := s.attachDevice(tx, ev, *res.Device, e.UserID)
		if err != nil {
			return Factor{}, err
		}
		f.DeviceID = d.ID
	}
	if len(res.State) > 0 {
		sealed, err := s.sealer.Seal(res.State, []byte(f.ID))
		if err != nil {
			return Factor{}, fmt.Errorf("sealing factor secret: %w", err)
		}
		f.Secret = sealed
	}
	// A key someone else enrols on a staff account waits for its holder
	// to activate it (BeginActivation), so the enroller never holds an
	// active key of that account.
	staffHandover := false
	if p.UserID != e.UserID && !p.needsNoProof() {
		u, err := tx.User(e.UserID)
		if err != nil {
			return Factor{}, err
		}
		staffHandover = isStaff(u)
	}
	if !res.Pending && !staffHandover {
		if err := s.move(&f, "activate", ""); err != nil {
			return Factor{}, err
		}
	}
	e.State, e.FactorID, e.Sealed = api.EnrolmentCompleted, f.ID, nil
	if err := tx.PutEnrolment(e); err != nil {
		return Factor{}, err
	}
	if err := tx.PutFactor(f); err != nil {
		return Factor{}, err
	}
	return f, ev.audit(tx, "factor.enrol", factorTarget(f), nil, f.summary())
}

// enrolOptions tells a kind what the enrolment must produce: what the
// policy asks of factors of that kind for this user (PIV PIN and touch
// policies, TOTP parameters), overridden by what the creator asked for
// (requested) where the policy accepts it, and the user's existing
// factors of that kind: any whose public material names a
// "credential_id" is listed in "exclude_credentials" (comma-separated),
// so the same authenticator is not registered twice. Errors: ErrInvalid
// for a malformed or reserved option, ErrPolicyViolation for a value the
// policy does not accept.
func (s *Service) enrolOptions(ctx context.Context, u User, kind string, requested map[string]string) (map[string]string, error) {
	if err := checkRequestedOptions(requested); err != nil {
		return nil, err
	}
	var ids []string
	opts := map[string]string{}
	err := s.store.View(ctx, func(tx ReadTx) error {
		_, doc, err := s.currentPolicy(tx)
		if err != nil {
			return err
		}
		maps.Copy(opts, policy.EnrolOptions(doc, policyUser(u), kind))
		maps.Copy(opts, requested)
		if err := policy.CheckEnrolOptions(doc, policyUser(u), kind, opts); err != nil {
			return fmt.Errorf("%w: enrolment refused: %w; leave the option out to get what the policy asks", ErrPolicyViolation, err)
		}
		return forEach(tx.Factors, FactorFilter{UserID: u.ID, Kind: kind}, func(f Factor) error {
			var pub struct {
				CredentialID string `json:"credential_id"`
			}
			if f.State != api.FactorRevoked && json.Unmarshal(f.Public, &pub) == nil && pub.CredentialID != "" {
				ids = append(ids, pub.CredentialID)
			}
			return nil
		})
	})
	if len(ids) > 0 {
		opts["exclude_credentials"] = strings.Join(ids, ",")
	}
	if err != nil || len(opts) == 0 {
		return nil, err
	}
	return opts, nil
}
