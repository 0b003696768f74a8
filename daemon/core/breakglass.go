package core

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/proof"
	"github.com/keyfleet/keyfleet/internal/shamir"
)

// Break-glass: a 256-bit secret split with Shamir's secret sharing into N
// shares, any M of which open one admin session that needs no second
// approver. Only a verifier of the secret is stored. The credential is
// single use: after a session it must be rotated.
const (
	purposeBreakGlass     = "breakglass"
	breakGlassUser        = "breakglass"
	shareVersion          = "kfbg1"
	breakGlassDefaultTTL  = time.Hour
	breakGlassMinShares   = 2
	breakGlassMaxShares   = 16
	defaultBreakGlassN    = 5
	defaultBreakGlassM    = 3
	breakGlassSecretBytes = 32
)

func breakGlassVerifier(setID string, secret []byte) []byte {
	h := sha256.New()
	h.Write([]byte("keyfleet-breakglass-v1:" + setID + ":"))
	h.Write(secret)
	return h.Sum(nil)
}

func breakGlassPrincipal(t Token) Principal {
	return Principal{UserID: breakGlassUser, Username: "break-glass", Roles: []string{roleBreakGlass}, Auth: "breakglass", TokenID: t.ID, sessionEnds: t.ExpiresAt}
}

// newBreakGlass makes a secret, splits it and returns the record to store
// and the shares to hand out.
func (s *Service) newBreakGlass(p Principal, n, m int) (BreakGlass, []string, error) {
	if n == 0 && m == 0 {
		n, m = defaultBreakGlassN, defaultBreakGlassM
	}
	if n < breakGlassMinShares || n > breakGlassMaxShares || m < 2 || m > n {
		return BreakGlass{}, nil, invalid("shares", "%d shares with a threshold of %d is not possible: use 2-16 shares and a threshold from 2 to the number of shares", n, m)
	}
	secret := make([]byte, breakGlassSecretBytes)
	if _, err := io.ReadFull(s.cfg.Rand, secret); err != nil {
		return BreakGlass{}, nil, err
	}
	parts, err := shamir.Split(secret, n, m, s.cfg.Rand)
	if err != nil {
		return BreakGlass{}, nil, fmt.Errorf("splitting the break-glass secret: %w", err)
	}
	now := s.now()
	setID := strings.TrimPrefix(newID("bgs_", now, s.cfg.Rand), "bgs_")[:16]
	shares := make([]string, len(parts))
	for i, part := range parts {
		shares[i] = strings.Join([]string{shareVersion, setID, fmt.Sprint(i + 1), base64.RawURLEncoding.EncodeToString(part)}, ".")
	}
	bg := BreakGlass{SetID: setID, Verifier: breakGlassVerifier(setID, secret), Shares: n, Threshold: m, CreatedAt: now, CreatedBy: p.Actor()}
	return bg, shares, nil
}

// InitBreakGlass makes the first break-glass credential (keyfleetd init).
// It fails with ErrAlreadyExists when one exists.
func (s *Service) InitBreakGlass(ctx context.Context, n, m int) (BreakGlass, []string, error) {
	bg, shares, err := s.newBreakGlass(System, n, m)
	if err != nil {
		return BreakGlass{}, nil, err
	}
	err = s.store.Update(ctx, func(tx Tx) error {
		if _, err := tx.BreakGlass(); err == nil {
			return fmt.Errorf("%w: a break-glass credential exists; rotate it instead", ErrAlreadyExists)
		} else if !isNotFound(err) {
			return err
		}
		if err := tx.PutBreakGlass(bg); err != nil {
			return err
		}
		return s.eventCtx(ctx, System, "keyfleetd init").audit(tx, "breakglass.create", targetRef{"breakglass", bg.SetID, ""}, nil,
			map[string]any{"shares": bg.Shares, "threshold": bg.Threshold})
	})
	return bg, shares, err
}

// RotateBreakGlass asks to replace the credential with new shares, one for
// each named holder. It is two-person (an api.ActionBreakGlassRotate
// request a different administrator approves) and needs the requester's
// proof: no single administrator ever holds, or can mint, a quorum. On
// approval each share is sealed to its holder, who collects it with
// CollectBreakGlassShare. The old shares stop working when it is approved.
// Errors: *ValidationError, *ForbiddenError, *ProofError.
func (s *Service) RotateBreakGlass(ctx context.Context, p Principal, in api.BreakGlassRotate) (Approval, error) {
	if err := p.authorize(RotateBreakGlass, ""); err != nil {
		return Approval{}, err
	}
	var params map[string]string
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		params, err = s.rotationParams(tx, in)
		return err
	})
	if err != nil {
		return Approval{}, err
	}
	receipt, err := s.prove(ctx, p, RotateBinding(in))
	if err != nil {
		return Approval{}, err
	}
	return s.request(ctx, p, "rotate the break-glass credential to "+params[paramHolders], func(Tx) (request, error) {
		if receipt.FactorID != "" {
			params["proof_factor_id"] = receipt.FactorID
		}
		return request{action: api.ActionBreakGlassRotate, perm: RotateBreakGlass, target: targetRef{"breakglass", "breakglass", ""}, params: params}, nil
	})
}

