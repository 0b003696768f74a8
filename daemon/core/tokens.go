package core

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/proof"
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
// principal's roles are the token's roles that its user still holds. A
// token lives no longer than what granted it: a pass's token dies with
// the pass and its recovery case, an enrolment code's with its enrolment,
// a token made in a break-glass session with the session; each is checked
// here, on every request. Errors: ErrUnauthenticated (unknown or
// malformed), ErrTokenRevoked, ErrTokenExpired, ErrForbidden (the user is
// disabled).
func (s *Service) Authenticate(ctx context.Context, secret string) (Principal, error) {
	id, ok := parseToken(secret)
	if !ok {
		return Principal{}, fmt.Errorf("%w: the bearer token is not a keyfleet token", ErrUnauthenticated)
	}
	now := s.now()
	t, u, issuer, err := s.readToken(ctx, id, now)
	if err != nil || subtle.ConstantTimeCompare(t.Hash, hashToken(secret)) != 1 {
		return Principal{}, fmt.Errorf("%w: the token is unknown; ask an administrator for a new one", ErrUnauthenticated)
	}
	switch {
	case t.RevokedAt != nil:
		return Principal{}, fmt.Errorf("%w: token %s was revoked on %s; %s", ErrTokenRevoked, t.ID, t.RevokedAt.Format(time.DateOnly), renewHint(t))
	case t.ExpiresAt != nil && !now.Before(*t.ExpiresAt):
		s.expired(ctx, t)
		return Principal{}, fmt.Errorf("%w: token %s expired on %s; %s", ErrTokenExpired, t.ID, t.ExpiresAt.Format(time.RFC3339), renewHint(t))
	case issuer != nil:
		return Principal{}, issuer
	case t.Purpose == purposeBreakGlass:
		return breakGlassPrincipal(t), nil
	case u.Status != api.UserActive:
		return Principal{}, &ForbiddenError{Principal: u.Username, Action: ReadSelf, Reason: "the user is disabled"}
	}
	s.touch(ctx, t.ID, now)
	return tokenPrincipal(t, u), nil
}

// TokenReader is what a store may offer Authenticate: a token and its
// user read in one snapshot, the two together, as one statement to a
// database server instead of a transaction of three round trips (the
// PostgreSQL store). Every request with a token reads them.
type TokenReader interface {
	// TokenWithUser reads token id and the user it belongs to. A missing
	// token is a *NotFoundError; a missing user is a zero User (no ID)
	// and no error.
	TokenWithUser(ctx context.Context, id string) (Token, User, error)
}

// readToken reads token id, whatever granted it (issuerState: the
// refusal, if it no longer stands, as the third value) and its user, in
// one snapshot. A token whose grant needs more records than the token
// and its user is read with View.
func (s *Service) readToken(ctx context.Context, id string, now time.Time) (Token, User, error, error) {
	if r, ok := s.store.(TokenReader); ok {
		t, u, err := r.TokenWithUser(ctx, id)
		switch {
		case err != nil:
			return t, u, nil, err
		case t.Purpose == purposeBreakGlass && t.ParentID == "":
			return t, User{}, nil, nil
		case t.Purpose == "" && t.ParentID == "" && u.ID == t.UserID:
			return t, u, nil, nil
		case t.Purpose == "" && t.ParentID == "" && u.ID == "":
			return t, u, nil, &NotFoundError{Kind: "user", Ref: t.UserID}
		}
	}
	var t Token
	var u User
	var issuer error
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		if t, err = tx.Token(id); err != nil {
			return err
		}
		if issuer, err = s.issuerState(tx, t, now); err != nil || t.Purpose == purposeBreakGlass {
			return err
		}
		u, err = tx.User(t.UserID)
		return err
	})
	return t, u, issuer, err
}

// tokenPrincipal is the principal an authenticated token stands for.
func tokenPrincipal(t Token, u User) Principal {
	p := Principal{UserID: u.ID, Username: u.Username, Auth: "token", TokenID: t.ID}
	switch t.Purpose {
	case purposePass:
		// A pass token carries only the pass role, whatever its user holds.
		p.Roles, p.Auth, p.PassID = []string{rolePass}, "pass", t.PassID
	case purposeEnrolment:
		// A redeemed enrolment code completes its one enrolment, nothing else.
		p.Roles, p.Auth, p.EnrolmentID = []string{roleEnrolment}, "enrolment_code", t.EnrolmentID
	default:
		p.Roles = slices.DeleteFunc(slices.Clone(t.Roles), func(r string) bool { return !slices.Contains(u.Roles, r) })
		if t.ParentID != "" {
			p.Auth = "breakglass_grant"
		}
	}
	return p
}

// renewHint says how to get a working token again.
func renewHint(t Token) string {
	switch t.Purpose {
	case purposePass:
		return "ask the helpdesk for a new pass"
	case purposeEnrolment:
		return "ask for a new enrolment code"
	case purposeBreakGlass:
		return "a break-glass session cannot be renewed"
	}
	return "sign in again with your key (keyfleet login), or ask an administrator for a service account's new token"
}

