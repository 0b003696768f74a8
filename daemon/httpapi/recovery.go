package httpapi

import (
	"net/http"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/clientaddr"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// registerRecovery adds recovery cases, temporary access passes, recovery
// codes and break-glass.
func (h *Handler) registerRecovery() {
	h.route("POST /v1/recovery", core.ManageRecovery, h.openRecovery)
	h.route("GET /v1/recovery", core.ReadRecovery, h.listRecovery)
	h.route("GET /v1/recovery/{id}", core.ReadRecovery, h.getRecovery)
	h.route("POST /v1/recovery/{id}/verify/begin", core.ManageRecovery, h.recoveryVerifyBegin)
	h.route("POST /v1/recovery/{id}/verify/finish", core.ManageRecovery, h.recoveryVerifyFinish)
	h.route("POST /v1/recovery/{id}/code", core.ManageRecovery, h.recoveryCode)
	h.route("POST /v1/recovery/{id}/identity-check", core.ManageRecovery, h.identityCheck)
	h.route("POST /v1/recovery/{id}/pass", core.ManageRecovery, h.issuePass)
	h.route("POST /v1/users/{user}/pass", core.ManageRecovery, h.issueOnboardingPass)
	h.route("POST /v1/recovery/{id}/cancel", core.ManageRecovery, h.cancelRecovery)
	h.route("POST /v1/users/{user}/recovery-unlock", core.ClearRecovery, h.recoveryUnlock)
	h.route("POST /v1/me/recovery-codes", core.RegenRecoveryCodes, h.regenerateCodes)
	h.public("POST /v1/passes/redeem", h.redeemPass)

	h.route("GET /v1/breakglass", core.ReadBreakGlass, h.breakGlassStatus)
	h.route("POST /v1/breakglass/rotate", core.RotateBreakGlass, h.rotateBreakGlass)
	h.route("POST /v1/breakglass/share", core.ReadSelf, h.collectShare)
	h.public("POST /v1/breakglass/session", h.useBreakGlass)
	h.route("DELETE /v1/breakglass/session", core.ReadSelf, h.endBreakGlass)
}

func (h *Handler) openRecovery(r *http.Request, p core.Principal) (int, any, error) {
	var in api.OpenRecovery
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	c, err := h.svc.OpenRecovery(r.Context(), p, in)
	return http.StatusCreated, c.API(h.svc.Now()), err
}

func (h *Handler) listRecovery(r *http.Request, p core.Principal) (int, any, error) {
	pg, err := pageReq(r)
	if err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	cs, next, err := h.svc.ListRecovery(r.Context(), p, core.RecoveryFilter{UserID: q.Get("user"), State: q.Get("state")}, pg)
	now := h.svc.Now()
	return http.StatusOK, page(cs, next, func(c core.RecoveryCase) api.RecoveryCase { return c.API(now) }), err
}

func (h *Handler) getRecovery(r *http.Request, p core.Principal) (int, any, error) {
	c, err := h.svc.GetRecovery(r.Context(), p, r.PathValue("id"))
	return http.StatusOK, c.API(h.svc.Now()), err
}

func (h *Handler) recoveryVerifyBegin(r *http.Request, p core.Principal) (int, any, error) {
	v, err := h.svc.BeginRecoveryVerify(r.Context(), p, r.PathValue("id"))
	return http.StatusCreated, v, err
}

func (h *Handler) recoveryVerifyFinish(r *http.Request, p core.Principal) (int, any, error) {
	var in api.RecoveryFactorAnswer
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	c, err := h.svc.FinishRecoveryVerify(r.Context(), p, r.PathValue("id"), in)
	return http.StatusOK, c.API(h.svc.Now()), err
}

func (h *Handler) recoveryCode(r *http.Request, p core.Principal) (int, any, error) {
	var in api.RecoveryCodeAnswer
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	c, err := h.svc.ConfirmWithRecoveryCode(r.Context(), p, r.PathValue("id"), in.Code)
	return http.StatusOK, c.API(h.svc.Now()), err
}

func (h *Handler) identityCheck(r *http.Request, p core.Principal) (int, any, error) {
	var in api.IdentityCheck
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	a, err := h.svc.RequestIdentityCheck(r.Context(), p, r.PathValue("id"), in)
	if err != nil {
		return 0, nil, err
	}
	return accepted(a)
}

func (h *Handler) issuePass(r *http.Request, p core.Principal) (int, any, error) {
	var in api.IssuePass
	if err := decode(r, &in, true); err != nil {
		return 0, nil, err
	}
	pass, a, err := h.svc.IssuePass(r.Context(), p, r.PathValue("id"), in)
	return passAnswer(pass, a, err)
}

// passAnswer is 201 with an issued pass, or 202 with the request a
// second officer approves (a staff account's pass goes to that approver).
func passAnswer(pass api.IssuedPass, a core.Approval, err error) (int, any, error) {
	if err != nil {
		return 0, nil, err
	}
	if a.ID != "" {
		return accepted(a)
	}
	return http.StatusCreated, pass, nil
}

func (h *Handler) cancelRecovery(r *http.Request, p core.Principal) (int, any, error) {
	var in api.StateChange
	if err := decode(r, &in, true); err != nil {
		return 0, nil, err
	}
	c, err := h.svc.CancelRecovery(r.Context(), p, r.PathValue("id"), in.Reason)
	return http.StatusOK, c.API(h.svc.Now()), err
}

func (h *Handler) recoveryUnlock(r *http.Request, p core.Principal) (int, any, error) {
	var in api.StateChange
	if err := decode(r, &in, true); err != nil {
		return 0, nil, err
	}
	u, err := h.svc.ClearRecoveryLock(r.Context(), p, r.PathValue("user"), in.Reason)
	return http.StatusOK, u.API(), err
}

func (h *Handler) regenerateCodes(r *http.Request, p core.Principal) (int, any, error) {
	codes, err := h.svc.RegenerateRecoveryCodes(r.Context(), p, "")
	return http.StatusCreated, api.RecoveryCodesIssued{Codes: codes}, err
}

func (h *Handler) issueOnboardingPass(r *http.Request, p core.Principal) (int, any, error) {
	var in api.IssuePass
	if err := decode(r, &in, true); err != nil {
		return 0, nil, err
	}
	return passAnswer(h.svc.IssueOnboardingPass(r.Context(), p, r.PathValue("user"), in))
}

func (h *Handler) redeemPass(r *http.Request) (int, any, error) {
	var in api.RedeemPass
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	if err := h.attempt(r, ""); err != nil {
		return 0, nil, err
	}
	var p core.Principal
	if r.Header.Get("Authorization") != "" {
		var err error
		if p, err = h.authenticate(r); err != nil {
			return 0, nil, err
		}
	}
	out, err := h.svc.RedeemPass(r.Context(), p, in.Code)
	return http.StatusCreated, out, err
}

func (h *Handler) breakGlassStatus(r *http.Request, p core.Principal) (int, any, error) {
	st, err := h.svc.BreakGlassStatus(r.Context(), p)
	return http.StatusOK, st, err
}

func (h *Handler) rotateBreakGlass(r *http.Request, p core.Principal) (int, any, error) {
	var in api.BreakGlassRotate
	if err := decode(r, &in, true); err != nil {
		return 0, nil, err
	}
	a, err := h.svc.RotateBreakGlass(r.Context(), p, in)
	if err != nil {
		return 0, nil, err
	}
	if a.State == api.ApprovalPending {
		return accepted(a)
	}
	return http.StatusOK, a.API(h.svc.Now()), nil
}

func (h *Handler) collectShare(r *http.Request, p core.Principal) (int, any, error) {
	sh, err := h.svc.CollectBreakGlassShare(r.Context(), p)
	return http.StatusCreated, sh, err
}

func (h *Handler) useBreakGlass(r *http.Request) (int, any, error) {
	var in api.BreakGlassUse
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	// Per address only: the shares cannot be guessed, and a limit on the
	// set would let anyone who knows its id hold the emergency path shut.
	if err := h.attempt(r, ""); err != nil {
		return 0, nil, err
	}
	sess, err := h.svc.UseBreakGlass(r.Context(), in)
	return http.StatusCreated, sess, err
}

func (h *Handler) endBreakGlass(r *http.Request, p core.Principal) (int, any, error) {
	return http.StatusNoContent, nil, h.svc.EndBreakGlass(r.Context(), p)
}

// public registers a route that needs no token (a pass, an enrolment code
// or break-glass shares are the credential). Its handler calls attempt
// before it tries the credential.
func (h *Handler) public(pattern string, fn func(r *http.Request) (int, any, error)) {
	h.routes = append(h.routes, Route{pattern, "public"})
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		status, body, err := fn(r)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		writeJSON(w, status, body)
	})
}

// attempt counts one try of a credential by the request's client, aimed
// at target ("" when the credential names no account before it is
// checked), in the limiter the web pages share (docs/security.md). Errors:
// *rateLimitedError when the attempt may not go ahead; core.ErrUnavailable
// when the limits kept in PostgreSQL cannot be read (nothing is tried).
func (h *Handler) attempt(r *http.Request, target string) error {
	d, err := h.limiter.Check(r.Context(), clientaddr.Of(r), target)
	if err != nil {
		return err
	}
	if !d.OK {
		return &rateLimitedError{d}
	}
	return nil
}
