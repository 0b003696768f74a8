package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/clientaddr"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/ratelimit"
)

// An enrolment code is what an administrator hands a new user for their
// first sign-in: the enrolment's id and its challenge, "enr_….<base64url>".
// It is single use and expires with the enrolment; the challenge (32
// random bytes) makes it unguessable.

// EnrolmentCode formats the code for an enrolment.
func EnrolmentCode(e core.Enrolment) string { return e.Code() }

var errBadCode = &pageError{Status: http.StatusBadRequest,
	Msg: "That enrolment code is not valid, was already used or has expired. Ask your administrator for a new one."}

// redeemCode finds the open security-key enrolment a code names. A code
// already exchanged through the API (keyfleet-agent enroll) is refused.
func (h *handler) redeemCode(rq *request, code string) (core.Enrolment, error) {
	e, err := h.svc.CheckEnrolmentCode(rq.ctx, code)
	if err != nil || e.Kind != h.cfg.KeyKind {
		return core.Enrolment{}, errBadCode
	}
	return e, nil
}

// codeHolder is the principal of someone who proved an enrolment code: the
// user it was made for, with the self-service role only, authenticated by
// the code.
func codeHolder(e core.Enrolment) core.Principal {
	return core.Principal{UserID: e.UserID, Roles: []string{api.RoleUser}, Auth: "enrolment_code"}
}

func (h *handler) welcomePage(rq *request) error {
	if rq.fresh {
		h.issue(rq)
	}
	h.render(rq, http.StatusOK, "welcome", "First sign-in", nil)
	return nil
}

// tooMany is the answer to a first sign-in attempt the limiter refused.
func tooMany(rq *request, d ratelimit.Decision) error {
	secs := int(d.RetryAfter / time.Second)
	rq.w.Header().Set("Retry-After", strconv.Itoa(secs))
	msg := fmt.Sprintf("Too many attempts from this address. Wait %d seconds, then enter the code again carefully.", secs)
	if d.ByTarget {
		msg = fmt.Sprintf("Too many attempts with this code. Wait %d seconds, then try again.", secs)
	}
	return &pageError{Status: http.StatusTooManyRequests, Msg: msg}
}

// welcomeBegin checks an enrolment code or a temporary access pass and
// answers the creation options.
func (h *handler) welcomeBegin(rq *request) error {
	var in struct {
		Code string `json:"code"`
	}
	if err := readJSON(rq, &in); err != nil {
		return err
	}
	code := strings.TrimSpace(in.Code)
	if code == "" {
		return &pageError{Status: http.StatusBadRequest, Msg: "Enter the enrolment code or access pass you were given."}
	}
	d, err := h.cfg.Limiter.Check(rq.ctx, clientaddr.Of(rq.r), ratelimit.CodeTarget(code))
	if err != nil {
		return err // core.ErrUnavailable: the shared limits cannot be read
	}
	if !d.OK {
		return tooMany(rq, d)
	}
	if strings.HasPrefix(code, "enr_") {
		e, err := h.redeemCode(rq, code)
		if err != nil {
			return err
		}
		return h.offerCreation(rq, e, viaCode)
	}
	g, err := h.passGrant(rq, code, h.cfg.KeyKind)
	if err != nil {
		return err
	}
	e, _, err := h.svc.CreateEnrolment(rq.ctx, g.principal(), api.CreateEnrolment{User: g.UserID, Kind: h.cfg.KeyKind})
	if err != nil {
		return err
	}
	return h.offerCreation(rq, e, viaPass)
}

// offerCreation remembers an enrolment in the session and answers its
// WebAuthn creation options.
func (h *handler) offerCreation(rq *request, e core.Enrolment, via string) error {
	var params map[string]string
	if err := json.Unmarshal(e.Params, &params); err != nil || params[api.FIDO2ParamOptions] == "" {
		return &pageError{Status: http.StatusConflict, Msg: "This enrolment carries no security-key options. Ask your administrator for a new code."}
	}
	rq.sess.Pending = &Pending{Purpose: purposeEnrol, UserID: e.UserID, EnrolmentID: e.ID, Via: via, Expires: e.ExpiresAt}
	writeJSON(rq.w, http.StatusOK, map[string]any{"options": json.RawMessage(params[api.FIDO2ParamOptions])})
	return nil
}

type newKey struct {
	Label      string          `json:"label"`
	Credential json.RawMessage `json:"credential"`
}

// finishCreation completes the pending enrolment with the browser's
// registration, as p.
func (h *handler) finishCreation(rq *request, p core.Principal, via string) (core.Factor, error) {
	var in newKey
	if err := readJSON(rq, &in); err != nil {
		return core.Factor{}, err
	}
	pend := rq.sess.Pending
	rq.sess.Pending = nil
	if pend == nil || pend.Purpose != purposeEnrol || pend.Via != via || pend.UserID != p.UserID || !h.now().Before(pend.Expires) {
		return core.Factor{}, &pageError{Status: http.StatusConflict, Msg: "That registration has expired or was already used. Start again."}
	}
	if strings.TrimSpace(in.Label) == "" {
		in.Label = "Security key"
	}
	return h.svc.CompleteEnrolment(rq.ctx, p, pend.EnrolmentID, api.CompleteEnrolment{Label: in.Label, Payload: in.Credential})
}

// welcomeFinish completes a first enrolment. The recovery codes of a
// user's first factor are in this answer only: the page shows them once.
func (h *handler) welcomeFinish(rq *request) error {
	pend := rq.sess.Pending
	if pend == nil {
		return errBadCode
	}
	p, desk := codeHolder(core.Enrolment{UserID: pend.UserID}), false
	if pend.Via == viaPass {
		g := rq.sess.Pass
		if g == nil || g.UserID != pend.UserID || !h.now().Before(g.Expires) {
			rq.sess.Pending = nil
			return errBadPass
		}
		p, desk = g.principal(), g.Desk
	}
	f, err := h.finishCreation(rq, p, pend.Via)
	if err != nil {
		return err
	}
	h.log.Info("web first enrolment", "user_id", f.UserID, "factor_id", f.ID, "via", pend.Via, "request_id", rq.id)
	out := map[string]any{"recovery_codes": f.RecoveryCodes}
	if desk {
		out["redirect"], rq.sess.Flash = "/welcome", "The key is registered for "+rq.sess.Pass.Username+". They can sign in with it now."
		rq.sess.Pass = nil
	} else {
		u, err := h.svc.GetUser(rq.ctx, p, f.UserID)
		if err != nil {
			return err
		}
		out["redirect"], rq.sess.Flash = signInURL(u.Username), "Your key is registered. Sign in with it now."
	}
	writeJSON(rq.w, http.StatusOK, out)
	return nil
}
