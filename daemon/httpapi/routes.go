package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/foreground"
	"github.com/keyfleet/keyfleet/daemon/ratelimit"
)

// register lists every /v1 route and the permission it needs.
func (h *Handler) register() {
	h.route("GET /v1/me", core.ReadSelf, h.me)

	h.route("GET /v1/users", core.ReadUsers, h.listUsers)
	h.route("POST /v1/users", core.CreateUsers, h.createUser)
	h.route("POST /v1/users/import", core.CreateUsers, h.importUsers)
	h.route("GET /v1/users/{user}", core.ReadSelf, h.getUser)
	h.route("PATCH /v1/users/{user}", core.UpdateUsers, h.updateUser)
	h.route("POST /v1/users/{user}/enable", core.EnableUsers, h.enableUser)
	h.route("POST /v1/users/{user}/disable", core.RequestDisable, h.userRequest(api.ActionUserDisable))
	h.route("POST /v1/users/{user}/reset-mfa", core.RequestUserMFA, h.userRequest(api.ActionUserResetMFA))
	h.route("DELETE /v1/users/{user}", core.RequestDelete, h.userRequest(api.ActionUserDelete))
	h.route("GET /v1/users/{user}/mfa-status", core.ReadMFAStatus, h.mfaStatus)
	h.route("POST /v1/users/{user}/unlock", core.UnlockUsers, h.unlockUser)

	h.route("POST /v1/verify/begin", core.VerifyUsers, h.beginVerify)
	h.route("POST /v1/verify/finish", core.VerifyUsers, h.finishVerify)
	h.route("POST /v1/verify", core.VerifyUsers, h.checkVerify)

	h.route("GET /v1/factors", core.ReadFactors, h.listFactors)
	h.route("GET /v1/factors/{id}", core.ReadFactors, h.getFactor)
	h.route("PATCH /v1/factors/{id}", core.UpdateFactors, h.renameFactor)
	h.route("POST /v1/factors/{id}/suspend", core.SuspendFactors, h.factorMove(h.svc.SuspendFactor))
	h.route("POST /v1/factors/{id}/resume", core.ResumeFactors, h.factorMove(h.svc.ResumeFactor))
	h.route("POST /v1/factors/{id}/revoke", core.RequestRevoke, h.factorRequest(api.ActionFactorRevoke))
	h.route("POST /v1/factors/{id}/remove", core.RemoveOwnFactors, h.removeOwnFactor)
	h.route("POST /v1/factors/{id}/activate/begin", core.ActivateFactors, h.beginActivation)
	h.route("POST /v1/factors/{id}/activate", core.ActivateFactors, h.activateFactor)
	h.route("DELETE /v1/factors/{id}", core.RequestFactorDel, h.factorRequest(api.ActionFactorDelete))

	h.route("GET /v1/devices", core.ReadDevices, h.listDevices)
	h.route("GET /v1/devices/{id}", core.ReadDevices, h.getDevice)
	h.route("POST /v1/devices/{id}/lost", core.ReportLost, h.deviceLost)
	h.deviceLifecycleRoutes()

	h.route("GET /v1/enrolments", core.ReadEnrolments, h.listEnrolments)
	h.route("POST /v1/enrolments", core.CreateEnrolments, h.createEnrolment)
	h.route("GET /v1/enrolments/{id}", core.ReadEnrolments, h.getEnrolment)
	h.route("DELETE /v1/enrolments/{id}", core.CancelEnrolments, h.cancelEnrolment)
	h.route("POST /v1/enrolments/{id}/complete", core.CompleteEnrol, h.completeEnrolment)
	h.route("POST /v1/enrolments/{id}/preflight", core.CompleteEnrol, h.preflightEnrolment)
	h.public("POST /v1/enrolments/redeem", h.redeemEnrolmentCode)

	h.route("GET /v1/tokens", core.ReadTokens, h.listTokens)
	h.route("POST /v1/tokens", core.CreateTokens, h.createToken)
	h.route("DELETE /v1/tokens/{id}", core.RevokeTokens, h.revokeToken)

	h.route("GET /v1/approvals", core.ReadApprovals, h.listApprovals)
	h.route("GET /v1/approvals/{id}", core.ReadSelf, h.getApproval)
	h.route("POST /v1/approvals/{id}/approve", core.DecideApprovals, h.decide(h.svc.Approve))
	h.route("POST /v1/approvals/{id}/deny", core.DecideApprovals, h.decide(h.svc.Deny))
	h.route("POST /v1/approvals/{id}/cancel", core.CancelApprovals, h.decide(h.svc.CancelApproval))

	h.route("GET /v1/audit", core.ReadAudit, h.listAudit)
	h.route("GET /v1/audit/head", core.ReadAudit, h.auditHead)
	h.route("GET /v1/audit/verify", core.VerifyAudit, h.verifyAudit)
	h.routeStream("GET /v1/audit/export", core.ReadAudit, h.exportAudit)
	h.registerPolicy()
	h.registerRecovery()
	h.registerProofs()
}

