package core

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/policy"
)

// Login surfaces ask for a second factor at sign-in: the RADIUS listener
// inside keyfleetd (daemon/radius) and the PAM module through the API.
// They check codes with CheckVerify like any application; what is here
// serves what a verification alone does not say: why a user cannot sign in
// (LoginState), decisions that end before any factor was checked
// (RecordLogin), and the first sign-in of a user who must enrol
// (IssueFirstLoginPass).

// LoginPrincipal is a login listener inside keyfleetd ("radius") acting
// for itself with the login_host role: it may verify users, read their MFA
// status, record login decisions and issue first-login passes, nothing
// else. Audit records name it as the actor, with Auth set
// to the listener's name.
func LoginPrincipal(listener string) Principal {
	return Principal{UserID: "listener:" + listener, Username: "keyfleetd-" + listener,
		Roles: []string{api.RoleLoginHost}, Auth: listener}
}

// addRequestExtra copies what a request said about its origin (a RADIUS
// client's NAS-Identifier and Calling-Station-Id, RequestInfo.Extra) into
// an audit event. The event's own extra fields, set after, win.
func (ri RequestInfo) addRequestExtra(ev *audit.Event) {
	if len(ri.Extra) == 0 {
		return
	}
	if ev.Extra == nil {
		ev.Extra = make(map[string]string, len(ri.Extra))
	}
	for k, v := range ri.Extra {
		ev.Extra[k] = v
	}
}

// LoginFactor is an active factor a user may sign in with: no secret.
type LoginFactor struct {
	ID, Kind, Label string
	// Inputs name what the kind's answer holds (["code"] for TOTP).
	Inputs      []string
	LockedUntil *time.Time
}

// TakesCode reports whether the factor is answered with a typed code alone.
func (f LoginFactor) TakesCode() bool { return slices.Equal(f.Inputs, []string{"code"}) }

// LoginState is what a login surface needs to explain a sign-in: the
// policy's answer for the user (as MFAStatus gives it), whether the user
// may sign in at all, the factors they may answer with, and what stands in
// the way of the others.
type LoginState struct {
	Username string
	Status   api.MFAStatus
	// Active is false for a disabled user.
	Active      bool
	LockedUntil *time.Time
	// Factors are the active factors of registered kinds that the policy
	// accepts for verification, locked ones included (see LockedUntil).
	Factors []LoginFactor
	// Suspended counts suspended factors; Refused lists the kinds of
	// active factors the policy does not accept for verification.
	Suspended int
	Refused   []string
}

// LoginState answers, for a login surface, what MFAStatus answers and
// which factors the user may sign in with. Like MFAStatus it records the
// rules that apply to the user for the first time. Errors: ErrNotFound,
// *ForbiddenError.
func (s *Service) LoginState(ctx context.Context, p Principal, ref string) (LoginState, error) {
	st, err := s.MFAStatus(ctx, p, ref)
	if err != nil {
		return LoginState{}, err
	}
	out := LoginState{Status: st}
	err = s.store.View(ctx, func(tx ReadTx) error {
		u, err := tx.User(st.UserID)
		if err != nil {
			return err
		}
		out.Username, out.Active, out.LockedUntil = u.Username, u.Status == api.UserActive, u.LockedUntil
		_, doc, err := s.currentPolicy(tx)
		if err != nil {
			return err
		}
		fa, err := tx.FirstApplied(u.ID)
		if err != nil {
			return err
		}
		now := s.now()
		return forEach(tx.Factors, FactorFilter{UserID: u.ID}, func(f Factor) error {
			s.addLoginFactor(&out, doc, u, f, fa, now)
			return nil
		})
	})
	return out, err
}

