package web

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
)

type approvalsPage struct {
	Pending []core.Approval
	Recent  []core.Approval
}

func (h *handler) approvals(rq *request) error {
	var d approvalsPage
	var err error
	if d.Pending, _, err = h.svc.ListApprovals(rq.ctx, rq.p, api.ApprovalPending, core.PageReq{Limit: core.MaxPageSize}); err != nil {
		return err
	}
	all, _, err := h.svc.ListApprovals(rq.ctx, rq.p, "", core.PageReq{Limit: core.MaxPageSize})
	if err != nil {
		return err
	}
	for i := len(all) - 1; i >= 0 && len(d.Recent) < 50; i-- {
		if all[i].State != api.ApprovalPending {
			d.Recent = append(d.Recent, all[i])
		}
	}
	h.render(rq, http.StatusOK, "approvals", "Approvals", d)
	return nil
}

// decide approves or denies someone else's request. Approval executes the
// action in the same transaction (daemon/core).
func (h *handler) decide(rq *request) error {
	id, comment := rq.r.PathValue("id"), rq.r.PostFormValue("comment")
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
	return rq.redirect("/admin/approvals", "Request "+a.ID+" is "+a.State+".")
}

type policyPage struct {
	Current  core.PolicyVersion
	Versions []core.PolicyVersion
	Document string
	Comment  string
	DryRun   *api.PolicyDryRun
	Error    string
}

func (h *handler) policy(rq *request) error {
	d, err := h.loadPolicy(rq)
	if err != nil {
		return err
	}
	h.render(rq, http.StatusOK, "policy", "Policy", d)
	return nil
}

func (h *handler) loadPolicy(rq *request) (policyPage, error) {
	var d policyPage
	var err error
	if d.Current, err = h.svc.CurrentPolicy(rq.ctx, rq.p); err != nil {
		return d, err
	}
	vs, _, err := h.svc.ListPolicyVersions(rq.ctx, rq.p, core.PageReq{Limit: core.MaxPageSize})
	for i := len(vs) - 1; i >= 0; i-- {
		d.Versions = append(d.Versions, vs[i])
	}
	return d, err
}

// policyDocument reads the document from the upload, or the text area.
func policyDocument(rq *request) string {
	if f, _, err := rq.r.FormFile("file"); err == nil {
		defer f.Close()
		var b strings.Builder
		buf := make([]byte, 32<<10)
		for {
			n, err := f.Read(buf)
			b.Write(buf[:n])
			if err != nil || b.Len() > maxForm {
				break
			}
		}
		if b.Len() > 0 {
			return b.String()
		}
	}
	return rq.r.PostFormValue("document")
}

// dryRun shows what applying a document would do, changing nothing.
func (h *handler) dryRun(rq *request) error {
	d, err := h.loadPolicy(rq)
	if err != nil {
		return err
	}
	d.Document, d.Comment = policyDocument(rq), rq.r.PostFormValue("comment")
	run, err := h.svc.DryRunPolicy(rq.ctx, rq.p, api.PolicyDocument{Document: d.Document, Comment: d.Comment})
	status := http.StatusOK
	if err != nil {
		status, d.Error = h.describe(rq, err)
	} else {
		d.DryRun = &run
	}
	h.render(rq, status, "policy", "Policy", d)
	return nil
}

func (h *handler) applyPolicy(rq *request) error {
	// A form sends line breaks as CRLF; the proof was made over the text
	// the page holds (LF).
	doc := strings.ReplaceAll(rq.r.PostFormValue("document"), "\r\n", "\n")
	out, err := h.svc.ApplyPolicy(rq.ctx, rq.p, api.PolicyDocument{Document: doc, Comment: rq.r.PostFormValue("comment")})
	if err != nil {
		return err
	}
	if out.Approval != nil {
		return rq.redirect("/admin/policy", "The change weakens the policy, so it waits for a second person (approval "+out.Approval.ID+").")
	}
	return rq.redirect("/admin/policy", "Policy version "+strconv.Itoa(out.Version.Version)+" applied; "+
		strconv.Itoa(out.Reevaluation.Users)+" users re-evaluated.")
}

type auditPage struct {
	Actor, Action, Target string
	After                 uint64
	Events                []audit.Event
	Next                  uint64
	Chain                 *core.ChainReport
	ChainErr              string
}

func (h *handler) auditLog(rq *request) error {
	q := rq.r.URL.Query()
	after, _ := strconv.ParseUint(q.Get("after"), 10, 64)
	d := auditPage{Actor: q.Get("actor"), Action: q.Get("action"), Target: q.Get("target"), After: after}
	// One page, as the store bounds it: a filter that examined its bound
	// of events gives what it found and a link to go on.
	recs, next, err := h.svc.ListAuditPage(rq.ctx, rq.p, core.AuditFilter{After: after, ActorID: d.Actor, Action: d.Action, TargetID: d.Target}, 100)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if ev, err := r.Event(); err == nil {
			d.Events = append(d.Events, ev)
		}
	}
	d.Next = next
	if q.Get("verify") == "1" {
		rep, err := h.svc.VerifyAudit(rq.ctx, rq.p)
		if err != nil {
			_, d.ChainErr = h.describe(rq, err)
		} else {
			d.Chain = &rep
		}
	}
	h.render(rq, http.StatusOK, "audit", "Audit log", d)
	return nil
}

type devicesPage struct {
	State   string
	States  []string
	Devices []core.Device
	Factors map[string][]string
	Next    string
}

func (h *handler) devices(rq *request) error {
	q := rq.r.URL.Query()
	d := devicesPage{State: q.Get("state"), States: []string{api.DeviceInStock, api.DeviceAssigned, api.DeviceActive, api.DeviceReturned, api.DeviceLost, api.DeviceRetired, api.DeviceDestroyed}}
	var err error
	d.Devices, d.Factors, d.Next, err = h.svc.ListDevices(rq.ctx, rq.p, core.DeviceFilter{State: d.State}, core.PageReq{After: q.Get("after"), Limit: 100})
	if err != nil {
		return err
	}
	h.render(rq, http.StatusOK, "devices", "Devices", d)
	return nil
}