func (h *Handler) me(r *http.Request, p core.Principal) (int, any, error) {
	if p.Auth == "breakglass" { // a session, not a user record
		return http.StatusOK, api.Me{User: api.User{ID: p.UserID, Username: p.Username, Status: api.UserActive, Groups: []string{}, Roles: p.Roles},
			Roles: p.Roles, Auth: p.Auth, Token: p.TokenID}, nil
	}
	u, err := h.svc.GetUser(r.Context(), p, p.UserID)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, api.Me{User: u.API(), Roles: p.Roles, Auth: p.Auth, Token: p.TokenID}, nil
}

func (h *Handler) listUsers(r *http.Request, p core.Principal) (int, any, error) {
	pg, err := pageReq(r)
	if err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	f := core.UserFilter{Query: q.Get("q"), Group: q.Get("group"), Role: q.Get("role"), Status: q.Get("status")}
	users, next, err := h.svc.ListUsers(r.Context(), p, f, pg)
	return http.StatusOK, page(users, next, core.User.API), err
}

func (h *Handler) createUser(r *http.Request, p core.Principal) (int, any, error) {
	var in api.CreateUser
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	u, a, err := h.svc.CreateUser(r.Context(), p, in)
	return userAnswer(http.StatusCreated, u, a, err)
}

// userAnswer is the user, or 202 with the request for the part of the
// change that waits for a second person (and the user as it stands).
func userAnswer(status int, u core.User, a core.Approval, err error) (int, any, error) {
	if err != nil {
		return 0, nil, err
	}
	if a.ID != "" && a.State == api.ApprovalPending {
		code, body, _ := accepted(a)
		acc := body.(api.Accepted)
		au := u.API()
		acc.User = &au
		return code, acc, nil
	}
	return status, u.API(), nil
}

func (h *Handler) importUsers(r *http.Request, p core.Principal) (int, any, error) {
	var in api.ImportUsers
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	res, err := h.svc.ImportUsers(r.Context(), p, in)
	return http.StatusOK, res, err
}

func (h *Handler) getUser(r *http.Request, p core.Principal) (int, any, error) {
	u, err := h.svc.GetUser(r.Context(), p, r.PathValue("user"))
	return http.StatusOK, u.API(), err
}

func (h *Handler) updateUser(r *http.Request, p core.Principal) (int, any, error) {
	var in api.UpdateUser
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	u, a, err := h.svc.UpdateUser(r.Context(), p, r.PathValue("user"), in)
	return userAnswer(http.StatusOK, u, a, err)
}

func (h *Handler) enableUser(r *http.Request, p core.Principal) (int, any, error) {
	u, err := h.svc.EnableUser(r.Context(), p, r.PathValue("user"))
	return http.StatusOK, u.API(), err
}

