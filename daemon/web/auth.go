package web

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// agent is the pages acting before anyone has signed in: it begins and
// finishes the WebAuthn verification that signs a user in. It holds only
// the service role (verify, MFA status) and is named in the audit trail.
var agent = core.Principal{UserID: "keyfleetd-web", Username: "keyfleetd-web", Roles: []string{api.RoleService}, Auth: "system"}

// keyChallenge is one factor the browser may answer with.
type keyChallenge struct {
	FactorID string          `json:"factor_id"`
	Label    string          `json:"label"`
	Options  json.RawMessage `json:"options"`
}

type keyAnswer struct {
	FactorID   string          `json:"factor_id"`
	Credential json.RawMessage `json:"credential"`
}

var errNoKey = &pageError{Status: http.StatusBadRequest,
	Msg: "No security key is registered for that username, or sign-in is locked for now. Check the name; on your first sign-in, use the enrolment code from your administrator."}

var errKeyRefused = &pageError{Status: http.StatusUnauthorized,
	Msg: "The key's answer was not accepted. Try again with a key registered to you; after several failures sign-in is locked for a while."}

func (h *handler) signInPage(rq *request) error {
	if rq.sess.SignedIn() {
		http.Redirect(rq.w, rq.r, "/", http.StatusSeeOther)
		return nil
	}
	if rq.fresh {
		h.issue(rq)
	}
	h.render(rq, http.StatusOK, "signin", "Sign in", map[string]string{"Username": rq.r.URL.Query().Get("user")})
	return nil
}

// beginKey starts a verification of a user's keys for sign-in or step-up
// and remembers it in the session.
func (h *handler) beginKey(rq *request, user, purpose string) error {
	v, err := h.svc.BeginVerify(rq.ctx, agent, api.BeginVerify{User: user, Kinds: []string{h.cfg.KeyKind}})
	if err != nil {
		if errors.Is(err, core.ErrUnavailable) {
			return err
		}
		return errNoKey
	}
	pend := &Pending{Purpose: purpose, UserID: v.UserID, VerifyID: v.ID, Expires: v.ExpiresAt}
	out := []keyChallenge{}
	for _, f := range v.Factors {
		pend.FactorIDs = append(pend.FactorIDs, f.FactorID)
		out = append(out, keyChallenge{FactorID: f.FactorID, Label: f.Label, Options: f.Prompt})
	}
	rq.sess.Pending = pend
	answer := map[string]any{"factors": out}
	if opts, creds, ok := mergeRequests(out); ok {
		answer["options"], answer["credentials"] = opts, creds
	}
	writeJSON(rq.w, http.StatusOK, answer)
	return nil
}

// mergeRequests makes one WebAuthn request for a user's several keys, so
// the browser asks once and whichever key is present answers: the
// allowCredentials of every factor, and a map from credential id to
// factor. It works only when the factors share one challenge; core
// draws a challenge per factor today, so then (false) the user picks a
// key, and each has its own ceremony (WebAuthn §5.5).
func mergeRequests(fs []keyChallenge) (api.FIDO2RequestOptions, map[string]string, bool) {
	if len(fs) < 2 {
		return api.FIDO2RequestOptions{}, nil, false
	}
	var out api.FIDO2RequestOptions
	creds := map[string]string{}
	for i, f := range fs {
		var o api.FIDO2RequestOptions
		if json.Unmarshal(f.Options, &o) != nil || len(o.AllowCredentials) == 0 {
			return api.FIDO2RequestOptions{}, nil, false
		}
		if i == 0 {
			out = api.FIDO2RequestOptions{Challenge: o.Challenge, RPID: o.RPID, UserVerification: o.UserVerification}
		} else if !bytes.Equal(o.Challenge, out.Challenge) || o.RPID != out.RPID {
			return api.FIDO2RequestOptions{}, nil, false
		}
		out.Timeout = max(out.Timeout, o.Timeout)
		out.UserVerification = stricterUV(out.UserVerification, o.UserVerification)
		for _, c := range o.AllowCredentials {
			creds[base64.RawURLEncoding.EncodeToString(c.ID)] = f.FactorID
			out.AllowCredentials = append(out.AllowCredentials, c)
		}
	}
	return out, creds, true
}