// issuerState checks that what granted t still stands: its pass (not
// revoked, used up or expired, and its recovery case still confirmed), its
// enrolment (still open) or its break-glass session (still running). It
// returns the refusal as the first value, and a store error as the second.
func (s *Service) issuerState(tx ReadTx, t Token, now time.Time) (error, error) {
	dead := func(why string) error {
		return fmt.Errorf("%w: token %s %s; %s", ErrTokenRevoked, t.ID, why, renewHint(t))
	}
	switch {
	case t.Purpose == purposePass:
		pass, err := tx.AccessPass(t.PassID)
		if isNotFound(err) {
			return dead("belongs to a pass that no longer exists"), nil
		}
		if err != nil {
			return nil, err
		}
		if pass.RevokedAt != nil || !now.Before(pass.ExpiresAt) {
			return dead("belongs to a pass that was revoked, replaced or expired"), nil
		}
		if pass.CaseID == "" {
			return nil, nil
		}
		c, err := tx.RecoveryCase(pass.CaseID)
		if err != nil && !isNotFound(err) {
			return nil, err
		}
		if err != nil || c.stateAt(now) != api.CaseConfirmed {
			return dead("belongs to recovery case " + pass.CaseID + ", which is no longer open (cancelled, expired or closed)"), nil
		}
	case t.Purpose == purposeEnrolment:
		e, err := tx.Enrolment(t.EnrolmentID)
		if err != nil && !isNotFound(err) {
			return nil, err
		}
		if err != nil || e.stateAt(now) != api.EnrolmentOpen {
			return dead("belongs to an enrolment that is no longer open"), nil
		}
	case t.ParentID != "":
		parent, err := tx.Token(t.ParentID)
		if err != nil && !isNotFound(err) {
			return nil, err
		}
		if err != nil || parent.RevokedAt != nil || (parent.ExpiresAt != nil && !now.Before(*parent.ExpiresAt)) {
			return dead("was made in a break-glass session that has ended"), nil
		}
	}
	return nil, nil
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

// CreateToken mints an API token. Nobody mints a token that acts as
// another person: a person's token is made by that person (in.User empty
// or their own), with a fresh proof of one of their own security keys
// bound to the token's name, roles and lifetime, and it expires
// (Config.PersonTokenTTL, at most MaxPersonTokenTTL). Administrators make
// tokens for service accounts, which can never approve, grant or recover;
// each such token is a high-severity event. A token made in a break-glass
// session ends with it. The secret is returned once. Errors:
// *ValidationError, *ForbiddenError, *ProofError.
func (s *Service) CreateToken(ctx context.Context, p Principal, in api.CreateToken) (Token, string, error) {
	if err := validTokenName(in.Name); err != nil {
		return Token{}, "", err
	}
	if in.User == "" {
		in.User = p.UserID
	}
	var u User
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		u, err = lookupUser(tx, in.User)
		return err
	})
	if err != nil {
		return Token{}, "", err
	}
	var receipt proofReceipt
	switch {
	case u.Kind == api.KindService:
		if err := p.authorize(CreateTokens, ""); err != nil {
			return Token{}, "", err
		}
	case p.isSystem():
		// The daemon itself (keyfleetd init, test kits); no request acts
		// as it.
	case u.ID == p.UserID && p.person() && p.PassID == "" && p.EnrolmentID == "":
		if receipt, err = s.prove(ctx, p, tokenBinding(proof.TokenCreate, u.ID, in)); err != nil {
			return Token{}, "", err
		}
	default:
		err := &ForbiddenError{Principal: p.Username, Action: CreateTokens,
			Reason: "a token that acts as a person is made by that person, after proving one of their own security keys (keyfleet login); administrators make tokens for service accounts only"}
		s.auditRefusal(ctx, p, "token.refused", userTarget(u), err)
		return Token{}, "", err
	}
	return s.issueToken(ctx, p, u, in, receipt)
}

// tokenBinding is what a proof for a new token is bound to.
func tokenBinding(action, userID string, in api.CreateToken) proof.Binding {
	return proof.Binding{Action: action, Subject: userID, Details: details("name", in.Name, "roles", joined(in.Roles), "ttl", in.TTL)}
}