// accepted is the 202 answer to an action waiting for a second approver.
func accepted(a core.Approval) (int, any, error) {
	return http.StatusAccepted, api.Accepted{
		Approval: a.API(a.RequestedAt),
		Message: fmt.Sprintf("%s needs a second approver: another authorised administrator runs 'keyfleet approvals approve %s' before %s",
			a.Action, a.ID, a.ExpiresAt.Format(time.RFC3339)),
	}, nil
}

// removeOwnFactor is a person removing their own factor: 200 with the
// revoked factor while the policy is still met without it, else 202 with
// the revoke request an administrator approves.
func (h *Handler) removeOwnFactor(r *http.Request, p core.Principal) (int, any, error) {
	var in api.StateChange
	if err := decode(r, &in, true); err != nil {
		return 0, nil, err
	}
	f, a, err := h.svc.RemoveOwnFactor(r.Context(), p, r.PathValue("id"), in.Reason)
	if err != nil {
		return 0, nil, err
	}
	if a.ID != "" {
		return accepted(a)
	}
	return http.StatusOK, f.API(), nil
}

func (h *Handler) userRequest(action string) handlerFunc {
	return func(r *http.Request, p core.Principal) (int, any, error) {
		var in api.StateChange
		if err := decode(r, &in, true); err != nil {
			return 0, nil, err
		}
		a, err := h.svc.RequestUserAction(r.Context(), p, r.PathValue("user"), action, in.Reason)
		if err != nil {
			return 0, nil, err
		}
		return accepted(a)
	}
}

func (h *Handler) mfaStatus(r *http.Request, p core.Principal) (int, any, error) {
	st, err := h.svc.MFAStatus(r.Context(), p, r.PathValue("user"))
	return http.StatusOK, st, err
}

func (h *Handler) unlockUser(r *http.Request, p core.Principal) (int, any, error) {
	var in api.StateChange
	if err := decode(r, &in, true); err != nil {
		return 0, nil, err
	}
	u, err := h.svc.UnlockUser(r.Context(), p, r.PathValue("user"), in.Reason)
	return http.StatusOK, u.API(), err
}

func (h *Handler) beginVerify(r *http.Request, p core.Principal) (int, any, error) {
	var in api.BeginVerify
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	v, err := h.svc.BeginVerify(r.Context(), p, in)
	return http.StatusCreated, v, err
}

func (h *Handler) finishVerify(r *http.Request, p core.Principal) (int, any, error) {
	var in api.FinishVerify
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	res, err := h.svc.FinishVerify(r.Context(), p, in)
	if res.Pending {
		return http.StatusAccepted, res, err // a push still waits for its answer
	}
	return http.StatusOK, res, err
}

func (h *Handler) checkVerify(r *http.Request, p core.Principal) (int, any, error) {
	var in api.CheckVerify
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	res, err := h.svc.CheckVerify(r.Context(), p, in)
	return http.StatusOK, res, err
}

func (h *Handler) listFactors(r *http.Request, p core.Principal) (int, any, error) {
	pg, err := pageReq(r)
	if err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	f := core.FactorFilter{UserID: q.Get("user"), DeviceID: q.Get("device"), State: q.Get("state"), Kind: q.Get("kind")}
	fs, next, err := h.svc.ListFactors(r.Context(), p, f, pg)
	return http.StatusOK, page(fs, next, core.Factor.API), err
}

func (h *Handler) getFactor(r *http.Request, p core.Principal) (int, any, error) {
	f, err := h.svc.GetFactor(r.Context(), p, r.PathValue("id"))
	return http.StatusOK, f.API(), err
}

func (h *Handler) renameFactor(r *http.Request, p core.Principal) (int, any, error) {
	var in api.UpdateFactor
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	f, err := h.svc.RenameFactor(r.Context(), p, r.PathValue("id"), in)
	return http.StatusOK, f.API(), err
}

type factorMoveFunc func(ctx context.Context, p core.Principal, id, reason string) (core.Factor, error)

