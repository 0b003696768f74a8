package pam

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
)

// pushPrompt is what keyfleetd says to show for a push (plugins/push
// Prompt): the number to pick on the companion (none without number
// matching), the companion's name, and one sentence saying both.
type pushPrompt struct {
	Number  string `json:"number"`
	Device  string `json:"device"`
	Message string `json:"message"`
}

// Problem types of the push routes the helper explains.
const (
	slugRateLimited        = "rate-limited"
	slugVerificationClosed = "verification-closed"
)

// push sends a push to f, shows the user what to pick on their companion
// (PAM_TEXT_INFO, then a prompt to press Enter once they answered, which
// is also what makes OpenSSH show the message at once), and waits for
// the answer until the push's deadline or push_timeout, whichever is
// first.
func (a *Authenticator) push(ctx context.Context, log *slog.Logger, in Login, st api.MFAStatus, f api.Factor) Result {
	bctx, cancel := context.WithTimeout(ctx, a.Config.Timeout)
	v, err := a.Client.BeginVerify(bctx, api.BeginVerify{User: in.User, FactorID: f.ID, Application: a.application(in), Address: address(in.RHost)})
	cancel()
	if err != nil {
		return a.pushRefused(ctx, log, in, st, err)
	}
	i := slices.IndexFunc(v.Factors, func(x api.VerificationFactor) bool { return x.FactorID == f.ID && x.OutOfBand && x.Deadline != nil })
	if i < 0 {
		log.Error("keyfleet began the verification without sending the push", "factor_id", f.ID)
		a.record(ctx, log, in, api.LoginRefused, "push_not_sent")
		a.Conv.Error("Sign-in refused: keyfleet did not send the push. Tell IT.")
		return AuthErr
	}
	vf := v.Factors[i]
	deadline := *vf.Deadline
	if t := a.now().Add(a.Config.PushTimeout); a.Config.PushTimeout > 0 && t.Before(deadline) {
		deadline = t
	}
	var p pushPrompt
	_ = json.Unmarshal(vf.Prompt, &p)
	device := printable(firstOf(p.Device, f.Label, "your push companion"))
	msg := clean(p.Message, 200)
	if msg == "" {
		msg = "Approve the sign-in on " + device + "."
	}
	log.Info("push sent", "factor_id", f.ID, "number_matching", p.Number != "")
	a.Conv.Info("keyfleet sent a push to " + device + ". " + msg + " Answer by " + clock(deadline) + ".")
	if _, err := a.Conv.Prompt(true, "Press Enter once you have answered on "+device+": "); err != nil {
		return a.decline(ctx, log, in, "no_answer")
	}
	return a.awaitPush(ctx, log, in, st, v.ID, vf, deadline)
}

// awaitPush waits for the push's answer until deadline.
func (a *Authenticator) awaitPush(ctx context.Context, log *slog.Logger, in Login, st api.MFAStatus, id string, vf api.VerificationFactor, deadline time.Time) Result {
	wait := max(0, deadline.Sub(a.now())).Round(time.Millisecond)
	wctx, cancel := context.WithTimeout(ctx, wait+a.Config.Timeout)
	defer cancel()
	res, err := a.Client.FinishVerify(wctx, api.FinishVerify{ID: id, FactorID: vf.FactorID, Wait: wait.String()})
	late := !a.now().Add(time.Second).Before(*vf.Deadline) // the push ran out: keyfleetd closed it unanswered
	switch {
	case err == nil && res.OK:
		log.Info("push approved; second factor verified", "factor_id", vf.FactorID, "kind", vf.Kind)
		return Success
	case err == nil && (res.Pending || late), client.IsProblem(err, slugVerificationClosed):
		log.Info("no answer to the push in time; refused", "factor_id", vf.FactorID, "err", err)
		switch { // a push that ran out is recorded by keyfleetd (push.unanswered)
		case err != nil:
			a.record(ctx, log, in, api.LoginRefused, "push_closed") // keyfleetd restarted while it waited
		case !late:
			a.record(ctx, log, in, api.LoginRefused, "push_timeout")
		}
		a.Conv.Error("Sign-in refused: no answer to the push in time. Sign in again for a new push.")
		return AuthErr
	case err == nil:
		log.Info("the push was not approved; refused", "factor_id", vf.FactorID)
		a.Conv.Error("Sign-in refused: the push was not approved (a wrong number, Deny, or This wasn't me on the companion).")
		return AuthErr
	}
	return a.refused(ctx, log, in, st, err)
}

// pushRefused explains why keyfleetd sent no push.
func (a *Authenticator) pushRefused(ctx context.Context, log *slog.Logger, in Login, st api.MFAStatus, err error) Result {
	userLocked := st.LockedUntil != nil && a.now().Before(*st.LockedUntil)
	switch {
	case client.IsProblem(err, slugRateLimited):
		log.Info("too many pushes to the user; refused", "err", err)
		a.record(ctx, log, in, api.LoginRefused, "push_rate_limited")
		a.Conv.Error("Sign-in refused: too many pushes were sent to you recently. Wait a few minutes, then sign in again.")
		return AuthErr
	case client.IsProblem(err, client.SlugLocked) && !userLocked:
		log.Info("pushes to the user are locked; refused", "err", err)
		a.record(ctx, log, in, api.LoginRefused, "pushes_locked")
		a.Conv.Error("Sign-in refused: pushes to you are locked since you answered one with This wasn't me. Ask the helpdesk to unlock them.")
		return AuthErr
	}
	return a.refused(ctx, log, in, st, err)
}

// application is what the push says the sign-in is to: the PAM service
// on this host ("sshd on web01").
func (a *Authenticator) application(in Login) string {
	app := clean(in.Service, 40)
	if app == "" {
		app = "a sign-in"
	}
	if h := clean(a.Host, 50); h != "" {
		app += " on " + h
	}
	return app
}

// address is the sign-in's remote address when PAM knows it as an IP
// address (sshd does, unless UseDNS is on); keyfleetd takes no names.
func address(rhost string) string {
	if a, err := netip.ParseAddr(rhost); err == nil {
		return a.String()
	}
	return ""
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// clock writes a time of day for a person, in UTC.
func clock(t time.Time) string { return t.UTC().Format("15:04:05 UTC") }