// issueToken stores and audits a token for u that p may make.
func (s *Service) issueToken(ctx context.Context, p Principal, u User, in api.CreateToken, receipt proofReceipt) (Token, string, error) {
	ttl, err := s.tokenTTL(u, in.TTL)
	if err != nil {
		return Token{}, "", err
	}
	var t Token
	var secret string
	err = s.store.Update(ctx, func(tx Tx) error {
		u, err := tx.User(u.ID)
		if err != nil {
			return err
		}
		if u.Status != api.UserActive {
			return &TransitionError{Kind: "user", ID: u.Username, From: u.Status, Action: "make a token for", Hint: "enable the user first"}
		}
		roles, err := tokenRoles(u, in.Roles)
		if err != nil {
			return err
		}
		if t, secret, err = s.mintToken(u, in.Name, roles, ttl, p.UserID); err != nil {
			return err
		}
		s.boundBySession(&t, p)
		if err := tx.PutToken(t); err != nil {
			return err
		}
		ev := s.eventCtx(ctx, p, "")
		receipt.note(ev)
		if u.Kind == api.KindService {
			ev.privileged()
		}
		return ev.audit(tx, "token.create", targetRef{"token", t.ID, t.Name}, nil, tokenSummary(t))
	})
	return t, secret, err
}

// tokenTTL is a new token's lifetime: a person's defaults to and is capped
// by the configuration; a service account's is what is asked (none: no
// expiry).
func (s *Service) tokenTTL(u User, in string) (time.Duration, error) {
	var d time.Duration
	if in != "" {
		var err error
		if d, err = time.ParseDuration(in); err != nil || d < time.Minute {
			return 0, invalid("ttl", "%q must be a duration of at least 1m, like 8h", in)
		}
	}
	if u.Kind == api.KindService {
		return d, nil
	}
	if d == 0 {
		return s.cfg.PersonTokenTTL, nil
	}
	if d > s.cfg.MaxPersonTokenTTL {
		return 0, invalid("ttl", "%s is longer than a person's token may live (tokens.max_person_ttl, %s); sign in again when it ends", in, s.cfg.MaxPersonTokenTTL)
	}
	return d, nil
}

// boundBySession makes a token made in a break-glass session end with it.
func (s *Service) boundBySession(t *Token, p Principal) {
	if !p.breakGlass() {
		return
	}
	t.ParentID = p.TokenID
	end := s.now().Add(s.cfg.BreakGlassMax)
	if p.sessionEnds != nil {
		end = *p.sessionEnds
	}
	if t.ExpiresAt == nil || t.ExpiresAt.After(end) {
		t.ExpiresAt = &end
	}
}

// BeginLogin starts a person's sign-in from the command line: a proof
// challenge for their own security keys, bound to the token the login
// will make. It needs no token. Errors: ErrNoUsableFactor for an unknown,
// disabled or key-less user alike (a guess learns nothing), ErrLocked.
func (s *Service) BeginLogin(ctx context.Context, in api.LoginBegin) (api.ProofChallenge, error) {
	u, err := s.loginUser(ctx, in.Username)
	if err != nil {
		return api.ProofChallenge{}, err
	}
	ch, err := s.beginBound(ctx, u.ID, u.ID, tokenBinding(proof.TokenLogin, u.ID, loginToken(in)))
	if errors.Is(err, ErrNoUsableFactor) || errors.Is(err, ErrLocked) || errors.Is(err, ErrForbidden) {
		// A user with no key, or locked, reads as one who does not exist:
		// the route needs no token, so it must not tell names apart.
		return api.ProofChallenge{}, errNoLogin
	}
	return ch, err
}

func loginToken(in api.LoginBegin) api.CreateToken {
	if in.Name == "" {
		in.Name = "login"
	}
	return api.CreateToken{Name: in.Name, Roles: in.Roles, TTL: in.TTL}
}

var errNoLogin = fmt.Errorf("%w: no security key is registered for that username, or sign-in is not possible now; check the name, or enrol a key first", ErrNoUsableFactor)

func (s *Service) loginUser(ctx context.Context, username string) (User, error) {
	var u User
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		u, err = tx.UserByName(username)
		return err
	})
	if err != nil && !isNotFound(err) {
		return User{}, err
	}
	if err != nil || u.Kind != api.KindPerson || u.Status != api.UserActive {
		return User{}, errNoLogin
	}
	return u, nil
}

// Login finishes a sign-in: the proof answers BeginLogin's challenge, and
// the person gets a token of their own. Errors: as BeginLogin, and
// *ProofError.
func (s *Service) Login(ctx context.Context, in api.Login, pr *api.Proof) (Token, string, error) {
	u, err := s.loginUser(ctx, in.Username)
	if errors.Is(err, errNoLogin) {
		// As a wrong proof for a real user reads, so a guess learns nothing.
		return Token{}, "", &ProofError{Action: proof.TokenLogin, Reason: "the proof is not one keyfleetd issued for an action"}
	}
	if err != nil {
		return Token{}, "", err
	}
	ct := loginToken(in)
	if err := validTokenName(ct.Name); err != nil {
		return Token{}, "", err
	}
	p := Principal{UserID: u.ID, Username: u.Username, Roles: u.Roles, Auth: "key", Proof: pr}
	receipt, err := s.prove(ctx, p, tokenBinding(proof.TokenLogin, u.ID, ct))
	if err != nil {
		return Token{}, "", err
	}
	return s.issueToken(ctx, p, u, ct, receipt)
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