func (h *Handler) factorMove(fn factorMoveFunc) handlerFunc {
	return func(r *http.Request, p core.Principal) (int, any, error) {
		var in api.StateChange
		if err := decode(r, &in, true); err != nil {
			return 0, nil, err
		}
		f, err := fn(r.Context(), p, r.PathValue("id"), in.Reason)
		return http.StatusOK, f.API(), err
	}
}

func (h *Handler) factorRequest(action string) handlerFunc {
	return func(r *http.Request, p core.Principal) (int, any, error) {
		var in api.StateChange
		if err := decode(r, &in, true); err != nil {
			return 0, nil, err
		}
		a, err := h.svc.RequestFactorRemoval(r.Context(), p, r.PathValue("id"), action, in.Reason, in.ReplacementPlanned)
		if err != nil {
			return 0, nil, err
		}
		return accepted(a)
	}
}

func (h *Handler) beginActivation(r *http.Request, p core.Principal) (int, any, error) {
	vf, err := h.svc.BeginActivation(r.Context(), p, r.PathValue("id"))
	return http.StatusCreated, vf, err
}

func (h *Handler) activateFactor(r *http.Request, p core.Principal) (int, any, error) {
	var in struct {
		Response json.RawMessage `json:"response"`
	}
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	f, err := h.svc.ActivateFactor(r.Context(), p, r.PathValue("id"), in.Response)
	return http.StatusOK, f.API(), err
}

func (h *Handler) listDevices(r *http.Request, p core.Principal) (int, any, error) {
	pg, err := pageReq(r)
	if err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	ds, ids, next, err := h.svc.ListDevices(r.Context(), p, core.DeviceFilter{UserID: q.Get("user"), State: q.Get("state"), Serial: q.Get("serial")}, pg)
	return http.StatusOK, page(ds, next, func(d core.Device) api.Device { return d.API(ids[d.ID]) }), err
}

func (h *Handler) getDevice(r *http.Request, p core.Principal) (int, any, error) {
	d, ids, err := h.svc.GetDevice(r.Context(), p, r.PathValue("id"))
	return http.StatusOK, d.API(ids), err
}

func (h *Handler) deviceLost(r *http.Request, p core.Principal) (int, any, error) {
	var in api.StateChange
	if err := decode(r, &in, true); err != nil {
		return 0, nil, err
	}
	d, ids, err := h.svc.MarkDeviceLost(r.Context(), p, r.PathValue("id"), in.Reason)
	return http.StatusOK, d.API(ids), err
}

func (h *Handler) listEnrolments(r *http.Request, p core.Principal) (int, any, error) {
	pg, err := pageReq(r)
	if err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	es, next, err := h.svc.ListEnrolments(r.Context(), p, core.EnrolmentFilter{UserID: q.Get("user"), State: q.Get("state")}, pg)
	now := h.svc.Now()
	return http.StatusOK, page(es, next, func(e core.Enrolment) api.Enrolment { return e.API(now) }), err
}

func (h *Handler) createEnrolment(r *http.Request, p core.Principal) (int, any, error) {
	var in api.CreateEnrolment
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	e, display, err := h.svc.CreateEnrolment(r.Context(), p, in)
	out := e.API(h.svc.Now())
	out.Display = display
	out.Code = e.Code()
	return http.StatusCreated, out, err
}

// redeemEnrolmentCode exchanges an enrolment code for a token bound to
// that enrolment (no token needed: the code is the credential).
func (h *Handler) redeemEnrolmentCode(r *http.Request) (int, any, error) {
	var in api.RedeemEnrolmentCode
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	if err := h.attempt(r, ratelimit.CodeTarget(in.Code)); err != nil {
		return 0, nil, err
	}
	out, err := h.svc.RedeemEnrolmentCode(r.Context(), in.Code)
	return http.StatusCreated, out, err
}