// Approval params of a rotation.
const (
	paramHolders   = "holders"
	paramThreshold = "threshold"
)

// rotationParams checks the holders (2-16 distinct active people) and the
// threshold (default a majority).
func (s *Service) rotationParams(tx ReadTx, in api.BreakGlassRotate) (map[string]string, error) {
	n := len(in.Holders)
	if n < breakGlassMinShares || n > breakGlassMaxShares {
		return nil, invalid("holders", "name 2 to 16 people, one per share, not %d", n)
	}
	m := in.Threshold
	if m == 0 {
		m = n/2 + 1
	}
	if m < 2 || m > n {
		return nil, invalid("threshold", "%d is not possible with %d holders: use 2 to %d", m, n, n)
	}
	seen := map[string]bool{}
	for _, name := range in.Holders {
		u, err := tx.UserByName(name)
		if isNotFound(err) || (err == nil && (u.Kind != api.KindPerson || u.Status != api.UserActive)) {
			return nil, invalid("holders", "%q is not an active person", name)
		}
		if err != nil {
			return nil, err
		}
		if seen[u.ID] {
			return nil, invalid("holders", "%q is named twice; each holder keeps one share", name)
		}
		seen[u.ID] = true
	}
	return map[string]string{paramHolders: strings.Join(in.Holders, ","), paramThreshold: fmt.Sprint(m)}, nil
}

// rotateApproved makes the new credential and seals each share to its
// holder.
func (s *Service) rotateApproved(tx Tx, ev *eventCtx, a Approval) error {
	holders := splitList(a.Params[paramHolders])
	m, _ := strconv.Atoi(a.Params[paramThreshold])
	bg, shares, err := s.newBreakGlass(ev.p, len(holders), m)
	if err != nil {
		return err
	}
	bg.Holders, bg.Held = holders, map[string][]byte{}
	for i, name := range holders {
		u, err := tx.UserByName(name)
		if err != nil {
			return err
		}
		if bg.Held[u.ID], err = s.sealer.Seal([]byte(shares[i]), shareAAD(bg.SetID, u.ID)); err != nil {
			return err
		}
	}
	old, err := tx.BreakGlass()
	if err != nil && !isNotFound(err) {
		return err
	}
	if err := tx.PutBreakGlass(bg); err != nil {
		return err
	}
	ev.privileged()
	return ev.audit(tx, "breakglass.rotate", targetRef{"breakglass", bg.SetID, ""},
		map[string]any{"set_id": old.SetID, "used": old.UsedAt != nil},
		map[string]any{"set_id": bg.SetID, "shares": bg.Shares, "threshold": bg.Threshold, "holders": holders})
}

func shareAAD(setID, userID string) []byte {
	return []byte("keyfleet-breakglass-share/" + setID + "/" + userID)
}

// CollectBreakGlassShare gives a holder their own share of the current
// credential, once, with a fresh proof of their key. Errors:
// *ForbiddenError (not a holder, or collected already), *ProofError.
func (s *Service) CollectBreakGlassShare(ctx context.Context, p Principal) (api.BreakGlassShare, error) {
	receipt, err := s.prove(ctx, p, proof.Binding{Action: proof.BreakGlassShare, Subject: p.UserID})
	if err != nil {
		return api.BreakGlassShare{}, err
	}
	var out api.BreakGlassShare
	err = s.store.Update(ctx, func(tx Tx) error {
		bg, err := tx.BreakGlass()
		if err != nil {
			return err
		}
		sealed, ok := bg.Held[p.UserID]
		if !ok {
			return &ForbiddenError{Principal: p.Username, Action: "breakglass.share",
				Reason: "you hold no uncollected share of the current break-glass credential (collected already, or not named a holder)"}
		}
		share, err := s.sealer.Open(sealed, shareAAD(bg.SetID, p.UserID))
		if err != nil {
			return fmt.Errorf("opening a break-glass share: %w", err)
		}
		delete(bg.Held, p.UserID)
		if err := tx.PutBreakGlass(bg); err != nil {
			return err
		}
		out = api.BreakGlassShare{SetID: bg.SetID, Threshold: bg.Threshold, Share: string(share)}
		ev := s.eventCtx(ctx, p, "")
		receipt.note(ev)
		ev.privileged()
		return ev.audit(tx, "breakglass.share_collected", targetRef{"breakglass", bg.SetID, ""}, nil, map[string]any{"left": len(bg.Held)})
	})
	return out, err
}

