package pam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
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
}

// Authenticate asks keyfleetd about the user and, when they have a factor
// that answers with a code, asks for the code and checks it. A user whom
// the policy does not ask for a factor yet is let in (told the deadline
// when there is one); a user past the deadline is refused with what to
// do. When keyfleetd cannot answer, the sign-in is refused unless the user
// is in a fallback group.
func (a *Authenticator) Authenticate(ctx context.Context, in Login) Result {
	log := a.Log.With("user", in.User, "service", in.Service, "rhost", in.RHost)
	st, err := a.status(ctx, in.User)
	switch {
	case client.IsNotFound(err) && a.Config.AllowUnknown:
		log.Info("keyfleet does not know the user; let in (allow_unknown)")
		return Success
	case client.IsNotFound(err):
		log.Info("keyfleet does not know the user; refused")
		a.Conv.Error("Sign-in refused: keyfleet does not know " + printable(in.User) + ". Ask IT to add you.")
		return UserUnknown
	case err != nil && cannotAnswer(err):
		return a.unreachable(ctx, log, in, err)
	case err != nil:
		log.Error("keyfleet refused to give the user's status", "err", err)
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

// unreachable fails closed, unless the user is in a fallback group.
func (a *Authenticator) unreachable(ctx context.Context, log *slog.Logger, in Login, err error) Result {
	for _, g := range a.Config.FallbackGroups {
		if ok, gerr := a.InGroup(in.User, g); gerr == nil && ok {
			log.Warn("keyfleet cannot answer; let in without a second factor as a member of a fallback group", "group", g, "err", err)
			a.Conv.Info("keyfleet cannot be reached: you are signed in without a second factor as a member of " + g + ". This is logged.")
			return Success
		}
	}
	log.Error("keyfleet cannot answer; refused (fail closed)", "err", err)
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
		return Success
	case st.Status == "grace":
		log.Info("no factor, within the enrolment deadline; let in", "grace_until", st.GraceUntil)
		a.Conv.Info(strings.TrimSpace("Enrol a second factor before " + when(st.GraceUntil) + ". " + steps + " " + a.firstLogin(ctx, log, in)))
		return Success
	}
	log.Info("no factor and past the enrolment deadline; refused", "status", st.Status)
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

// verify asks for a code from one of the user's factors and checks it.
func (a *Authenticator) verify(ctx context.Context, log *slog.Logger, in Login, st api.MFAStatus) Result {
	vctx, cancel := context.WithTimeout(ctx, a.Config.Timeout)
	v, err := a.Client.BeginVerify(vctx, api.BeginVerify{User: in.User})
	cancel()
	if err != nil {
		return a.refused(ctx, log, in, st, err)
	}
	codes := slices.DeleteFunc(slices.Clone(v.Factors), func(f api.VerificationFactor) bool { return !slices.Equal(f.Inputs, []string{"code"}) })
	if len(codes) == 0 {
		log.Info("no factor that answers with a code; refused")
		a.Conv.Error("Sign-in refused: your factors cannot answer a typed prompt. Enrol an authenticator app (TOTP) to sign in here.")
		return AuthErr
	}
	f, err := a.pick(codes)
	if err != nil {
		return AuthErr
	}
	code, err := a.Conv.Prompt(false, "keyfleet code from "+describe(f)+": ")
	if err != nil {
		return AuthErr
	}
	vctx, cancel = context.WithTimeout(ctx, a.Config.Timeout)
	defer cancel()
	body, _ := json.Marshal(map[string]string{"code": strings.TrimSpace(code)})
	res, err := a.Client.FinishVerify(vctx, api.FinishVerify{ID: v.ID, FactorID: f.FactorID, Response: body})
	switch {
	case err != nil:
		return a.refused(ctx, log, in, st, err)
	case !res.OK:
		log.Info("wrong code; refused", "factor_id", f.FactorID)
		a.Conv.Error("Sign-in refused: wrong code.")
		return AuthErr
	}
	log.Info("second factor verified", "factor_id", f.FactorID, "kind", f.Kind)
	return Success
}

// pick asks which factor answers when there are several.
func (a *Authenticator) pick(fs []api.VerificationFactor) (api.VerificationFactor, error) {
	if len(fs) == 1 {
		return fs[0], nil
	}
	var b strings.Builder
	b.WriteString("keyfleet: choose a factor:")
	for i, f := range fs {
		fmt.Fprintf(&b, " %d) %s", i+1, describe(f))
	}
	b.WriteString(". Number: ")
	got, err := a.Conv.Prompt(true, b.String())
	if err != nil {
		return api.VerificationFactor{}, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(got))
	if err != nil || n < 1 || n > len(fs) {
		a.Conv.Error(fmt.Sprintf("Sign-in refused: give a number from 1 to %d.", len(fs)))
		return api.VerificationFactor{}, errors.New("no such factor")
	}
	return fs[n-1], nil
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
		a.Conv.Error(msg)
		return AuthErr
	case slug == "no-usable-factor" || slug == client.SlugPolicyViolation || slug == client.SlugIllegalTransition:
		log.Info("keyfleet refused the verification", "problem", slug, "err", err)
		a.Conv.Error("Sign-in refused: none of your factors can be used now (suspended, locked or not allowed by the policy). Ask the helpdesk.")
		return AuthErr
	case cannotAnswer(err):
		return a.unreachable(ctx, log, in, err)
	}
	log.Error("keyfleet refused the verification", "err", err)
	a.Conv.Error("Sign-in refused: keyfleet could not check your code. Tell IT.")
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

func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, s)
	if r := []rune(s); len(r) > 64 {
		s = string(r[:64])
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
