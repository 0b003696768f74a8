package web

import (
	"net/http"
	"slices"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// Recovery cases on a user's page (docs/recovery.md): the helpdesk opens a
// case, confirms the user's identity with a recovery code they read out or
// records an identity check that a second officer approves, then issues a
// temporary access pass, shown once. Every call goes through core as the
// signed-in staff member, so core's permissions and rules decide.

// caseView is a recovery case with what the page needs beside it.
type caseView struct {
	api.RecoveryCase
	// Pending is the identity check waiting for a second officer, if any.
	Pending *core.Approval
	Lost    []string // labels of the lost factors
}

// identityMethods are the helpdesk checks core accepts, with their words.
var identityMethods = [][2]string{
	{"in_person_id", "Photo ID seen in person"},
	{"video_call_manager", "Video call with their manager"},
	{"callback_known_number", "Called back on a number on file"},
	{"other", "Other (describe it)"},
}

// passTTLs are the pass lifetimes offered (core allows 10m to 8h).
var passTTLs = [][2]string{{"30m", "30 minutes"}, {"1h", "1 hour"}, {"4h", "4 hours"}, {"8h", "8 hours"}}

// recoveryCases shows a user's cases, newest first, with their pending
// identity checks.
func (h *handler) recoveryCases(cs []core.RecoveryCase, fs []core.Factor, pending []core.Approval) []caseView {
	now := h.now()
	out := make([]caseView, 0, len(cs))
	for i := len(cs) - 1; i >= 0; i-- {
		c := cs[i]
		v := caseView{RecoveryCase: c.API(now)}
		for _, a := range pending {
			if a.Action == api.ActionRecoveryIdentity && a.TargetID == c.ID {
				v.Pending = &a
			}
		}
		for _, id := range c.LostFactorIDs {
			v.Lost = append(v.Lost, factorName(fs, id))
		}
		out = append(out, v)
	}
	return out
}

func factorName(fs []core.Factor, id string) string {
	if i := slices.IndexFunc(fs, func(f core.Factor) bool { return f.ID == id }); i >= 0 && fs[i].Label != "" {
		return fs[i].Label
	}
	return id
}

// openRecovery opens a case for the user: the lost factors (none ticked:
// every factor that is not revoked), optionally suspended now, and
// optionally a key marked lost, which revokes every factor on it.
func (h *handler) openRecovery(rq *request) error {
	if err := rq.r.ParseForm(); err != nil {
		return &pageError{Status: http.StatusBadRequest, Msg: "The form was not understood. Reload the page and try again."}
	}
	in := api.OpenRecovery{User: rq.r.PathValue("id"), Reason: rq.r.PostFormValue("reason"), LostFactors: rq.r.PostForm["lost"],
		Suspend: rq.r.PostFormValue("suspend") != "", LostDevice: rq.r.PostFormValue("lost_device")}
	c, err := h.svc.OpenRecovery(rq.ctx, rq.p, in)
	if err != nil {
		return err
	}
	return rq.backToUser(c.UserID, "Recovery case "+c.ID+" is open. Confirm who the user is next: a recovery code they read out, or an identity check a second officer approves.")
}

// confirmWithCode checks a recovery code the user reads out.
func (h *handler) confirmWithCode(rq *request) error {
	c, err := h.svc.ConfirmWithRecoveryCode(rq.ctx, rq.p, rq.r.PathValue("id"), rq.r.PostFormValue("code"))
	if err != nil {
		return err
	}
	return rq.backToUser(c.UserID, "Identity confirmed with a recovery code. You can issue a temporary access pass now.")
}

// identityCheck records how the helpdesk checked who the user is; a
// second officer approves it in the queue, which confirms the case.
func (h *handler) identityCheck(rq *request) error {
	id := rq.r.PathValue("id")
	c, err := h.svc.GetRecovery(rq.ctx, rq.p, id)
	if err != nil {
		return err
	}
	a, err := h.svc.RequestIdentityCheck(rq.ctx, rq.p, id, api.IdentityCheck{Method: rq.r.PostFormValue("method"), Detail: rq.r.PostFormValue("detail")})
	if err != nil {
		return err
	}
	return rq.backToUser(c.UserID, "Identity check recorded (approval "+a.ID+"). A security officer or administrator other than you must approve it before a pass can be issued.")
}

// passShown is a pass just issued, shown on the user's page this once.
type passShown struct{ Pass api.IssuedPass }

// issuePass issues the case's temporary access pass and shows it once:
// it is not stored anywhere the pages can show it again.
func (h *handler) issuePass(rq *request) error {
	pass, a, err := h.svc.IssuePass(rq.ctx, rq.p, rq.r.PathValue("id"), issuePassForm(rq))
	return h.showPass(rq, passShown{Pass: pass}, a, err)
}

// issueOnboardingPass issues a pass for the first key of a user who has
// none, and shows it this once on their page.
func (h *handler) issueOnboardingPass(rq *request) error {
	pass, a, err := h.svc.IssueOnboardingPass(rq.ctx, rq.p, rq.r.PathValue("id"), issuePassForm(rq))
	return h.showPass(rq, passShown{Pass: pass}, a, err)
}

// showPass renders the user's page with a pass just issued (unless err),
// or says that a staff account's pass waits for a second officer, who
// will be shown it.
func (h *handler) showPass(rq *request, shown passShown, a core.Approval, err error) error {
	if err != nil {
		return err
	}
	if a.ID != "" {
		return rq.redirect("/admin/approvals", "A pass for "+a.TargetName+" needs a second officer: request "+a.ID+" waits for them, and the pass is shown to them when they approve it.")
	}
	d, err := h.loadUserPage(rq, shown.Pass.UserID)
	if err != nil {
		return err
	}
	d.Pass = &shown
	h.render(rq, http.StatusOK, "user", d.User.Username, d)
	return nil
}

func (h *handler) cancelRecovery(rq *request) error {
	c, err := h.svc.CancelRecovery(rq.ctx, rq.p, rq.r.PathValue("id"), rq.r.PostFormValue("reason"))
	if err != nil {
		return err
	}
	return rq.backToUser(c.UserID, "Recovery case "+c.ID+" is cancelled. Suspended factors stay suspended: resume or revoke them.")
}

func (h *handler) clearRecoveryLock(rq *request) error {
	u, err := h.svc.ClearRecoveryLock(rq.ctx, rq.p, rq.r.PathValue("id"), "cleared from the dashboard")
	if err != nil {
		return err
	}
	return rq.backToUser(u.ID, "Recovery for "+u.Username+" is unlocked.")
}

// exemptionView is an approved exemption, read from its approval (the
// exemption's id is its approval's id).
type exemptionView struct {
	ID          string
	Until       string
	Reason      string
	RequestedBy string
	ApprovedBy  string
	Current     bool
}

// exemptions lists the user's approved exemptions, newest first, for
// those who may read the user's MFA status.
func (h *handler) exemptions(rq *request, userID string) []exemptionView {
	if !rq.p.Allowed(core.ReadMFAStatus) {
		return nil
	}
	xs, err := h.svc.ListExemptions(rq.ctx, rq.p, userID)
	if err != nil {
		return nil
	}
	now := h.now()
	out := make([]exemptionView, 0, len(xs))
	for _, x := range xs {
		v := exemptionView{ID: x.ID, Until: when(x.Until), Reason: x.Reason, RequestedBy: x.RequestedBy.Name, Current: x.Until.After(now)}
		if x.ApprovedBy != nil {
			v.ApprovedBy = x.ApprovedBy.Name
		}
		out = append(out, v)
	}
	return out
}

// requestExemption asks for the user to be exempt until a date; a second
// person approves it.
func (h *handler) requestExemption(rq *request) error {
	until, err := time.Parse("2006-01-02", rq.r.PostFormValue("until"))
	if err != nil {
		return &pageError{Status: http.StatusBadRequest, Msg: "Give the date the exemption ends, like 2026-07-01."}
	}
	a, err := h.svc.RequestExemption(rq.ctx, rq.p, rq.r.PathValue("id"), api.CreateExemption{Until: until.UTC(), Reason: rq.r.PostFormValue("reason")})
	if err != nil {
		return err
	}
	return rq.backToUser(a.TargetID, "Exemption until "+when(until)+" requested (approval "+a.ID+"). A security officer or administrator other than you must approve it.")
}
