package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// self is the signed-in user acting on their own records. Everyone may
// look after their own factors, whatever their other roles: the user
// role, which grants only their own records, is added.
func (rq *request) self() core.Principal {
	p := rq.p
	if !slices.Contains(p.Roles, api.RoleUser) {
		p.Roles = append(slices.Clip(p.Roles), api.RoleUser)
	}
	return p
}

// selfEnrol is the principal that opens an enrolment for the signed-in
// user's own new factor: the user role may enrol its own factors.
func (rq *request) selfEnrol() core.Principal { return rq.self() }

type mePage struct {
	Status    api.MFAStatus
	StatusErr string
	Factors   []core.Factor
	Devices   []core.Device
	CanRevoke bool
	TOTP      bool
	KeyKind   string
	TOTPKind  string
	Requested string
	// CodesLeft is how many unused recovery codes the user has.
	CodesLeft int
	// NoKey: the user holds no active security key, so their app's code
	// proves their own actions (core allows it then); Apps are their
	// active authenticator apps, to pick the one that shows the code.
	NoKey bool
	Apps  []core.Factor
}

// proofArgs is what the "proofcode" template needs for one form.
type proofArgs struct {
	NoKey bool
	Apps  []core.Factor
	ID    string
}

// ProofFor is the proof-code fields of one form, named by suffix.
func (d mePage) ProofFor(suffix string) proofArgs {
	return proofArgs{NoKey: d.NoKey, Apps: d.Apps, ID: suffix}
}

func (h *handler) mePage(rq *request) error {
	p := rq.self()
	d := mePage{KeyKind: h.cfg.KeyKind, TOTPKind: h.cfg.TOTPKind, CanRevoke: p.Can(core.RemoveOwnFactors, p.UserID) || p.Can(core.RequestRevoke, p.UserID)}
	_, d.TOTP = h.svc.KindInfo(h.cfg.TOTPKind)
	st, err := h.svc.MFAStatus(rq.ctx, p, p.UserID)
	if err != nil {
		_, d.StatusErr = h.describe(rq, err)
	}
	d.Status = st
	fs, _, err := h.svc.ListFactors(rq.ctx, p, core.FactorFilter{UserID: p.UserID}, core.PageReq{Limit: core.MaxPageSize})
	if err != nil {
		return err
	}
	nameFactors(&d.Status, fs)
	d.Factors = slices.DeleteFunc(fs, func(f core.Factor) bool { return f.State == api.FactorRevoked })
	d.NoKey = true
	for _, f := range d.Factors {
		if f.State != api.FactorActive {
			continue
		}
		if info, ok := h.svc.KindInfo(f.Kind); ok && info.Hardware {
			d.NoKey = false
		}
		if f.Kind == h.cfg.TOTPKind {
			d.Apps = append(d.Apps, f)
		}
	}
	if d.CodesLeft, err = h.svc.RecoveryCodesRemaining(rq.ctx, p.UserID); err != nil {
		return err
	}
	if d.Devices, _, _, err = h.svc.ListDevices(rq.ctx, p, core.DeviceFilter{UserID: p.UserID}, core.PageReq{Limit: core.MaxPageSize}); err != nil {
		return err
	}
	h.render(rq, http.StatusOK, "me", "My keys", d)
	return nil
}

// keyBegin opens an enrolment of a security key for the user themselves.
func (h *handler) keyBegin(rq *request) error {
	e, _, err := h.svc.CreateEnrolment(rq.ctx, rq.selfEnrol(), api.CreateEnrolment{User: rq.user.ID, Kind: h.cfg.KeyKind})
	if err != nil {
		return err
	}
	return h.offerCreation(rq, e, viaSelf)
}

func (h *handler) keyFinish(rq *request) error {
	f, err := h.finishCreation(rq, rq.self(), viaSelf)
	if err != nil {
		return err
	}
	rq.sess.Flash = "Registered " + f.Label + "."
	writeJSON(rq.w, http.StatusOK, map[string]any{"redirect": "/me", "recovery_codes": f.RecoveryCodes})
	return nil
}

type totpPage struct {
	EnrolmentID string
	QR          qrCode
	Secret      string
	Error       string
	Label       string
	// Codes says what the policy asks of the app ("8-digit codes with
	// SHA256 every 60 s"); empty for the usual six digits, SHA1, 30 s.
	Codes string
	// Action is where the first code goes (default /me/totp/confirm).
	Action string
}

// totpBegin opens a TOTP enrolment and shows its seed once, as a QR code
// and as text for typing in.
func (h *handler) totpBegin(rq *request) error {
	e, display, err := h.svc.CreateEnrolment(rq.ctx, rq.selfEnrol(), api.CreateEnrolment{User: rq.user.ID, Kind: h.cfg.TOTPKind})
	if err != nil {
		return err
	}
	qr, err := newQR(display["uri"])
	if err != nil {
		return err
	}
	h.render(rq, http.StatusOK, "totp", "Add an authenticator app",
		totpPage{EnrolmentID: e.ID, QR: qr, Secret: display["secret"], Label: "Authenticator app", Codes: unusualTOTP(e.Params)})
	return nil
}