// addLoginFactor sorts a factor for a login surface; the policy's kinds
// are checked as verification checks them, grace honoured.
func (s *Service) addLoginFactor(out *LoginState, doc *policy.Document, u User, f Factor, fa map[string]time.Time, now time.Time) {
	k, ok := s.kinds[f.Kind]
	switch {
	case f.State == api.FactorSuspended:
		out.Suspended++
	case f.State != api.FactorActive || !ok:
	case policy.CheckVerificationOf(doc, policyUser(u), verifyingFactor(f), fa, now) != nil:
		out.Refused = append(out.Refused, f.Kind)
	default:
		lf := LoginFactor{ID: f.ID, Kind: f.Kind, Label: f.Label, LockedUntil: f.LockedUntil}
		for _, in := range k.info.VerifyInputs {
			lf.Inputs = append(lf.Inputs, in.Name)
		}
		out.Factors = append(out.Factors, lf)
	}
}

// CodeKinds are the registered kinds answered with a typed code alone
// (TOTP, HOTP), sorted: what a login prompt can ask for.
func (s *Service) CodeKinds() []string {
	var out []string
	for name, k := range s.kinds {
		if len(k.info.VerifyInputs) == 1 && k.info.VerifyInputs[0].Name == "code" {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Login outcomes RecordLogin audits (the action of the audit event).
const (
	// LoginRefused: the sign-in was refused before a factor was checked.
	LoginRefused = "login.refused"
	// LoginChallenged: the user was asked to pick or answer a factor.
	LoginChallenged = "login.challenge"
	// LoginAllowed: the user signed in without a factor, because the
	// policy does not require one of them yet.
	LoginAllowed = "login.allowed"
)

// LoginEvent is a login decision that no verification recorded.
type LoginEvent struct {
	// User is the name the person typed; it may name nobody.
	User    string
	Outcome string // LoginRefused, LoginChallenged or LoginAllowed
	// Reason is a short code (unknown_user, rate_limited, must_enrol…).
	Reason string
	// Count is how many decisions this record stands for when a surface
	// coalesces a flood (rate-limited requests); 0 or 1 means one.
	Count int
}

var loginReasonRE = regexp.MustCompile(`^[a-z0-9_]{1,48}$`)

// RecordLogin audits a login decision that ended before a verification
// (a verification audits itself): the actor is p, the target the user if
// they exist, else the name as typed (shortened, control characters
// dropped). The request's details (WithRequest) ride along. Errors:
// ErrInvalid, *ForbiddenError, ErrUnavailable.
func (s *Service) RecordLogin(ctx context.Context, p Principal, in LoginEvent) error {
	if err := p.authorize(RecordLogins, ""); err != nil {
		return err
	}
	if !slices.Contains([]string{LoginRefused, LoginChallenged, LoginAllowed}, in.Outcome) {
		return invalid("outcome", "%q is not a login outcome", in.Outcome)
	}
	if !loginReasonRE.MatchString(in.Reason) {
		return invalid("reason", "%q must be 1 to 48 of a-z, 0-9 and _", in.Reason)
	}
	return s.store.Update(ctx, func(tx Tx) error {
		target := targetRef{"user", "", typedName(in.User)}
		if in.User != "" {
			u, err := lookupUser(tx, in.User)
			if err == nil {
				target = userTarget(u)
			} else if !isNotFound(err) && !isInvalid(err) {
				return err
			}
		}
		ev := s.eventCtx(ctx, p, "")
		ev.extra = map[string]string{"reason": in.Reason}
		if in.Count > 1 {
			ev.extra["count"] = fmt.Sprint(in.Count)
		}
		return ev.audit(tx, in.Outcome, target, nil, nil)
	})
}

// typedName makes a name someone typed safe to keep in an audit record.
func typedName(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return -1
		}
		return r
	}, s)
	if r := []rune(s); len(r) > 64 {
		s = string(r[:64]) + "…"
	}
	return s
}