// stricterUV is the stricter of two userVerification requirements.
func stricterUV(a, b string) string {
	rank := map[string]int{"discouraged": 0, "": 1, "preferred": 1, "required": 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// finishKey checks the browser's answer to the pending verification. The
// pending verification is used up whatever the outcome.
func (h *handler) finishKey(rq *request, purpose string) (string, error) {
	var in keyAnswer
	if err := readJSON(rq, &in); err != nil {
		return "", err
	}
	pend := rq.sess.Pending
	rq.sess.Pending = nil
	if pend == nil || pend.Purpose != purpose || !h.now().Before(pend.Expires) || !slices.Contains(pend.FactorIDs, in.FactorID) {
		return "", &pageError{Status: http.StatusConflict, Msg: "That confirmation has expired or was already used. Start again."}
	}
	res, err := h.svc.FinishVerify(rq.ctx, agent, api.FinishVerify{ID: pend.VerifyID, FactorID: in.FactorID, Response: in.Credential})
	if err != nil || !res.OK || res.UserID != pend.UserID {
		if errors.Is(err, core.ErrUnavailable) {
			return "", err
		}
		return "", errKeyRefused
	}
	return res.UserID, nil
}

func (h *handler) signInBegin(rq *request) error {
	var in struct {
		Username string `json:"username"`
	}
	if err := readJSON(rq, &in); err != nil {
		return err
	}
	if in.Username == "" {
		return &pageError{Status: http.StatusBadRequest, Msg: "Enter your username first."}
	}
	return h.beginKey(rq, in.Username, purposeSignIn)
}

// signInFinish signs the user in under a new session id.
func (h *handler) signInFinish(rq *request) error {
	userID, err := h.finishKey(rq, purposeSignIn)
	if err != nil {
		return err
	}
	self := core.Principal{UserID: userID, Roles: []string{api.RoleUser}, Auth: "webauthn"}
	u, err := h.svc.GetUser(rq.ctx, self, userID)
	if err != nil {
		return err
	}
	now := h.now()
	rq.sess = Session{UserID: u.ID, Username: u.Username, CSRF: randomToken(), Created: now, LastSeen: now, SteppedUp: now, Method: methodKey}
	h.issue(rq)
	h.log.Info("web sign-in", "user", u.Username, "request_id", rq.id)
	writeJSON(rq.w, http.StatusOK, map[string]string{"redirect": "/"})
	return nil
}

func (h *handler) stepUpBegin(rq *request) error {
	return h.beginKey(rq, rq.user.ID, purposeStepUp)
}

func (h *handler) stepUpFinish(rq *request) error {
	userID, err := h.finishKey(rq, purposeStepUp)
	if err != nil {
		return err
	}
	if userID != rq.user.ID {
		return errKeyRefused
	}
	rq.sess.SteppedUp = h.now()
	writeJSON(rq.w, http.StatusOK, map[string]bool{"ok": true})
	return nil
}

func (h *handler) signOut(rq *request) error {
	h.endSession(rq)
	http.Redirect(rq.w, rq.r, "/signin", http.StatusSeeOther)
	return nil
}

// home sends staff to the dashboard and everyone else to their own page.
func (h *handler) home(rq *request) error {
	if rq.r.URL.Path != "/" {
		return &pageError{Status: http.StatusNotFound, Msg: "There is no such page. Use the menu to find your way."}
	}
	if !rq.sess.SignedIn() {
		http.Redirect(rq.w, rq.r, "/signin", http.StatusSeeOther)
		return nil
	}
	if err := h.loadUser(rq); err != nil {
		return err
	}
	to := "/me"
	if rq.isStaff() && rq.keySession() {
		to = "/admin"
	}
	http.Redirect(rq.w, rq.r, to, http.StatusSeeOther)
	return nil
}
