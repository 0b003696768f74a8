package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/daemon/clientaddr"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/policy"
)

// Push sign-in: a person who holds no security key, only a push
// companion, signs in to their own pages with a push they approve on the
// companion (picking the number this page shows) and the second check
// the policy names for it (core.BeginPushSignIn). Like an app session it
// reaches the self-service pages only, and since a push proves no action,
// nothing there that needs a proof.

// purposePushSignIn is a begun push sign-in in the session.
const purposePushSignIn = "push-signin"

type pushSignInPage struct {
	Username string
	// On is false when the policy does not allow push sign-in, or this
	// keyfleetd has no push kind.
	On bool
}

func (h *handler) signInPushPage(rq *request) error {
	if rq.sess.SignedIn() {
		http.Redirect(rq.w, rq.r, "/", http.StatusSeeOther)
		return nil
	}
	if rq.fresh {
		h.issue(rq)
	}
	on, err := h.pushSignInOn(rq)
	if err != nil {
		return err
	}
	h.render(rq, http.StatusOK, "signin_push", "Sign in with a push", pushSignInPage{Username: rq.r.URL.Query().Get("user"), On: on})
	return nil
}

func (h *handler) pushSignInOn(rq *request) (bool, error) {
	if !h.pushEnabled() {
		return false, nil
	}
	checks, err := h.svc.PushSignInChecks(rq.ctx)
	return slices.Contains(checks, policy.SecondCheckRecoveryCode), err
}

// errPushRefused is every refused push sign-in: a wrong recovery code, a
// denied or unanswered push, someone with a key, an unknown name read
// the same.
var errPushRefused = &pageError{Status: http.StatusUnauthorized, Msg: "That sign-in was not accepted. Check the username and type an unused recovery code, then pick the number this page shows on your companion. " +
	"If you have a security key, sign in with it instead. After several failures sign-in is locked for a while."}

type pushSignInBegin struct {
	Username     string `json:"username"`
	RecoveryCode string `json:"recovery_code"`
}

// pushChoice is what the page shows for one companion: pick Number on
// Device.
type pushChoice struct {
	Device string `json:"device"`
	Number string `json:"number"`
}

// pushSignInBegin checks the recovery code and sends the pushes; the
// session keeps which verification this browser waits for.
func (h *handler) pushSignInBegin(rq *request) error {
	var in pushSignInBegin
	if err := readJSON(rq, &in); err != nil {
		return err
	}
	in.Username, in.RecoveryCode = strings.TrimSpace(in.Username), strings.TrimSpace(in.RecoveryCode)
	if in.Username == "" || in.RecoveryCode == "" {
		return &pageError{Status: http.StatusBadRequest, Msg: "Enter your username and one of your recovery codes."}
	}
	if dec := h.cfg.Limiter.Allow(clientaddr.Of(rq.r), ""); !dec.OK {
		return tooMany(rq, dec)
	}
	rq.sess.Pending = nil
	v, err := h.svc.BeginPushSignIn(rq.ctx, agent, core.PushSignInRequest{User: in.Username, Kinds: []string{pushKind},
		Check: policy.SecondCheckRecoveryCode, Code: in.RecoveryCode, Address: clientaddr.Of(rq.r)})
	if err != nil {
		return pushRefusal(err)
	}
	pend := &Pending{Purpose: purposePushSignIn, UserID: v.UserID, VerifyID: v.ID, Expires: v.ExpiresAt}
	choices := []pushChoice{}
	for _, f := range v.Factors {
		var c pushChoice
		if !f.OutOfBand || json.Unmarshal(f.Prompt, &c) != nil {
			continue
		}
		pend.FactorIDs, choices = append(pend.FactorIDs, f.FactorID), append(choices, c)
	}
	rq.sess.Pending = pend
	writeJSON(rq.w, http.StatusOK, map[string]any{"choices": choices, "expires": v.ExpiresAt})
	return nil
}

// pushRefusal turns a refused begin or finish into the page's words.
func pushRefusal(err error) error {
	switch {
	case errors.Is(err, core.ErrUnauthenticated):
		return errPushRefused
	case errors.Is(err, core.ErrTooMany):
		return &pageError{Status: http.StatusTooManyRequests, Msg: "You were sent too many pushes lately. Wait a few minutes, then try again."}
	}
	return err
}

type pushSignInFinish struct {
	RecoveryCode string `json:"recovery_code"`
}

// pushWait is how long one finish waits for a companion's answer before
// the page asks again; short enough for a proxy's idle timeout. (A
// variable for the tests.)
var pushWait = 15 * time.Second

// pushSignInFinish asks whether a companion answered the push this
// session sent; approved, it signs the person in under a new session id.
// The first answer that is not an approval ends the sign-in.
func (h *handler) pushSignInFinish(rq *request) error {
	var in pushSignInFinish
	if err := readJSON(rq, &in); err != nil {
		return err
	}
	pend := rq.sess.Pending
	if pend == nil || pend.Purpose != purposePushSignIn || !h.now().Before(pend.Expires) || len(pend.FactorIDs) == 0 {
		rq.sess.Pending = nil
		return &pageError{Status: http.StatusConflict, Msg: "That sign-in has expired or was already used. Start again."}
	}
	wait := "0s"
	if len(pend.FactorIDs) == 1 {
		wait = pushWait.String()
	}
	for _, id := range pend.FactorIDs {
		res, err := h.svc.FinishPushSignIn(rq.ctx, agent, core.PushSignInFinish{UserID: pend.UserID, VerificationID: pend.VerifyID, FactorID: id,
			Check: policy.SecondCheckRecoveryCode, Code: strings.TrimSpace(in.RecoveryCode), Wait: wait})
		if err != nil {
			rq.sess.Pending = nil
			return pushRefusal(err)
		}
		if !res.Pending {
			return h.pushSignedIn(rq, res)
		}
	}
	writeJSON(rq.w, http.StatusAccepted, map[string]bool{"pending": true})
	return nil
}

// pushSignedIn opens the self-service session of a push sign-in.
func (h *handler) pushSignedIn(rq *request, res core.PushSignInResult) error {
	now := h.now()
	rq.sess = Session{UserID: res.User.ID, Username: res.User.Username, CSRF: randomToken(), Created: now, LastSeen: now, Method: methodPush}
	h.issue(rq)
	rq.sess.Flash = keylessSignedIn("with a push", res.Left)
	h.log.Info("web push sign-in", "user", res.User.Username, "request_id", rq.id)
	writeJSON(rq.w, http.StatusOK, map[string]string{"redirect": "/me"})
	return nil
}