// IssueFirstLoginPass issues a temporary access pass to a user who tried
// to sign in with no factor while the policy says they must enrol, so the
// first sign-in leads to enrolment (the pass is redeemed at /welcome or
// with keyfleet-agent enroll). A login surface calls it for a user whose
// first factor (a directory password, an SSH key) it checked, and only
// when the operator enabled first-login passes. The user must be an active
// person with no role beyond "user" (an administrator issues staff their
// first pass) and no factor that is not revoked. A user's previous
// first-login pass from this keyfleetd is revoked, so one works at a time.
// The code is returned once. Errors: *TransitionError (not eligible),
// ErrInvalid (ttl), ErrNotFound, *ForbiddenError.
func (s *Service) IssueFirstLoginPass(ctx context.Context, p Principal, ref string, ttl time.Duration) (api.IssuedPass, error) {
	if err := p.authorize(IssueFirstLoginPasses, ""); err != nil {
		return api.IssuedPass{}, err
	}
	if ttl < passMinTTL || ttl > passMaxTTL {
		return api.IssuedPass{}, invalid("ttl", "%s must be from %s to %s", ttl, passMinTTL, passMaxTTL)
	}
	code, err := s.newPassCode()
	if err != nil {
		return api.IssuedPass{}, err
	}
	var out api.IssuedPass
	err = s.store.Update(ctx, func(tx Tx) error {
		u, err := s.firstLoginUser(tx, ref)
		if err != nil {
			return err
		}
		if err := s.replacePass(tx, s.firstLogin.last(u.ID)); err != nil && !isNotFound(err) {
			return err
		}
		now := s.now()
		pass := AccessPass{ID: newID(prefixPass, now, s.cfg.Rand), UserID: u.ID, Hash: passHash(code), CreatedBy: p.Actor(),
			CreatedAt: now, ExpiresAt: now.Add(ttl), UsesLeft: 1}
		if err := tx.PutAccessPass(pass); err != nil {
			return err
		}
		out = api.IssuedPass{PassID: pass.ID, Code: code, UserID: u.ID, ExpiresAt: pass.ExpiresAt, Uses: 1}
		ev := s.eventCtx(ctx, p, "")
		ev.extra = map[string]string{"pass_id": pass.ID, "purpose": "first_login"}
		return ev.audit(tx, "pass.issue", userTarget(u), nil, map[string]any{"expires_at": pass.ExpiresAt, "uses": 1})
	})
	if err == nil {
		s.firstLogin.set(out.UserID, out.PassID)
	}
	return out, err
}

// firstLoginUser finds the user a first-login pass is for and checks they
// may have one.
func (s *Service) firstLoginUser(tx Tx, ref string) (User, error) {
	u, err := lookupUser(tx, ref)
	if err != nil {
		return u, err
	}
	refuse := func(from, hint string) error {
		return &TransitionError{Kind: "user", ID: u.Username, From: from, Action: "issue a first-login pass for", Hint: hint}
	}
	if u.Status != api.UserActive || u.Kind == api.KindService {
		return u, refuse(u.Status+" "+u.Kind, "only an active person enrols factors")
	}
	if slices.ContainsFunc(u.Roles, func(r string) bool { return r != api.RoleUser }) {
		return u, refuse("staff", "an administrator issues the first pass of an account with roles ("+strings.Join(u.Roles, ", ")+")")
	}
	e, err := s.evaluateUser(tx, u, s.now())
	if err != nil {
		return u, err
	}
	for _, f := range e.subject.Factors {
		if f.State != api.FactorRevoked {
			return u, refuse("enrolled", "the user has a factor; a lost one is a recovery case for the helpdesk")
		}
	}
	if !e.decision.MustEnrol {
		return u, refuse(string(e.decision.Status), "the policy does not ask this user to enrol")
	}
	return u, nil
}

// firstLoginPasses remembers the last first-login pass issued to each
// user, to revoke it when another is issued. It is bounded: past maxNoted
// users it starts afresh (older passes then simply expire). The zero value
// is ready.
type firstLoginPasses struct {
	mu sync.Mutex
	m  map[string]string
}

func (f *firstLoginPasses) last(userID string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m[userID]
}

func (f *firstLoginPasses) set(userID, passID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil || len(f.m) >= maxNoted {
		f.m = map[string]string{}
	}
	f.m[userID] = passID
}
