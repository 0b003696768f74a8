package core

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keyfleet/keyfleet/api"
)

// Token secrets look like kf_<26-char id>_<43-char secret>. The prefix lets
// secret scanners recognise a leaked token; the id finds the record without
// an index on the hash.
const (
	tokenPrefix    = "kf_"
	tokenSecretLen = 32
	tokenIDLen     = 26
)

// lastUsedEvery bounds how often a token's last-used time is written.
const lastUsedEvery = time.Minute

func hashToken(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func parseToken(secret string) (id string, ok bool) {
	rest, ok := strings.CutPrefix(secret, tokenPrefix)
	if !ok || len(rest) != tokenIDLen+1+base64.RawURLEncoding.EncodedLen(tokenSecretLen) || rest[tokenIDLen] != '_' {
		return "", false
	}
	id = prefixToken + rest[:tokenIDLen]
	return id, isID(id, prefixToken)
}

func (s *Service) mintToken(u User, name string, roles []string, ttl time.Duration, createdBy string) (Token, string, error) {
	now := s.now()
	t := Token{ID: newID(prefixToken, now, s.cfg.Rand), UserID: u.ID, Name: name, Roles: roles, CreatedBy: createdBy, CreatedAt: now}
	if ttl > 0 {
		t.ExpiresAt = ptr(now.Add(ttl))
	}
	raw := make([]byte, tokenSecretLen)
	if _, err := io.ReadFull(s.cfg.Rand, raw); err != nil {
		return Token{}, "", fmt.Errorf("making token secret: %w", err)
	}
	secret := tokenPrefix + strings.TrimPrefix(t.ID, prefixToken) + "_" + base64.RawURLEncoding.EncodeToString(raw)
	t.Hash = hashToken(secret)
	return t, secret, nil
}

// tokenTouch remembers when each token's last use was written.
type tokenTouch struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// Authenticate turns a bearer secret into the principal it stands for. The
// principal's roles are the token's roles that its user still holds.
// Errors: ErrUnauthenticated (unknown or malformed), ErrTokenRevoked,
// ErrTokenExpired, ErrForbidden (the user is disabled).
func (s *Service) Authenticate(ctx context.Context, secret string) (Principal, error) {
	id, ok := parseToken(secret)
	if !ok {
		return Principal{}, fmt.Errorf("%w: the bearer token is not a keyfleet token", ErrUnauthenticated)
	}
	var t Token
	var u User
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		if t, err = tx.Token(id); err != nil || t.Purpose == purposeBreakGlass {
			return err
		}
		u, err = tx.User(t.UserID)
		return err
	})
	if err != nil || subtle.ConstantTimeCompare(t.Hash, hashToken(secret)) != 1 {
		return Principal{}, fmt.Errorf("%w: the token is unknown; ask an administrator for a new one", ErrUnauthenticated)
	}
	now := s.now()
	switch {
	case t.RevokedAt != nil:
		return Principal{}, fmt.Errorf("%w: token %s was revoked on %s; ask an administrator for a new one", ErrTokenRevoked, t.ID, t.RevokedAt.Format(time.DateOnly))
	case t.ExpiresAt != nil && !now.Before(*t.ExpiresAt):
		s.expired(ctx, t)
		return Principal{}, fmt.Errorf("%w: token %s expired on %s; ask an administrator for a new one", ErrTokenExpired, t.ID, t.ExpiresAt.Format(time.RFC3339))
	case t.Purpose == purposeBreakGlass:
		return breakGlassPrincipal(t), nil
	case u.Status != api.UserActive:
		return Principal{}, &ForbiddenError{Principal: u.Username, Action: ReadSelf, Reason: "the user is disabled"}
	}
	s.touch(ctx, t.ID, now)
	p := Principal{UserID: u.ID, Username: u.Username, Auth: "token", TokenID: t.ID}
	if t.Purpose == purposePass {
		// A pass token carries only the pass role, whatever its user holds.
		p.Roles, p.Auth, p.PassID = []string{rolePass}, "pass", t.PassID
		return p, nil
	}
	if t.Purpose == purposeEnrolment {
		// A redeemed enrolment code completes its one enrolment, nothing else.
		p.Roles, p.Auth, p.EnrolmentID = []string{roleEnrolment}, "enrolment_code", t.EnrolmentID
		return p, nil
	}
	p.Roles = slices.DeleteFunc(slices.Clone(t.Roles), func(r string) bool { return !slices.Contains(u.Roles, r) })
	return p, nil
}

// touch records a token's last use, at most once a minute per token. It is
// bookkeeping, not a change to anyone's access, so it has no audit event.
func (s *Service) touch(ctx context.Context, id string, now time.Time) {
	s.touches.mu.Lock()
	due := now.Sub(s.touches.last[id]) >= lastUsedEvery
	if due {
		s.touches.last[id] = now
	}
	s.touches.mu.Unlock()
	if !due {
		return
	}
	err := s.store.Update(ctx, func(tx Tx) error {
		t, err := tx.Token(id)
		if err != nil {
			return err
		}
		t.LastUsedAt = &now
		return tx.PutToken(t)
	})
	if err != nil {
		s.log.Warn("recording token use", "token_id", id, "err", err)
	}
}

