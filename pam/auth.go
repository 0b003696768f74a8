package pam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
)

// Result is what the module returns to PAM, by name (pam/module maps it).
type Result string

// Results.
const (
	Success         Result = "success"
	AuthErr         Result = "auth_err"
	AuthInfoUnavail Result = "authinfo_unavail"
	UserUnknown     Result = "user_unknown"
)

// Login is who signs in, as PAM knows it.
type Login struct {
	User, Service, RHost, TTY string
}

// Keyfleet is what the helper asks keyfleetd: *client.Client.
type Keyfleet interface {
	MFAStatus(ctx context.Context, user string) (api.MFAStatus, error)
	BeginVerify(ctx context.Context, in api.BeginVerify) (api.Verification, error)
	FinishVerify(ctx context.Context, in api.FinishVerify) (api.VerifyResult, error)
	FirstLoginPass(ctx context.Context, user string) (api.FirstLoginPass, error)
	RecordLoginDecision(ctx context.Context, in api.LoginDecision) (api.LoginDecision, error)
}

var _ Keyfleet = (*client.Client)(nil)

// Conversation is the PAM conversation: prompts and messages for the
// person signing in.
type Conversation interface {
	Prompt(echo bool, text string) (string, error)
	Info(text string) error
	Error(text string) error
}

// InGroup reports whether a Unix user is a member of a group.
type InGroup func(user, group string) (bool, error)

// Authenticator decides one sign-in.
type Authenticator struct {
	Config  Config
	Client  Keyfleet
	Conv    Conversation
	InGroup InGroup
	Log     *slog.Logger
	// Host is this machine's name, shown with a push ("sshd on web01").
	Host string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Spool keeps the records of decisions keyfleetd cannot take now;
	// nil keeps none (they are in syslog only).
	Spool *Spool
}

func (a *Authenticator) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// Authenticate asks keyfleetd about the user and, when they have a factor
// that can answer here, asks for it: a code is checked, a push is sent
// and its answer awaited. A user whom
// the policy does not ask for a factor yet is let in (told the deadline
// when there is one); a user past the deadline is refused with what to
// do. When keyfleetd cannot answer, the sign-in is refused unless the user
// is in a fallback group. Every decision is recorded in keyfleetd's audit
// trail (see record).
func (a *Authenticator) Authenticate(ctx context.Context, in Login) Result {
	log := a.Log.With("user", in.User, "service", in.Service, "rhost", in.RHost)
	st, err := a.status(ctx, in.User)
	if err == nil || client.IsNotFound(err) {
		a.flush(ctx, log) // keyfleetd answers: send what waited for it first
	}
	switch {
	case client.IsNotFound(err) && a.Config.AllowUnknown:
		log.Info("keyfleet does not know the user; let in (allow_unknown)")
		a.record(ctx, log, in, api.LoginAllowed, "allow_unknown")
		return Success
	case client.IsNotFound(err):
		log.Info("keyfleet does not know the user; refused")
		a.record(ctx, log, in, api.LoginRefused, "unknown_user")
		a.Conv.Error("Sign-in refused: keyfleet does not know " + printable(in.User) + ". Ask IT to add you.")
		return UserUnknown
	case err != nil && cannotAnswer(err):
		return a.unreachable(ctx, log, in, err)
	case err != nil:
		log.Error("keyfleet refused to give the user's status", "err", err)
		a.record(ctx, log, in, api.LoginRefused, "status_refused")
		a.Conv.Error("Sign-in refused: keyfleet could not check " + printable(in.User) + ". Tell IT.")
		return AuthErr
	}
	if len(st.ActiveFactors) == 0 {
		return a.noFactor(ctx, log, in, st)
	}
	return a.verify(ctx, log, in, st)
}

// status asks keyfleetd for the user's MFA status within the timeout.
func (a *Authenticator) status(ctx context.Context, user string) (api.MFAStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, a.Config.Timeout)
	defer cancel()
	return a.Client.MFAStatus(ctx, user)
}

// cannotAnswer reports whether err means keyfleetd could not decide for
// this host: it is down or unreachable, overloaded, failing, or refuses
// the host's token.
func cannotAnswer(err error) bool {
	return client.IsUnreachable(err) || errors.Is(err, context.DeadlineExceeded) || client.IsUnauthenticated(err) ||
		client.IsForbidden(err) || client.IsProblem(err, client.SlugUnavailable, client.SlugInternal, "conflict") ||
		client.Slug(err) == ""
}