// totpConfirm completes the enrolment with a first code from the app.
func (h *handler) totpConfirm(rq *request) error {
	id, code, label := rq.r.PostFormValue("enrolment"), rq.r.PostFormValue("code"), rq.r.PostFormValue("label")
	payload, _ := json.Marshal(map[string]string{"code": code})
	_, err := h.svc.CompleteEnrolment(rq.ctx, rq.self(), id, api.CompleteEnrolment{Label: label, Payload: payload})
	if err != nil {
		status, msg := h.describe(rq, err)
		h.render(rq, status, "totp", "Add an authenticator app", totpPage{EnrolmentID: id, Error: msg, Label: label})
		return nil
	}
	return rq.redirect("/me", "Your authenticator app is added.")
}

func (h *handler) renameOwn(rq *request) error {
	label := rq.r.PostFormValue("label")
	f, err := h.svc.GetFactor(rq.ctx, rq.self(), rq.r.PathValue("id"))
	if err != nil {
		return err
	}
	if f.UserID != rq.user.ID {
		return &pageError{Status: http.StatusForbidden, Msg: "You can rename only your own factors here."}
	}
	if _, err := h.svc.RenameFactor(rq.ctx, rq.self(), f.ID, api.UpdateFactor{Label: &label}); err != nil {
		return err
	}
	return rq.redirect("/me", "Renamed to "+label+".")
}

// removeOwn removes one of the user's own factors: at once while they
// still meet the policy without it, otherwise as a revoke request that an
// administrator approves. A principal without that permission (an admin
// without the user role) asks for the revoke as an admin does; one with
// neither can suspend it, which takes it out of use at once.
func (h *handler) removeOwn(rq *request) error {
	p := rq.self()
	f, err := h.svc.GetFactor(rq.ctx, p, rq.r.PathValue("id"))
	if err != nil {
		return err
	}
	if f.UserID != rq.user.ID {
		return &pageError{Status: http.StatusForbidden, Msg: "You can remove only your own factors here."}
	}
	if p.Can(core.RemoveOwnFactors, f.UserID) {
		_, a, err := h.svc.RemoveOwnFactor(rq.ctx, p, f.ID, "removed by its owner on the self-service page")
		if err != nil {
			return err
		}
		if a.ID == "" {
			return rq.redirect("/me", "Removed "+f.Label+": it no longer works.")
		}
		return rq.redirect("/me", "Without "+f.Label+" you would fall short of the policy, so its removal waits for an administrator (approval "+a.ID+"). It keeps working until then.")
	}
	if !p.Can(core.RequestRevoke, f.UserID) {
		if _, err := h.svc.SuspendFactor(rq.ctx, p, f.ID, "removal asked by its owner"); err != nil {
			return err
		}
		return rq.redirect("/me", "Suspended "+f.Label+": it no longer works. Ask your helpdesk to remove it for good.")
	}
	a, err := h.svc.RequestFactorRevoke(rq.ctx, p, f.ID, "removal asked by its owner")
	if err != nil {
		return err
	}
	return rq.redirect("/me", "Removal requested (approval "+a.ID+"): another administrator must approve it.")
}

func signInURL(username string) string {
	return "/signin?" + url.Values{"user": {username}}.Encode()
}

// codesPage shows a new set of recovery codes, once. First: they came
// with a first factor; Next is where to go on.
type codesPage struct {
	Codes []string
	First bool
	Next  string
}

// regenerateCodes replaces the user's recovery codes and shows the new
// ones once; the old ones stop working. It needs a fresh step-up.
func (h *handler) regenerateCodes(rq *request) error {
	codes, err := h.svc.RegenerateRecoveryCodes(rq.ctx, rq.self(), "")
	if err != nil {
		return err
	}
	h.log.Info("web recovery codes regenerated", "user", rq.user.Username, "request_id", rq.id)
	h.render(rq, http.StatusOK, "codes", "New recovery codes", codesPage{Codes: codes})
	return nil
}

// unusualTOTP says what codes an enrolment asks of the app when they are
// not the six digits, SHA1 and 30 s every app makes: some apps ignore
// the other parameters in the QR code, and the person should know.
func unusualTOTP(raw json.RawMessage) string {
	var p struct{ Algorithm, Digits, Period string }
	if json.Unmarshal(raw, &p) != nil || p.Algorithm == "" || (p.Algorithm == "SHA1" && p.Digits == "6" && p.Period == "30") {
		return ""
	}
	return fmt.Sprintf("%s-digit codes with %s every %s seconds", p.Digits, p.Algorithm, p.Period)
}
