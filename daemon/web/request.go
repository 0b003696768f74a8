package web

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// access says who may reach a route and what it needs.
type access int

const (
	anyone  access = 1 << iota // anonymous visitors too (sign-in, first enrolment)
	member                     // a signed-in user
	staff                      // a signed-in user with a dashboard role
	stepUp                     // a recent re-verification with the key
	jsonAPI                    // answers JSON (script requests) instead of pages
)

// staffRoles may see the dashboard; each sees what its role allows.
var staffRoles = []string{api.RoleAdmin, api.RoleSecurityOfficer, api.RoleHelpdesk, api.RoleAuditor}

// request is one request with its session and, once signed in, the
// principal every Service call is made as.
type request struct {
	w     http.ResponseWriter
	r     *http.Request
	ctx   context.Context
	id    string
	key   SessionKey
	sess  Session
	fresh bool // the session is new: set its cookie
	user  core.User
	p     core.Principal
}

type handlerFunc func(*handler, *request) error

// handle registers a route behind the checks its access asks for.
func (h *handler) handle(pattern string, a access, fn handlerFunc) {
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		rq := &request{w: w, r: r}
		rq.ctx, rq.id = requestContext(r)
		err := h.admit(rq, a)
		if err == nil {
			err = fn(h, rq)
		}
		if err != nil {
			h.fail(rq, a, err)
		}
		h.keep(rq)
	})
}

// admit loads the session and checks sign-in, role, CSRF and step-up.
func (h *handler) admit(rq *request, a access) error {
	h.loadSession(rq)
	if rq.r.Method != http.MethodGet && rq.r.Method != http.MethodHead {
		if err := h.checkCSRF(rq); err != nil {
			return err
		}
	}
	if a&anyone != 0 {
		return nil
	}
	if !rq.sess.SignedIn() {
		return errSignIn
	}
	if err := h.loadUser(rq); err != nil {
		return err
	}
	if a&staff != 0 && !rq.isStaff() {
		return &pageError{Status: http.StatusForbidden, Msg: "The dashboard is for administrators, security officers, helpdesk and auditors. Your own keys are on your page."}
	}
	if a&staff != 0 && rq.sess.Method == methodApp {
		return errKeyOnly
	}
	if a&stepUp != 0 && !h.steppedUp(rq) {
		return errStepUp
	}
	return rq.withProof()
}

// withProof attaches the fresh proof a page sent with this action (the
// form field "proof", or the Keyfleet-Proof header of a script request):
// the key's answer to a challenge bound to this one action (proof.go).
// The domain checks it; a page only carries it.
func (rq *request) withProof() error {
	raw := rq.r.Header.Get(api.ProofHeader)
	if raw == "" && rq.r.Method == http.MethodPost && rq.r.Header.Get("X-CSRF-Token") == "" {
		if form := rq.r.PostFormValue("proof"); form != "" {
			var pr api.Proof
			if json.Unmarshal([]byte(form), &pr) != nil || pr.ID == "" {
				return &pageError{Status: http.StatusBadRequest, Msg: "The confirmation with your key did not come through. Try again."}
			}
			rq.p.Proof = &pr
		}
		return nil
	}
	if raw == "" {
		return nil
	}
	pr, err := core.DecodeProof(raw)
	if err != nil {
		return &pageError{Status: http.StatusBadRequest, Msg: "The confirmation with your key did not come through. Try again."}
	}
	rq.p.Proof = pr
	return nil
}

// loadUser re-reads the signed-in user: a disabled user's session ends,
// and roles taken away stop working at once.
func (h *handler) loadUser(rq *request) error {
	p := core.Principal{UserID: rq.sess.UserID, Username: rq.sess.Username, Roles: []string{api.RoleUser}, Auth: rq.auth()}
	u, err := h.svc.GetUser(rq.ctx, p, rq.sess.UserID)
	if err != nil || u.Status != api.UserActive {
		h.cfg.Sessions.Delete(rq.key)
		rq.sess, rq.fresh = h.newSession(), true
		return errSignIn
	}
	rq.user = u
	rq.p = core.Principal{UserID: u.ID, Username: u.Username, Roles: u.Roles, Auth: rq.auth()}
	return nil
}

// auth names how the session's user signed in, for the audit trail.
func (rq *request) auth() string {
	if rq.sess.Method == methodApp {
		return "web_app"
	}
	return "webauthn"
}

// keySession reports whether the user signed in with a security key: the
// dashboard takes nothing else.
func (rq *request) keySession() bool { return rq.sess.SignedIn() && rq.sess.Method != methodApp }

func (rq *request) isStaff() bool {
	return slices.ContainsFunc(staffRoles, func(r string) bool { return slices.Contains(rq.user.Roles, r) })
}

func (rq *request) hasRole(roles ...string) bool {
	return slices.ContainsFunc(roles, func(r string) bool { return slices.Contains(rq.user.Roles, r) })
}

func (h *handler) steppedUp(rq *request) bool {
	return !rq.sess.SteppedUp.IsZero() && h.now().Sub(rq.sess.SteppedUp) < h.cfg.StepUpFor
}

