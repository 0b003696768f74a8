package web

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// The approvals queue: each request with a link to what it is about, what
// approving it will do in plain words, who may still decide it, and the
// approve and deny forms, which need a reason and the approver's own key
// (bound to this one request).

type approvalView struct {
	core.Approval
	// Link is the page of the request's target ("" when it has none).
	Link string
	// Preview says what approving does.
	Preview string
	// Approvers may still decide it (nil when the reader may not see
	// them); Mine: the reader asked for it.
	Approvers []core.Approver
	Listed    bool // Approvers was worked out (the first maxApproverLists)
	Mine      bool
}

// maxApproverLists bounds the requests whose possible approvers one page
// load works out: each reads the holders of the approving roles.
const maxApproverLists = 25

type approvalsPage struct {
	Pending []approvalView
	Recent  []approvalView
	// Issued is the pass an approval of a staff account's pass just
	// issued: shown to the approver this once.
	Issued    *api.IssuedPass
	IssuedFor string
}

func (h *handler) approvals(rq *request) error {
	d, err := h.loadApprovals(rq)
	if err != nil {
		return err
	}
	h.render(rq, http.StatusOK, "approvals", "Approvals", d)
	return nil
}

func (h *handler) loadApprovals(rq *request) (approvalsPage, error) {
	var d approvalsPage
	pending, _, err := h.svc.ListApprovals(rq.ctx, rq.p, api.ApprovalPending, core.PageReq{Limit: core.MaxPageSize})
	if err != nil {
		return d, err
	}
	for i, a := range pending {
		v := h.approvalView(rq, a)
		if i < maxApproverLists {
			v.Approvers, _ = h.svc.Approvers(rq.ctx, rq.p, a.ID)
			v.Listed = true
		}
		d.Pending = append(d.Pending, v)
	}
	all, _, err := h.svc.ListApprovals(rq.ctx, rq.p, "", core.PageReq{Limit: core.MaxPageSize})
	if err != nil {
		return d, err
	}
	for i := len(all) - 1; i >= 0 && len(d.Recent) < 50; i-- {
		if all[i].State != api.ApprovalPending {
			d.Recent = append(d.Recent, h.approvalView(rq, all[i]))
		}
	}
	return d, nil
}

// approvalView adds the link and the preview.
func (h *handler) approvalView(rq *request, a core.Approval) approvalView {
	v := approvalView{Approval: a, Mine: a.RequestedBy.ID == rq.p.UserID}
	owner, what := h.targetOf(rq, a)
	if owner != "" {
		v.Link = "/admin/users/" + owner
	}
	if a.TargetType == "policy" || a.Action == api.ActionPolicyApply {
		v.Link = "/admin/policy"
	}
	v.Preview = preview(a, what)
	return v
}

// targetOf finds the user a request is about and names its target in
// words ("alice's Phone app (totp)").
func (h *handler) targetOf(rq *request, a core.Approval) (userID, words string) {
	switch a.TargetType {
	case "user":
		return a.TargetID, a.TargetName
	case "factor":
		f, err := h.svc.GetFactor(rq.ctx, rq.p, a.TargetID)
		if err != nil {
			return "", "factor " + a.TargetName
		}
		name := f.UserID
		if u, err := h.svc.GetUser(rq.ctx, rq.p, f.UserID); err == nil {
			name = u.Username
		}
		return f.UserID, fmt.Sprintf("%s's %s (%s)", name, firstNonEmpty(f.Label, f.ID), f.Kind)
	case "recovery_case":
		c, err := h.svc.GetRecovery(rq.ctx, rq.p, a.TargetID)
		if err != nil {
			return "", "recovery case " + a.TargetID
		}
		return c.UserID, c.Username
	}
	return "", firstNonEmpty(a.TargetName, a.TargetID)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// preview says in plain words what approving a request does.
func preview(a core.Approval, what string) string {
	p := a.Params
	switch a.Action {
	case api.ActionFactorRevoke:
		s := "Revoke " + what + ": it stops working for good."
		if p["replacement_planned"] == "true" {
			s += " A replacement is planned: it may be their last active factor."
		}
		return s
	case api.ActionFactorDelete:
		return "Delete " + what + " and its secret material for good."
	case api.ActionUserDisable:
		return "Disable " + what + ": they are signed out everywhere, their tokens stop working, and nothing they asked for that still waits will run."
	case api.ActionUserDelete:
		return "Delete " + what + " and every record of theirs but the audit trail."
	case api.ActionUserResetMFA:
		return "Revoke every factor of " + what + ": they must enrol again with an enrolment code or an access pass."
	case api.ActionUserExempt:
		until := p["until"]
		if t, err := time.Parse(time.RFC3339, until); err == nil {
			until = t.UTC().Format("2006-01-02")
		}
		return "Exempt " + what + " from the policy until " + until + ": they count as compliant until then, whatever factors they hold."
	case api.ActionUserAccess:
		return accessWords(a) + " for " + what + "."
	case api.ActionPolicyApply:
		return policyPreview(p)
	case api.ActionRecoveryIdentity:
		return "Confirm that the person recovering " + what + "'s account is " + what + ", on the helpdesk's check: \u201c" + a.Reason + "\u201d. Then a temporary access pass can be issued to them."
	case api.ActionRecoveryPass:
		return "Issue a temporary access pass for the staff account " + what + ". It is shown once, to you: hand it over in person."
	case api.ActionBreakGlassRotate:
		return "Make a new break-glass credential, any " + p["threshold"] + " of the shares of " + strings.ReplaceAll(p["holders"], ",", ", ") + "; the old shares stop working."
	}
	return strings.ReplaceAll(a.Action, ".", " ") + " " + what + "."
}

func policyPreview(p map[string]string) string {
	s := "Apply a policy document (SHA-256 " + shortHash(p["sha256"]) + ") that weakens version " + p["base_version"]
	if r := p["rollback_of"]; r != "" {
		s = "Roll the policy back to version " + r + ", which weakens version " + p["base_version"]
	}
	switch w := p["weaker_changes"]; w {
	case "", "0":
	case "1":
		s += " (1 requirement weaker)"
	default:
		s += " (" + w + " requirements weaker)"
	}
	return s + ". The dry run on the policy page shows whom it affects."
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12] + "…"
	}
	return h
}

// decide approves or denies someone else's request. Approval executes the
// action in the same transaction (daemon/core). A reason is required.
func (h *handler) decide(rq *request) error {
	id, comment := rq.r.PathValue("id"), strings.TrimSpace(rq.r.PostFormValue("comment"))
	var a core.Approval
	var err error
	switch rq.r.PathValue("decision") {
	case "approve":
		a, err = h.svc.Approve(rq.ctx, rq.p, id, comment)
	case "deny":
		a, err = h.svc.Deny(rq.ctx, rq.p, id, comment)
	default:
		return &pageError{Status: http.StatusNotFound, Msg: "Approvals can be approved or denied, nothing else."}
	}
	if err != nil {
		return err
	}
	if pass := a.API(h.now()).IssuedPass; pass != nil {
		d, err := h.loadApprovals(rq)
		if err != nil {
			return err
		}
		d.Issued, d.IssuedFor = pass, a.TargetName
		rq.sess.Flash = "Request " + a.ID + " is approved: the pass is below, shown this once."
		h.render(rq, http.StatusOK, "approvals", "Approvals", d)
		return nil
	}
	return rq.redirect("/admin/approvals", "Request "+a.ID+" is "+a.State+".")
}
