package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/keyfleet/keyfleet/daemon/clientaddr"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/policy"
)

// App sign-in: a person with no security key signs in to their own pages
// with their authenticator app's code and the second check the policy
// names (core.AppSignIn). The session it opens reaches the self-service
// pages only: the dashboard takes security keys (errKeyOnly).

type appSignInPage struct {
	Username string
	// On is false when the policy does not allow app sign-in.
	On     bool
	Checks []string
	Error  string
}

func (h *handler) appSignInForm(rq *request, status int, d appSignInPage) error {
	checks, err := h.svc.AppSignInChecks(rq.ctx)
	if err != nil {
		return err
	}
	d.Checks, d.On = checks, slices.Contains(checks, policy.SecondCheckRecoveryCode)
	h.render(rq, status, "signin_app", "Sign in with your authenticator app", d)
	return nil
}

func (h *handler) signInAppPage(rq *request) error {
	if rq.sess.SignedIn() {
		http.Redirect(rq.w, rq.r, "/", http.StatusSeeOther)
		return nil
	}
	if rq.fresh {
		h.issue(rq)
	}
	return h.appSignInForm(rq, http.StatusOK, appSignInPage{Username: rq.r.URL.Query().Get("user")})
}

// errAppRefused is every refused app sign-in: wrong codes, a used
// recovery code, someone with a key, an unknown name read the same.
const errAppRefused = "Those codes were not accepted. Check the username, type the code your app shows now and an unused recovery code. " +
	"If you have a security key, sign in with it instead. After several failures sign-in is locked for a while."

// signInApp checks the codes and opens a self-service session under a
// new session id.
func (h *handler) signInApp(rq *request) error {
	name := strings.TrimSpace(rq.r.PostFormValue("username"))
	code := strings.TrimSpace(rq.r.PostFormValue("code"))
	second := strings.TrimSpace(rq.r.PostFormValue("recovery_code"))
	d := appSignInPage{Username: name}
	if name == "" || code == "" || second == "" {
		d.Error = "Enter your username, the code your app shows now, and one of your recovery codes."
		return h.appSignInForm(rq, http.StatusBadRequest, d)
	}
	if dec := h.cfg.Limiter.Allow(clientaddr.Of(rq.r), ""); !dec.OK {
		err := tooMany(rq, dec)
		_, d.Error = h.describe(rq, err)
		return h.appSignInForm(rq, http.StatusTooManyRequests, d)
	}
	resp, _ := json.Marshal(map[string]string{"code": code})
	u, left, err := h.svc.AppSignIn(rq.ctx, agent, core.AppSignInRequest{User: name, Kinds: []string{h.cfg.TOTPKind},
		Response: resp, Check: policy.SecondCheckRecoveryCode, Code: second})
	switch {
	case errors.Is(err, core.ErrUnavailable):
		return err
	case errors.Is(err, core.ErrLocked):
		d.Error = "Sign-in is locked for now after too many failures. Try again later, or ask your helpdesk."
		return h.appSignInForm(rq, http.StatusTooManyRequests, d)
	case err != nil:
		d.Error = errAppRefused
		return h.appSignInForm(rq, http.StatusUnauthorized, d)
	}
	now := h.now()
	rq.sess = Session{UserID: u.ID, Username: u.Username, CSRF: randomToken(), Created: now, LastSeen: now, Method: methodApp}
	h.issue(rq)
	rq.sess.Flash = appSignedIn(left)
	h.log.Info("web app sign-in", "user", u.Username, "request_id", rq.id)
	http.Redirect(rq.w, rq.r, "/me", http.StatusSeeOther)
	return nil
}

// appSignedIn is the message after an app sign-in: it used a recovery
// code, so it says how many are left and what to do when few are.
func appSignedIn(left int) string {
	msg := "You are signed in with your authenticator app. That used one recovery code: you have " + plural(left, "recovery code") + " left."
	if left <= 3 {
		msg += " Make new recovery codes below before they run out."
	}
	return msg
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