// BreakGlassStatus says whether the credential was used and needs rotating.
func (s *Service) BreakGlassStatus(ctx context.Context, p Principal) (api.BreakGlassStatus, error) {
	if err := p.authorize(ReadBreakGlass, ""); err != nil {
		return api.BreakGlassStatus{}, err
	}
	var out api.BreakGlassStatus
	err := s.store.View(ctx, func(tx ReadTx) error {
		bg, err := tx.BreakGlass()
		if err != nil {
			return err
		}
		out = api.BreakGlassStatus{SetID: bg.SetID, Shares: bg.Shares, Threshold: bg.Threshold, CreatedAt: bg.CreatedAt,
			UsedAt: bg.UsedAt, NeedsRotation: bg.UsedAt != nil, Holders: bg.Holders}
		for _, name := range bg.Holders {
			if u, err := tx.UserByName(name); err == nil && bg.Held[u.ID] != nil {
				out.Uncollected = append(out.Uncollected, name)
			}
		}
		if bg.UsedBy == "" {
			return nil
		}
		t, err := tx.Token(bg.UsedBy)
		if errors.As(err, new(*NotFoundError)) {
			return nil
		}
		if err != nil {
			return err
		}
		out.SessionEndsAt = t.ExpiresAt
		if t.RevokedAt != nil {
			out.SessionEndsAt = t.RevokedAt
		}
		out.SessionActive = t.RevokedAt == nil && t.ExpiresAt != nil && s.now().Before(*t.ExpiresAt)
		return nil
	})
	return out, err
}

var errBadShares = errors.New("the shares do not open the break-glass credential")

// parseShares decodes shares and checks they belong to one set.
func parseShares(shares []string) (string, [][]byte, error) {
	var setID string
	var parts [][]byte
	for i, sh := range shares {
		f := strings.Split(strings.TrimSpace(sh), ".")
		if len(f) != 4 || f[0] != shareVersion {
			return "", nil, invalid("shares", "share %d is not a keyfleet break-glass share (kfbg1.<set>.<n>.<data>)", i+1)
		}
		if setID != "" && f[1] != setID {
			return "", nil, invalid("shares", "share %d belongs to set %s, the others to %s", i+1, f[1], setID)
		}
		setID = f[1]
		b, err := base64.RawURLEncoding.DecodeString(f[3])
		if err != nil || len(b) != breakGlassSecretBytes+1 {
			return "", nil, invalid("shares", "share %d is damaged", i+1)
		}
		parts = append(parts, b)
	}
	return setID, parts, nil
}

// UseBreakGlass opens a break-glass session with M shares. It is loudly
// audited, single use, and time-boxed.
func (s *Service) UseBreakGlass(ctx context.Context, in api.BreakGlassUse) (api.BreakGlassSession, error) {
	ttl, err := s.breakGlassTTL(in.Duration)
	if err != nil {
		return api.BreakGlassSession{}, err
	}
	if in.Reason == "" {
		return api.BreakGlassSession{}, invalid("reason", "is required: say what emergency this is")
	}
	setID, parts, err := parseShares(in.Shares)
	if err != nil {
		return api.BreakGlassSession{}, err
	}
	var out api.BreakGlassSession
	var opened bool
	err = s.store.Update(ctx, func(tx Tx) error {
		bg, err := tx.BreakGlass()
		if err != nil {
			return err
		}
		if opened, err = s.openBreakGlass(ctx, tx, &bg, setID, parts, in.Reason); err != nil || !opened {
			return err
		}
		out, err = s.startBreakGlass(ctx, tx, &bg, ttl, in.Reason)
		return err
	})
	if err == nil && !opened {
		err = fmt.Errorf("%w: %v; the attempt was recorded", ErrUnauthenticated, errBadShares)
	}
	return out, err
}

func (s *Service) breakGlassTTL(in string) (time.Duration, error) {
	if in == "" {
		return min(breakGlassDefaultTTL, s.cfg.BreakGlassMax), nil
	}
	d, err := time.ParseDuration(in)
	if err != nil || d < time.Minute || d > s.cfg.BreakGlassMax {
		return 0, invalid("duration", "%q must be a duration from 1m to %s (breakglass.max_session)", in, s.cfg.BreakGlassMax)
	}
	return d, nil
}

// SweepBreakGlass ends a break-glass session whose time ran out, so its
// end is audited even if nobody presents its token again. keyfleetd runs
// it every half minute.
func (s *Service) SweepBreakGlass(ctx context.Context) error {
	return s.store.Update(ctx, func(tx Tx) error {
		bg, err := tx.BreakGlass()
		if isNotFound(err) || (err == nil && bg.UsedBy == "") {
			return nil
		}
		if err != nil {
			return err
		}
		t, err := tx.Token(bg.UsedBy)
		if isNotFound(err) || (err == nil && (t.RevokedAt != nil || t.ExpiresAt == nil || s.now().Before(*t.ExpiresAt))) {
			return nil
		}
		if err != nil {
			return err
		}
		return s.endBreakGlass(ctx, tx, t, "time ran out")
	})
}

