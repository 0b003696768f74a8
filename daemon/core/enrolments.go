package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/api"
)

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// CreateEnrolment opens a single-use, expiring challenge for a user to
// register a factor of a kind. ttl 0 means the configured default.
func (s *Service) CreateEnrolment(ctx context.Context, p Principal, in api.CreateEnrolment) (Enrolment, error) {
	kind, ok := s.kinds[in.Kind]
	if !ok {
		return Enrolment{}, s.unsupported(in.Kind)
	}
	ttl, err := s.enrolmentTTL(in.TTL)
	if err != nil {
		return Enrolment{}, err
	}
	var e Enrolment
	err = s.store.Update(ctx, func(tx Tx) error {
		u, err := lookupUser(tx, in.User)
		if err != nil {
			return err
		}
		if err := p.authorize(CreateEnrolments, u.ID); err != nil {
			return err
		}
		if u.Status != api.UserActive {
			return &TransitionError{Kind: "user", ID: u.Username, From: u.Status, Action: "enrol a factor for", Hint: "enable the user first"}
		}
		params, err := kind.EnrolParams(ctx, u)
		if err != nil {
			return err
		}
		now := s.now()
		e = Enrolment{ID: newID(prefixEnrolment, now, s.cfg.Rand), UserID: u.ID, Kind: in.Kind, State: api.EnrolmentOpen,
			Challenge: make([]byte, 32), CreatedBy: p.UserID, CreatedAt: now, ExpiresAt: now.Add(ttl), Params: params}
		if _, err := io.ReadFull(s.cfg.Rand, e.Challenge); err != nil {
			return fmt.Errorf("making enrolment challenge: %w", err)
		}
		if err := tx.PutEnrolment(e); err != nil {
			return err
		}
		return s.eventCtx(ctx, p, "").audit(tx, "enrolment.create", targetRef{"user", u.ID, u.Username}, nil,
			map[string]any{"enrolment_id": e.ID, "kind": e.Kind, "expires_at": e.ExpiresAt})
	})
	return e, err
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
	return e, p.authorize(ReadEnrolments, e.UserID)
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
			u, err := lookupUser(tx, f.UserID)
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
	res, err := s.kinds[e.Kind].FinishEnrol(ctx, e, u, in.Payload)
	if err != nil {
		return Factor{}, err
	}
	var f Factor
	err = s.store.Update(ctx, func(tx Tx) error {
		// Re-read inside the write: a second completion racing this one
		// conflicts here and finds the enrolment closed.
		e, err := s.openEnrolment(tx, id)
		if err != nil {
			return err
		}
		f, err = s.storeEnrolled(ctx, tx, p, e, in.Label, res)
		return err
	})
	return f, err
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
		if e, err = s.openEnrolment(tx, id); err != nil {
			return err
		}
		u, err = tx.User(e.UserID)
		return err
	})
	if err == nil && s.kinds[e.Kind] == nil {
		err = s.unsupported(e.Kind)
	}
	return e, u, err
}

func (s *Service) storeEnrolled(ctx context.Context, tx Tx, p Principal, e Enrolment, label string, res *Enrolled) (Factor, error) {
	now := s.now()
	f := Factor{ID: newID(prefixFactor, now, s.cfg.Rand), UserID: e.UserID, Kind: e.Kind, Label: label,
		State: api.FactorPending, CreatedAt: now, Public: res.Public, Evidence: res.Evidence}
	ev := s.eventCtx(ctx, p, "")
	ev.extra = map[string]string{"enrolment_id": e.ID}
	if res.Device != nil {
		d, err := s.attachDevice(tx, ev, *res.Device, e.UserID)
		if err != nil {
			return Factor{}, err
		}
		f.DeviceID = d.ID
	}
	if len(res.Secret) > 0 {
		sealed, err := s.sealer.Seal(res.Secret, []byte(f.ID))
		if err != nil {
			return Factor{}, fmt.Errorf("sealing factor secret: %w", err)
		}
		f.Secret = sealed
	}
	if !res.Pending {
		if err := s.move(&f, "activate", ""); err != nil {
			return Factor{}, err
		}
	}
	e.State, e.FactorID = api.EnrolmentCompleted, f.ID
	if err := tx.PutEnrolment(e); err != nil {
		return Factor{}, err
	}
	if err := tx.PutFactor(f); err != nil {
		return Factor{}, err
	}
	return f, ev.audit(tx, "factor.enrol", factorTarget(f), nil, f.summary())
}