// Bootstrap creates the first administrator and a token for it, once: it
// fails with ErrAlreadyExists if the user exists. The secret is returned
// for the caller to hand over; only its hash is stored.
func (s *Service) Bootstrap(ctx context.Context, username string) (Token, string, error) {
	u, err := s.newUser(api.CreateUser{Username: username, DisplayName: "Bootstrap administrator", Roles: []string{api.RoleAdmin}})
	if err != nil {
		return Token{}, "", err
	}
	var t Token
	var secret string
	err = s.store.Update(ctx, func(tx Tx) error {
		u.ID = newID(prefixUser, u.CreatedAt, s.cfg.Rand)
		if err := tx.InsertUser(u); err != nil {
			return err
		}
		if t, secret, err = s.mintToken(u, "bootstrap", u.Roles, 0, System.UserID); err != nil {
			return err
		}
		if err := tx.PutToken(t); err != nil {
			return err
		}
		ev := s.eventCtx(ctx, System, "keyfleetd init")
		if err := ev.audit(tx, "user.create", userTarget(u), nil, u.summary()); err != nil {
			return err
		}
		return ev.audit(tx, "token.create", targetRef{"token", t.ID, t.Name}, nil, tokenSummary(t))
	})
	return t, secret, err
}

func tokenSummary(t Token) map[string]any {
	m := map[string]any{"user_id": t.UserID, "roles": nonNil(t.Roles)}
	if t.ExpiresAt != nil {
		m["expires_at"] = *t.ExpiresAt
	}
	if t.RevokedAt != nil {
		m["revoked_at"] = *t.RevokedAt
	}
	return m
}

// CreateToken mints an API token for a user (the caller when in.User is
// empty). The secret is returned once.
func (s *Service) CreateToken(ctx context.Context, p Principal, in api.CreateToken) (Token, string, error) {
	if err := validTokenName(in.Name); err != nil {
		return Token{}, "", err
	}
	var ttl time.Duration
	if in.TTL != "" {
		d, err := time.ParseDuration(in.TTL)
		if err != nil || d < time.Minute {
			return Token{}, "", invalid("ttl", "%q must be a duration of at least 1m, like 720h", in.TTL)
		}
		ttl = d
	}
	if in.User == "" {
		in.User = p.UserID
	}
	var t Token
	var secret string
	err := s.store.Update(ctx, func(tx Tx) error {
		u, err := lookupUser(tx, in.User)
		if err != nil {
			return err
		}
		if err := p.authorize(CreateTokens, u.ID); err != nil {
			return err
		}
		roles, err := tokenRoles(u, in.Roles)
		if err != nil {
			return err
		}
		if t, secret, err = s.mintToken(u, in.Name, roles, ttl, p.UserID); err != nil {
			return err
		}
		if err := tx.PutToken(t); err != nil {
			return err
		}
		return s.eventCtx(ctx, p, "").audit(tx, "token.create", targetRef{"token", t.ID, t.Name}, nil, tokenSummary(t))
	})
	return t, secret, err
}

func validTokenName(n string) error {
	if n == "" {
		return invalid("name", "is required: say what the token is for, like \"ci-deploy\"")
	}
	return validText("name", n, 64)
}

func tokenRoles(u User, want []string) ([]string, error) {
	if len(want) == 0 {
		return slices.Clone(u.Roles), nil
	}
	for _, r := range want {
		if !slices.Contains(u.Roles, r) {
			return nil, invalid("roles", "%s does not hold the %q role, so a token for them cannot either", u.Username, r)
		}
	}
	out := slices.Clone(want)
	slices.Sort(out)
	return slices.Compact(out), nil
}

// ListTokens lists tokens; principals who may see only their own see those.
func (s *Service) ListTokens(ctx context.Context, p Principal, userRef string, pg PageReq) ([]Token, string, error) {
	own, err := p.ownFilter(ReadTokens)
	if err != nil {
		return nil, "", err
	}
	var out []Token
	var next string
	err = s.store.View(ctx, func(tx ReadTx) error {
		f := TokenFilter{UserID: own}
		if userRef != "" {
			u, err := lookupFor(tx, p, ReadTokens, userRef)
			if err != nil {
				return err
			}
			if own != "" && u.ID != own {
				return p.authorize(ReadTokens, u.ID)
			}
			f.UserID = u.ID
		}
		out, next, err = tx.Tokens(f, pg.Clamp())
		return err
	})
	return out, next, err
}

// RevokeToken stops a token from working at once.
func (s *Service) RevokeToken(ctx context.Context, p Principal, id string) (Token, error) {
	var t Token
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		if t, err = tx.Token(id); err != nil {
			return err
		}
		if err := p.authorize(RevokeTokens, t.UserID); err != nil {
			return err
		}
		if t.RevokedAt != nil {
			return &TransitionError{Kind: "token", ID: t.ID, From: "revoked", Action: "revoke", Hint: "it is already revoked"}
		}
		before := tokenSummary(t)
		t.RevokedAt = ptr(s.now())
		if err := tx.PutToken(t); err != nil {
			return err
		}
		return s.eventCtx(ctx, p, "").audit(tx, "token.revoke", targetRef{"token", t.ID, t.Name}, before, tokenSummary(t))
	})
	return t, err
}