// openBreakGlass checks the shares against the stored verifier. A failure
// is audited in the same transaction, which then commits.
func (s *Service) openBreakGlass(ctx context.Context, tx Tx, bg *BreakGlass, setID string, parts [][]byte, reason string) (bool, error) {
	fail := func(why string) (bool, error) {
		bg.Failures++
		if err := tx.PutBreakGlass(*bg); err != nil {
			return false, err
		}
		ev := s.eventCtx(ctx, System, reason)
		ev.extra = map[string]string{"reason": why}
		return false, ev.audit(tx, "breakglass.failed", targetRef{"breakglass", bg.SetID, ""}, nil, map[string]any{"failures": bg.Failures})
	}
	switch {
	case setID != bg.SetID:
		return fail("shares from set " + setID + ", not the current set (rotated?)")
	case bg.UsedAt != nil:
		return fail("the credential was already used; rotate it")
	case len(parts) < bg.Threshold:
		return fail(fmt.Sprintf("%d shares given, %d needed", len(parts), bg.Threshold))
	}
	secret, err := shamir.Combine(parts)
	if err != nil || subtle.ConstantTimeCompare(breakGlassVerifier(bg.SetID, secret), bg.Verifier) != 1 {
		return fail("the shares do not combine to the credential")
	}
	return true, nil
}

func (s *Service) startBreakGlass(ctx context.Context, tx Tx, bg *BreakGlass, ttl time.Duration, reason string) (api.BreakGlassSession, error) {
	u := User{ID: breakGlassUser, Username: "break-glass"}
	t, secret, err := s.mintToken(u, "break-glass session", []string{roleBreakGlass}, ttl, System.UserID)
	if err != nil {
		return api.BreakGlassSession{}, err
	}
	t.Purpose = purposeBreakGlass
	now := s.now()
	bg.UsedAt, bg.UsedBy = &now, t.ID
	if err := tx.PutToken(t); err != nil {
		return api.BreakGlassSession{}, err
	}
	if err := tx.PutBreakGlass(*bg); err != nil {
		return api.BreakGlassSession{}, err
	}
	ev := s.eventCtx(ctx, breakGlassPrincipal(t), reason)
	ev.extra = map[string]string{"token_id": t.ID}
	err = ev.audit(tx, "breakglass.start", targetRef{"breakglass", bg.SetID, ""}, nil, map[string]any{"expires_at": *t.ExpiresAt})
	return api.BreakGlassSession{Token: secret, ExpiresAt: *t.ExpiresAt}, err
}

// EndBreakGlass ends the caller's break-glass session early.
func (s *Service) EndBreakGlass(ctx context.Context, p Principal) error {
	if !p.breakGlass() {
		return &ForbiddenError{Principal: p.Username, Action: "breakglass.end", Reason: "only a break-glass session can end itself"}
	}
	return s.store.Update(ctx, func(tx Tx) error {
		t, err := tx.Token(p.TokenID)
		if err != nil {
			return err
		}
		return s.endBreakGlass(ctx, tx, t, "ended by the holder")
	})
}

func (s *Service) endBreakGlass(ctx context.Context, tx Tx, t Token, why string) error {
	if t.RevokedAt != nil {
		return nil
	}
	t.RevokedAt = ptr(s.now())
	if err := tx.PutToken(t); err != nil {
		return err
	}
	return s.eventCtx(ctx, breakGlassPrincipal(t), why).audit(tx, "breakglass.end", targetRef{"token", t.ID, ""}, nil, nil)
}

// expired notes the end of a break-glass session the first time its token
// is presented after it ran out.
func (s *Service) expired(ctx context.Context, t Token) {
	if t.Purpose != purposeBreakGlass || t.RevokedAt != nil {
		return
	}
	err := s.store.Update(ctx, func(tx Tx) error {
		cur, err := tx.Token(t.ID)
		if err != nil {
			return err
		}
		return s.endBreakGlass(ctx, tx, cur, "time ran out")
	})
	if err != nil {
		s.log.Warn("recording the end of a break-glass session", "token_id", t.ID, "err", err)
	}
}

// RotateBinding is what a proof for asking a rotation is bound to: the
// holders and threshold as asked.
func RotateBinding(in api.BreakGlassRotate) proof.Binding {
	return proof.Binding{Action: proof.BreakGlassRotate, Details: map[string]string{"holders": strings.Join(in.Holders, ","), "threshold": fmt.Sprint(in.Threshold)}}
}