func (h *Handler) getEnrolment(r *http.Request, p core.Principal) (int, any, error) {
	e, err := h.svc.GetEnrolment(r.Context(), p, r.PathValue("id"))
	out := e.API(h.svc.Now())
	out.Display = h.svc.UserDisplay(e) // set only for the user's own read
	return http.StatusOK, out, err
}

func (h *Handler) cancelEnrolment(r *http.Request, p core.Principal) (int, any, error) {
	e, err := h.svc.CancelEnrolment(r.Context(), p, r.PathValue("id"))
	return http.StatusOK, e.API(h.svc.Now()), err
}

func (h *Handler) completeEnrolment(r *http.Request, p core.Principal) (int, any, error) {
	var in api.CompleteEnrolment
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	f, err := h.svc.CompleteEnrolment(r.Context(), p, r.PathValue("id"), in)
	return http.StatusCreated, f.API(), err
}

func (h *Handler) listTokens(r *http.Request, p core.Principal) (int, any, error) {
	pg, err := pageReq(r)
	if err != nil {
		return 0, nil, err
	}
	ts, next, err := h.svc.ListTokens(r.Context(), p, r.URL.Query().Get("user"), pg)
	return http.StatusOK, page(ts, next, core.Token.API), err
}

func (h *Handler) createToken(r *http.Request, p core.Principal) (int, any, error) {
	var in api.CreateToken
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	t, secret, err := h.svc.CreateToken(r.Context(), p, in)
	return http.StatusCreated, api.CreatedToken{Token: t.API(), Secret: secret}, err
}

func (h *Handler) revokeToken(r *http.Request, p core.Principal) (int, any, error) {
	t, err := h.svc.RevokeToken(r.Context(), p, r.PathValue("id"))
	return http.StatusOK, t.API(), err
}

func (h *Handler) listApprovals(r *http.Request, p core.Principal) (int, any, error) {
	pg, err := pageReq(r)
	if err != nil {
		return 0, nil, err
	}
	as, next, err := h.svc.ListApprovals(r.Context(), p, r.URL.Query().Get("state"), pg)
	now := h.svc.Now()
	return http.StatusOK, page(as, next, func(a core.Approval) api.Approval { return a.API(now) }), err
}

func (h *Handler) getApproval(r *http.Request, p core.Principal) (int, any, error) {
	a, err := h.svc.GetApproval(r.Context(), p, r.PathValue("id"))
	return http.StatusOK, a.API(h.svc.Now()), err
}

func (h *Handler) decide(fn func(ctx context.Context, p core.Principal, id, comment string) (core.Approval, error)) handlerFunc {
	return func(r *http.Request, p core.Principal) (int, any, error) {
		var in api.StateChange
		if err := decode(r, &in, true); err != nil {
			return 0, nil, err
		}
		a, err := fn(r.Context(), p, r.PathValue("id"), in.Reason)
		return http.StatusOK, a.API(h.svc.Now()), err
	}
}

// auditFilter reads the audit routes' query. after must be a sequence
// number the log has reached: one past the head can only be a mistake (or
// a cursor from a log restored to an earlier state), and is refused with
// the head rather than answered with nothing.
func (h *Handler) auditFilter(r *http.Request, p core.Principal) (core.AuditFilter, int, error) {
	q := r.URL.Query()
	f := core.AuditFilter{TargetID: q.Get("target"), ActorID: q.Get("actor"), Action: q.Get("action")}
	if a := q.Get("after"); a != "" {
		n, err := strconv.ParseUint(a, 10, 64)
		if err != nil {
			return f, 0, &apiError{http.StatusBadRequest, probBadRequest, "Bad query parameter", fmt.Sprintf("after=%q must be an audit sequence number", a)}
		}
		head, err := h.svc.AuditHead(p)
		if err != nil {
			return f, 0, err
		}
		if n > head.Seq {
			return f, 0, &apiError{http.StatusBadRequest, probBadRequest, "Bad query parameter",
				fmt.Sprintf("after=%d is past the last audit event (seq %d); use a seq or next_cursor the log gave you, or 0 for the start", n, head.Seq)}
		}
		f.After = n
	}
	pg, err := pageReq(r)
	return f, pg.Limit, err
}