// unreachable fails closed, unless the user is in a fallback group. The
// decision is kept in the spool, for keyfleetd's audit trail once it
// answers again.
func (a *Authenticator) unreachable(_ context.Context, log *slog.Logger, in Login, err error) Result {
	for _, g := range a.Config.FallbackGroups {
		if ok, gerr := a.InGroup(in.User, g); gerr == nil && ok {
			log.Warn("keyfleet cannot answer; let in without a second factor as a member of a fallback group", "group", g, "err", err)
			a.keep(log, a.decision(in, api.LoginAllowed, "fallback_group"), err)
			a.Conv.Info("keyfleet cannot be reached: you are signed in without a second factor as a member of " + g + ". This is logged.")
			return Success
		}
	}
	log.Error("keyfleet cannot answer; refused (fail closed)", "err", err)
	a.keep(log, a.decision(in, api.LoginRefused, "keyfleet_unreachable"), err)
	a.Conv.Error("Sign-in refused: keyfleet cannot be reached to check your second factor. Try again in a few minutes; if it goes on, tell IT.")
	return AuthInfoUnavail
}

// noFactor lets in a user the policy does not ask for a factor yet, and
// refuses one past the deadline, with how to enrol.
func (a *Authenticator) noFactor(ctx context.Context, log *slog.Logger, in Login, st api.MFAStatus) Result {
	steps := strings.Join(st.NextSteps, " ")
	switch {
	case !st.MustEnrol:
		log.Info("no factor, none required yet; let in", "status", st.Status)
		a.record(ctx, log, in, api.LoginAllowed, "not_required")
		return Success
	case st.Status == "grace":
		log.Info("no factor, within the enrolment deadline; let in", "grace_until", st.GraceUntil)
		a.record(ctx, log, in, api.LoginAllowed, "grace")
		a.Conv.Info(strings.TrimSpace("Enrol a second factor before " + when(st.GraceUntil) + ". " + steps + " " + a.firstLogin(ctx, log, in)))
		return Success
	}
	log.Info("no factor and past the enrolment deadline; refused", "status", st.Status)
	a.record(ctx, log, in, api.LoginRefused, "must_enrol")
	a.Conv.Error(strings.TrimSpace("Sign-in refused: you must enrol a second factor first. " + steps + " " + a.firstLogin(ctx, log, in)))
	return AuthErr
}

// firstLogin asks for a first-login pass when configured and says how to
// use it; otherwise it says whom to ask.
func (a *Authenticator) firstLogin(ctx context.Context, log *slog.Logger, in Login) string {
	const ask = "Ask the helpdesk for an access pass to enrol one."
	if !a.Config.FirstLogin {
		return ask
	}
	ctx, cancel := context.WithTimeout(ctx, a.Config.Timeout)
	defer cancel()
	pass, err := a.Client.FirstLoginPass(ctx, in.User)
	if err != nil {
		log.Warn("no first-login pass", "err", err)
		return ask
	}
	where := pass.WelcomeURL
	if where == "" {
		where = "keyfleet's welcome page"
	}
	log.Info("first-login pass issued", "pass_id", pass.PassID)
	return fmt.Sprintf("To enrol, open %s and enter the access pass %s (single use, valid until %s).", where, pass.Code, when(&pass.ExpiresAt))
}

// refused explains what keyfleetd refused during a verification.
func (a *Authenticator) refused(ctx context.Context, log *slog.Logger, in Login, st api.MFAStatus, err error) Result {
	switch slug := client.Slug(err); {
	case slug == "locked":
		msg := "Sign-in refused: too many wrong codes. Wait, or ask the helpdesk to unlock you."
		if st.LockedUntil != nil {
			msg = "Sign-in refused: too many wrong codes; locked until " + when(st.LockedUntil) + ". Wait, or ask the helpdesk to unlock you."
		}
		log.Info("locked; refused")
		a.record(ctx, log, in, api.LoginRefused, "locked")
		a.Conv.Error(msg)
		return AuthErr
	case slug == "no-usable-factor" || slug == client.SlugPolicyViolation || slug == client.SlugIllegalTransition:
		log.Info("keyfleet refused the verification", "problem", slug, "err", err)
		a.record(ctx, log, in, api.LoginRefused, "no_usable_factor")
		a.Conv.Error("Sign-in refused: none of your factors can be used now (suspended, locked or not allowed by the policy). Ask the helpdesk.")
		return AuthErr
	case cannotAnswer(err):
		return a.unreachable(ctx, log, in, err)
	}
	log.Error("keyfleet refused the verification", "err", err)
	a.record(ctx, log, in, api.LoginRefused, "verify_refused")
	a.Conv.Error("Sign-in refused: keyfleet could not check your second factor. Tell IT.")
	return AuthErr
}

// describe names a factor for its owner, with nothing a terminal would
// act on (the label is the user's own text).
func describe(f api.VerificationFactor) string {
	if f.Label == "" {
		return f.Kind
	}
	return printable(f.Label) + " (" + f.Kind + ")"
}

func printable(s string) string { return clean(s, 64) }

// clean drops what is not printable from s and keeps at most n runes.
func clean(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, s)
	if r := []rune(s); len(r) > n {
		s = string(r[:n])
	}
	return s
}

// when writes a time for a person, in UTC.
func when(t *time.Time) string {
	if t == nil {
		return "the deadline"
	}
	return t.UTC().Format("15:04 UTC on 2 Jan 2006")
}
