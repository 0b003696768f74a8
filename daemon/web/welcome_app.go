package web

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/clientaddr"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/ratelimit"
)

// At /welcome a temporary access pass (a recovery or onboarding pass that
// allows the app kind) or an authenticator-app enrolment code also
// enrols an authenticator app: the page shows the seed once, as a QR code
// and as text, and the person confirms a first code. This is how someone
// whose only factor was the app on a lost phone gets back in after their
// recovery was approved. The enrolment is completed as the pass (or the
// code's holder), which uses the pass up and closes the recovery case; a
// first factor comes with its recovery codes, shown once.

// welcomeApp checks the code or pass and shows the new app's seed.
func (h *handler) welcomeApp(rq *request) error {
	code := strings.TrimSpace(rq.r.PostFormValue("code"))
	if code == "" {
		return &pageError{Status: http.StatusBadRequest, Msg: "Enter the access pass or enrolment code you were given."}
	}
	if d := h.cfg.Limiter.Allow(clientaddr.Of(rq.r), ratelimit.CodeTarget(code)); !d.OK {
		return tooMany(rq, d)
	}
	e, display, via, err := h.openAppEnrolment(rq, code)
	if err != nil {
		return err
	}
	qr, err := newQR(display["uri"])
	if err != nil || display["secret"] == "" {
		return &pageError{Status: http.StatusConflict, Msg: "This enrolment shows no authenticator-app key. Ask your helpdesk for a new pass."}
	}
	rq.sess.Pending = &Pending{Purpose: purposeEnrol, UserID: e.UserID, EnrolmentID: e.ID, Via: via, Expires: e.ExpiresAt}
	label := strings.TrimSpace(rq.r.PostFormValue("label"))
	if label == "" {
		label = "Authenticator app"
	}
	h.render(rq, http.StatusOK, "totp", "Add an authenticator app", totpPage{EnrolmentID: e.ID, QR: qr, Secret: display["secret"],
		Label: label, Codes: unusualTOTP(e.Params), Action: "/welcome/app/confirm"})
	return nil
}

// openAppEnrolment opens the authenticator-app enrolment a pass allows,
// or finds the one an enrolment code names, with its seed for the holder.
func (h *handler) openAppEnrolment(rq *request, code string) (core.Enrolment, map[string]string, string, error) {
	if strings.HasPrefix(code, "enr_") {
		e, err := h.svc.CheckEnrolmentCode(rq.ctx, code)
		if err != nil || e.Kind != h.cfg.TOTPKind {
			return core.Enrolment{}, nil, "", errBadCode
		}
		return e, h.svc.UserDisplay(e), viaCode, nil
	}
	g, err := h.passGrant(rq, code, h.cfg.TOTPKind)
	if err != nil {
		return core.Enrolment{}, nil, "", err
	}
	e, display, err := h.svc.CreateEnrolment(rq.ctx, g.principal(), api.CreateEnrolment{User: g.UserID, Kind: h.cfg.TOTPKind})
	return e, display, viaPass, err
}

// welcomeAppConfirm completes the app enrolment with a first code. A
// wrong code leaves it open: the page asks again.
func (h *handler) welcomeAppConfirm(rq *request) error {
	pend := rq.sess.Pending
	id, code, label := rq.r.PostFormValue("enrolment"), rq.r.PostFormValue("code"), rq.r.PostFormValue("label")
	if pend == nil || pend.Purpose != purposeEnrol || pend.EnrolmentID != id || !h.now().Before(pend.Expires) {
		return &pageError{Status: http.StatusConflict, Msg: "That enrolment has expired or was already completed. Start again with your pass."}
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
	payload, _ := json.Marshal(map[string]string{"code": code})
	f, err := h.svc.CompleteEnrolment(rq.ctx, p, id, api.CompleteEnrolment{Label: label, Payload: payload})
	if err != nil {
		status, msg := h.describe(rq, err)
		h.render(rq, status, "totp", "Add an authenticator app", totpPage{EnrolmentID: id, Error: msg, Label: label, Action: "/welcome/app/confirm"})
		return nil
	}
	rq.sess.Pending = nil
	h.log.Info("web first app enrolment", "user_id", f.UserID, "factor_id", f.ID, "via", pend.Via, "request_id", rq.id)
	next := "/signin/app"
	if desk {
		next, rq.sess.Pass = "/welcome", nil
	} else if u, err := h.svc.GetUser(rq.ctx, p, f.UserID); err == nil {
		next = "/signin/app?user=" + u.Username
	}
	if len(f.RecoveryCodes) > 0 {
		h.render(rq, http.StatusOK, "codes", "Your recovery codes", codesPage{Codes: f.RecoveryCodes, First: true, Next: next})
		return nil
	}
	return rq.redirect(next, "Your authenticator app is added. Sign in with its code and one of your recovery codes.")
}