// checkCSRF refuses a state-changing request that does not come from the
// daemon's own pages: the Origin (when the browser sends one) must be
// ours, and the session's token must be echoed in the form field "csrf"
// or the X-CSRF-Token header.
func (h *handler) checkCSRF(rq *request) error {
	if o := rq.r.Header.Get("Origin"); o != "" && o != h.cfg.Origin {
		return errCSRF
	}
	if s := rq.r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return errCSRF
	}
	got := rq.r.Header.Get("X-CSRF-Token")
	if got == "" {
		rq.r.Body = http.MaxBytesReader(rq.w, rq.r.Body, maxForm)
		got = rq.r.PostFormValue("csrf")
	}
	if rq.sess.CSRF == "" || subtle.ConstantTimeCompare([]byte(got), []byte(rq.sess.CSRF)) != 1 {
		return errCSRF
	}
	return nil
}

// maxForm bounds form and script request bodies (a policy document is the
// largest thing posted).
const maxForm = 256 << 10

// pageError is an error with the status and the words the visitor sees.
type pageError struct {
	Status int
	Msg    string
}

func (e *pageError) Error() string { return e.Msg }

var (
	errSignIn  = &pageError{Status: http.StatusUnauthorized, Msg: "Your session has ended or you are not signed in. Sign in with your security key."}
	errCSRF    = &pageError{Status: http.StatusForbidden, Msg: "This form is out of date or did not come from keyfleet. Reload the page and try again."}
	errStepUp  = &pageError{Status: http.StatusForbidden, Msg: "This action needs a fresh confirmation with your security key. Press \"Confirm with key\" and try again."}
	errKeyOnly = &pageError{Status: http.StatusForbidden, Msg: "The dashboard takes security keys only. You signed in with your authenticator app, which reaches your own page; sign out and sign in with your security key to work in the dashboard."}
)

// describe turns an error into a status and words for the visitor. The
// domain's messages say what to do next and carry no secrets; anything
// else is logged and shown only by request id.
func (h *handler) describe(rq *request, err error) (int, string) {
	var pe *pageError
	switch {
	case errors.As(err, &pe):
		return pe.Status, pe.Msg
	case errors.Is(err, core.ErrForbidden), errors.Is(err, core.ErrNotIndependent):
		return http.StatusForbidden, sentence(err)
	case errors.Is(err, core.ErrProofRequired):
		return http.StatusForbidden, "This action needs a fresh confirmation with your own security key, made for this one action. Press the button again and touch your key when asked."
	case errors.Is(err, core.ErrNotFound):
		return http.StatusNotFound, sentence(err)
	case errors.Is(err, core.ErrInvalid), errors.Is(err, core.ErrIllegalTransition), errors.Is(err, core.ErrPolicyViolation),
		errors.Is(err, core.ErrUnsupportedKind), errors.Is(err, core.ErrNoUsableFactor):
		return http.StatusBadRequest, sentence(err)
	case errors.Is(err, core.ErrAlreadyExists), errors.Is(err, core.ErrSelfApproval), errors.Is(err, core.ErrApprovalClosed),
		errors.Is(err, core.ErrEnrolmentClosed), errors.Is(err, core.ErrVerificationClosed), errors.Is(err, core.ErrConflict):
		return http.StatusConflict, sentence(err)
	case errors.Is(err, core.ErrUnauthenticated), errors.Is(err, core.ErrTokenExpired), errors.Is(err, core.ErrTokenRevoked):
		return http.StatusUnauthorized, sentence(err)
	case errors.Is(err, core.ErrLocked):
		return http.StatusTooManyRequests, sentence(err)
	case errors.Is(err, core.ErrUnavailable):
		return http.StatusServiceUnavailable, "keyfleet cannot take changes right now. Try again in a minute; if it persists, an operator must look at the daemon."
	}
	h.log.Error("web request failed", "request_id", rq.id, "path", rq.r.URL.Path, "err", err)
	return http.StatusInternalServerError, fmt.Sprintf("Something went wrong on our side. Try again; if it persists, give your administrator request id %s.", rq.id)
}

func sentence(err error) string {
	s := err.Error()
	if s == "" {
		return s
	}
	return string(unicodeUpper(s[0])) + s[1:] + "."
}

func unicodeUpper(b byte) byte {
	if b >= 'a' && b <= 'z' {
		return b - 'a' + 'A'
	}
	return b
}

// fail answers an error: JSON for script requests, a page otherwise, and
// a redirect to sign-in for a page that needs a session.
func (h *handler) fail(rq *request, a access, err error) {
	status, msg := h.describe(rq, err)
	if a&jsonAPI != 0 {
		writeJSON(rq.w, status, map[string]string{"error": msg, "request_id": rq.id})
		return
	}
	if errors.Is(err, errSignIn) && rq.r.Method == http.MethodGet {
		http.Redirect(rq.w, rq.r, "/signin", http.StatusSeeOther)
		return
	}
	h.render(rq, status, "error", "Something needs your attention", map[string]any{"Status": status, "Message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// readJSON decodes a script request's body strictly.
func readJSON(rq *request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(rq.w, rq.r.Body, maxForm))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &pageError{Status: http.StatusBadRequest, Msg: "The request was not understood. Reload the page and try again."}
	}
	return nil
}

// redirect ends a successful form post: flash a message, go to a page.
func (rq *request) redirect(to, flash string) error {
	rq.sess.Flash = flash
	http.Redirect(rq.w, rq.r, to, http.StatusSeeOther)
	return nil
}

func (h *handler) expiry(s Session) time.Time {
	return minTime(s.Created.Add(h.cfg.AbsoluteTimeout), s.LastSeen.Add(h.cfg.IdleTimeout))
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