func (h *Handler) listAudit(r *http.Request, p core.Principal) (int, any, error) {
	f, limit, err := h.auditFilter(r, p)
	if err != nil {
		return 0, nil, err
	}
	recs, next, err := h.svc.ListAuditPage(r.Context(), p, f, limit)
	if err != nil {
		return 0, nil, err
	}
	out := api.Page[api.AuditEvent]{Items: make([]api.AuditEvent, 0, len(recs))}
	for _, rec := range recs {
		ev, err := rec.API()
		if err != nil {
			return 0, nil, err
		}
		out.Items = append(out.Items, ev)
	}
	if next != 0 {
		out.NextCursor = strconv.FormatUint(next, 10)
	}
	return http.StatusOK, out, nil
}

func (h *Handler) auditHead(r *http.Request, p core.Principal) (int, any, error) {
	head, err := h.svc.AuditHead(p)
	return http.StatusOK, api.AuditHead{Seq: head.Seq, Hash: audit.HexHash(head.Hash)}, err
}

// verifyAudit checks the log from the newest signed checkpoint, which
// costs the events since it, or with ?full=true (or before the first
// checkpoint) every record from the first, which costs the whole history.
func (h *Handler) verifyAudit(r *http.Request, p core.Principal) (int, any, error) {
	full := false
	if f := r.URL.Query().Get("full"); f != "" {
		var err error
		if full, err = strconv.ParseBool(f); err != nil {
			return 0, nil, &apiError{http.StatusBadRequest, probBadRequest, "Bad query parameter", fmt.Sprintf("full=%q must be true or false", f)}
		}
	}
	var cp *api.CheckpointCheck
	var cpHead audit.Head
	if h.checkpoints != nil {
		cp, cpHead = h.checkpoints.CheckCheckpoint(r.Context())
	}
	if cp != nil && !full {
		out := api.AuditVerification{OK: cp.OK, FromSeq: cp.Seq, Checked: cp.Checked, HeadSeq: cpHead.Seq, HeadHash: audit.HexHash(cpHead.Hash),
			BrokenAt: cp.BrokenAt, Checkpoint: cp}
		if cp.BrokenAt != 0 {
			out.Problem = cp.Problem
		}
		return http.StatusOK, out, nil
	}
	v, err := h.svc.VerifyAudit(r.Context(), p)
	if err != nil {
		return 0, nil, err
	}
	out := api.AuditVerification{OK: v.Break == nil, Full: true, Checked: v.Checked, HeadSeq: v.Head.Seq, HeadHash: audit.HexHash(v.Head.Hash), Checkpoint: cp}
	if v.Break != nil {
		out.BrokenAt, out.Problem = v.Break.Seq, v.Break.Reason
	}
	if cp != nil && !cp.OK {
		out.OK = false
	}
	return http.StatusOK, out, nil
}

// exportAudit streams the audit log as JSON lines. Once the first line is
// out, an error can only cut the stream short: the client sees a truncated
// export (the last line is incomplete or the count is short) and the
// daemon logs why.
func (h *Handler) exportAudit(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	foreground.Release(r.Context()) // an export lasts as long as its reader reads: no sweep waits for it
	f, _, err := h.auditFilter(r, p)
	if err != nil {
		return err
	}
	if !p.Can(core.ReadAudit, "") {
		return &core.ForbiddenError{Principal: p.Username, Action: core.ReadAudit}
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	err = h.svc.ExportAudit(r.Context(), p, f.After, func(rec audit.Record) error {
		ev, err := rec.API()
		if err != nil {
			return err
		}
		return enc.Encode(ev)
	})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		h.log.Error("audit export cut short", "err", err, "path", r.URL.Path)
	}
	return nil
}
