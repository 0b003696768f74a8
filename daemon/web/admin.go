package web

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// overviewLimit bounds what the overview reads to draw adoption over
// time; past it the chart covers the first users only (the report's
// numbers still cover everyone).
const overviewLimit = 5000

type overview struct {
	Report    *api.ComplianceReport
	Groups    barChart
	Trend     lineChart
	Pending   []core.Approval
	NearDays  int
	ReportErr string
	// Sinks is the event sinks' health (ShowSinks: the reader may see it).
	Sinks     []sinkView
	ShowSinks bool
	// BreakGlass is the break-glass credential's state (nil: not shown).
	BreakGlass *breakGlassView
	// Privilege is the newest changes and uses of privilege (grants,
	// approvals, refused attempts, service tokens, break-glass), for
	// readers of the audit trail.
	Privilege []api.AuditEvent
	// Recovery counts the cases that need someone (nil: not shown).
	Recovery *recoverySummary
	// Directory is the directory sources' last syncs and drift (nil: not
	// shown); DirectoryErr why it could not be read.
	Directory    *api.DirectoryOverview
	DirectoryErr string
}

// recoverySummary is the overview's recovery tile.
type recoverySummary struct {
	Count   int
	Oldest  string // age of the oldest
	Waiting int    // identity checks or staff passes waiting for a second officer
}

func (h *handler) overview(rq *request) error {
	d := overview{NearDays: 14}
	if rq.p.Allowed(core.ReadReports) {
		rep, err := h.svc.ComplianceReport(rq.ctx, rq.p, "", 14*24*time.Hour)
		if err != nil {
			_, d.ReportErr = h.describe(rq, err)
		} else {
			d.Report, d.Groups = &rep, newBarChart(byGroup(rep.ByGroup))
		}
	}
	if rq.p.Allowed(core.ReadUsers) && rq.p.Allowed(core.ReadFactors) {
		users, _, err := h.svc.ListUsers(rq.ctx, rq.p, core.UserFilter{}, core.PageReq{Limit: core.MaxPageSize})
		if err != nil {
			return err
		}
		factors, err := h.allFactors(rq, core.FactorFilter{})
		if err != nil {
			return err
		}
		d.Trend = newLineChart(adoptionOverTime(users, factors, h.now(), 12))
	}
	if rq.p.Allowed(core.ReadApprovals) {
		as, _, err := h.svc.ListApprovals(rq.ctx, rq.p, api.ApprovalPending, core.PageReq{Limit: 20})
		if err != nil {
			return err
		}
		d.Pending = as
	}
	if rq.p.Allowed(core.ReadRecovery) {
		cs, err := h.activeCases(rq, false)
		if err != nil {
			return err
		}
		d.Recovery = &recoverySummary{Count: len(cs), Waiting: len(h.pendingChecks(rq))}
		if len(cs) > 0 {
			d.Recovery.Oldest = age(h.now().Sub(cs[0].OpenedAt))
		}
	}
	d.Sinks, d.ShowSinks = h.sinks(rq)
	d.Directory, d.DirectoryErr = h.directory(rq)
	d.BreakGlass = h.breakGlass(rq)
	if rq.p.Allowed(core.ReadAudit) {
		var err error
		if d.Privilege, err = h.svc.PrivilegeEvents(rq.ctx, rq.p, 10); err != nil {
			return err
		}
	}
	h.render(rq, http.StatusOK, "overview", "Overview", d)
	return nil
}

// allFactors pages through factors, up to overviewLimit.
func (h *handler) allFactors(rq *request, f core.FactorFilter) ([]core.Factor, error) {
	var out []core.Factor
	pg := core.PageReq{Limit: core.MaxPageSize}
	for len(out) < overviewLimit {
		fs, next, err := h.svc.ListFactors(rq.ctx, rq.p, f, pg)
		if err != nil {
			return nil, err
		}
		out = append(out, fs...)
		if next == "" {
			break
		}
		pg.After = next
	}
	return out, nil
}

type userRow struct {
	User   core.User
	Status api.MFAStatus
}

type usersPage struct {
	Query, Group, Status, Compliance, Next string
	Rows                                   []userRow
	Compliances                            []string
}

// usersList searches users; the compliance filter applies to the page
// read (50 users), since compliance is evaluated per user.
func (h *handler) usersList(rq *request) error {
	q := rq.r.URL.Query()
	d := usersPage{Query: q.Get("q"), Group: q.Get("group"), Status: q.Get("status"), Compliance: q.Get("compliance"),
		Compliances: []string{"compliant", "exempt", "grace", "non_compliant"}}
	f := core.UserFilter{Query: d.Query, Group: d.Group, Status: d.Status}
	users, next, err := h.svc.ListUsers(rq.ctx, rq.p, f, core.PageReq{After: q.Get("after"), Limit: 50})
	if err != nil {
		return err
	}
	d.Next = next
	for _, u := range users {
		row := userRow{User: u}
		if rq.p.Allowed(core.ReadMFAStatus) {
			row.Status, _ = h.svc.MFAStatus(rq.ctx, rq.p, u.ID)
		}
		if matchesCompliance(row.Status, d.Compliance) {
			d.Rows = append(d.Rows, row)
		}
	}
	h.render(rq, http.StatusOK, "users", "Users", d)
	return nil
}

// matchesCompliance filters by status in the words the page shows: an
// exempt user is "exempt", not "compliant".
func matchesCompliance(st api.MFAStatus, want string) bool {
	switch want {
	case "":
		return true
	case "exempt":
		return st.ExemptUntil != nil
	case "compliant":
		return st.Status == want && st.ExemptUntil == nil
	}
	return st.Status == want
}

type userPage struct {
	User        core.User
	Status      api.MFAStatus
	StatusErr   string
	Factors     []core.Factor
	Devices     []core.Device
	Enrolments  []core.Enrolment
	Approvals   []core.Approval
	Audit       []audit.Event
	Code        string
	CodeExpires time.Time
	KeyKind     string
	// Cases are the user's recovery cases, newest first; Pass is a pass
	// just issued, shown this once.
	Cases      []caseView
	Pass       *passShown
	Exemptions []exemptionView
	// Methods and TTLs fill the recovery forms' choices.
	Methods [][2]string
	TTLs    [][2]string
	// ActiveCount counts active factors: the last one goes only with a
	// replacement planned. Roles fill the edit form.
	ActiveCount int
	Roles       []roleChoice
	EditOpen    bool
}

// Unenrolled reports whether the user has no factor that is not revoked:
// only then may they get an access pass for a first key (core's rule).
func (d userPage) Unenrolled() bool {
	for _, f := range d.Factors {
		if f.State != api.FactorRevoked {
			return false
		}
	}
	return true
}

func (h *handler) userDetail(rq *request) error {
	d, err := h.loadUserPage(rq, rq.r.PathValue("id"))
	if err != nil {
		return err
	}
	h.render(rq, http.StatusOK, "user", d.User.Username, d)
	return nil
}

func (h *handler) loadUserPage(rq *request, ref string) (userPage, error) {
	u, err := h.svc.GetUser(rq.ctx, rq.p, ref)
	if err != nil {
		return userPage{}, err
	}
	d := userPage{User: u, KeyKind: h.cfg.KeyKind, Methods: identityMethods, TTLs: passTTLs, Roles: roleChoices(u.Roles)}
	if rq.p.Allowed(core.ReadMFAStatus) {
		if d.Status, err = h.svc.MFAStatus(rq.ctx, rq.p, u.ID); err != nil {
			_, d.StatusErr = h.describe(rq, err)
		}
	}
	page := core.PageReq{Limit: core.MaxPageSize}
	if d.Factors, _, err = h.svc.ListFactors(rq.ctx, rq.p, core.FactorFilter{UserID: u.ID}, page); err != nil {
		return d, err
	}
	for _, f := range d.Factors {
		if f.State == api.FactorActive {
			d.ActiveCount++
		}
	}
	nameFactors(&d.Status, d.Factors)
	if d.Devices, _, _, err = h.svc.ListDevices(rq.ctx, rq.p, core.DeviceFilter{UserID: u.ID}, page); err != nil {
		return d, err
	}
	if rq.p.Allowed(core.ReadEnrolments) {
		d.Enrolments, _, _ = h.svc.ListEnrolments(rq.ctx, rq.p, core.EnrolmentFilter{UserID: u.ID, State: api.EnrolmentOpen}, page)
	}
	var cs []core.RecoveryCase
	if rq.p.Allowed(core.ReadRecovery) {
		if cs, _, err = h.svc.ListRecovery(rq.ctx, rq.p, core.RecoveryFilter{UserID: u.ID}, page); err != nil {
			return d, err
		}
	}
	d.Approvals = h.approvalsAbout(rq, u.ID, d.Factors, cs)
	d.Cases = h.recoveryCases(cs, d.Factors, d.Approvals)
	d.Exemptions = h.exemptions(rq, u.ID)
	d.Audit = h.trail(rq, u.ID, d.Factors, cs, 50)
	return d, nil
}

// trail is the newest events about a user: the user, their factors and
// their recovery cases (a factor's enrolment, suspension or revocation
// names the factor, not the user), newest first, merged.
func (h *handler) trail(rq *request, userID string, fs []core.Factor, cs []core.RecoveryCase, limit int) []audit.Event {
	if !rq.p.Allowed(core.ReadAudit) {
		return nil
	}
	targets := []string{userID}
	for _, f := range fs {
		targets = append(targets, f.ID)
	}
	for _, c := range cs {
		targets = append(targets, c.ID)
	}
	var out []audit.Event
	for _, t := range targets {
		pg, err := h.svc.ListAuditNewest(rq.ctx, rq.p, core.AuditQuery{AuditFilter: core.AuditFilter{TargetID: t}}, limit)
		if err != nil {
			return out
		}
		out = append(out, pg.Events...)
	}
	slices.SortFunc(out, func(a, b audit.Event) int { return cmp.Compare(b.Seq, a.Seq) })
	out = out[:min(len(out), limit)]
	names := map[string]string{}
	for i := range out {
		out[i] = h.named(rq, out[i], names)
	}
	return out
}

// approvalsAbout lists pending requests about a user, their factors or
// their recovery cases.
func (h *handler) approvalsAbout(rq *request, userID string, fs []core.Factor, cs []core.RecoveryCase) []core.Approval {
	if !rq.p.Allowed(core.ReadApprovals) {
		return nil
	}
	as, _, err := h.svc.ListApprovals(rq.ctx, rq.p, api.ApprovalPending, core.PageReq{Limit: core.MaxPageSize})
	if err != nil {
		return nil
	}
	return slices.DeleteFunc(as, func(a core.Approval) bool {
		return a.TargetID != userID && !slices.ContainsFunc(fs, func(f core.Factor) bool { return f.ID == a.TargetID }) &&
			!slices.ContainsFunc(cs, func(c core.RecoveryCase) bool { return c.ID == a.TargetID })
	})
}

// backToUser ends an action on a user's page.
func (rq *request) backToUser(userID, flash string) error {
	return rq.redirect("/admin/users/"+userID, flash)
}

func (h *handler) factorAction(rq *request) error {
	id, reason := rq.r.PathValue("id"), rq.r.PostFormValue("reason")
	var f core.Factor
	var err error
	switch rq.r.PathValue("action") {
	case "suspend":
		f, err = h.svc.SuspendFactor(rq.ctx, rq.p, id, reason)
	case "resume":
		f, err = h.svc.ResumeFactor(rq.ctx, rq.p, id, reason)
	default:
		return &pageError{Status: http.StatusNotFound, Msg: "There is no such action on a factor."}
	}
	if err != nil {
		return err
	}
	return rq.backToUser(f.UserID, "Factor "+f.Label+" is now "+f.State+".")
}

// requestRevoke asks for a factor to be revoked; a second person approves.
func (h *handler) requestRevoke(rq *request) error {
	id := rq.r.PathValue("id")
	planned := rq.r.PostFormValue("replacement_planned") != ""
	a, err := h.svc.RequestFactorRemoval(rq.ctx, rq.p, id, api.ActionFactorRevoke, rq.r.PostFormValue("reason"), planned)
	if err != nil {
		return err
	}
	f, err := h.svc.GetFactor(rq.ctx, rq.p, id)
	if err != nil {
		return err
	}
	return rq.backToUser(f.UserID, "Revocation requested (approval "+a.ID+"). A second administrator or security officer must approve it.")
}

func (h *handler) requestReset(rq *request) error {
	a, err := h.svc.RequestUserAction(rq.ctx, rq.p, rq.r.PathValue("id"), api.ActionUserResetMFA, rq.r.PostFormValue("reason"))
	if err != nil {
		return err
	}
	return rq.backToUser(a.TargetID, "Reset of every factor requested (approval "+a.ID+"). A second person must approve it.")
}

func (h *handler) unlock(rq *request) error {
	u, err := h.svc.UnlockUser(rq.ctx, rq.p, rq.r.PathValue("id"), rq.r.PostFormValue("reason"))
	if err != nil {
		return err
	}
	return rq.backToUser(u.ID, u.Username+" is unlocked.")
}

func (h *handler) deviceLost(rq *request) error {
	d, _, err := h.svc.MarkDeviceLost(rq.ctx, rq.p, rq.r.PathValue("id"), rq.r.PostFormValue("reason"))
	if err != nil {
		return err
	}
	msg := "Key " + d.Serial + " is marked lost; its factors are revoked."
	if rq.r.PostFormValue("back") == "devices" || d.UserID == "" {
		return rq.redirect("/admin/devices", msg)
	}
	return rq.backToUser(d.UserID, msg)
}

// createCode opens a security-key enrolment for a user and shows its code
// once, for the administrator to hand over.
func (h *handler) createCode(rq *request) error {
	// A code lets its holder complete the enrolment: only those who may
	// complete it themselves hand one out.
	if !rq.p.Can(core.CompleteEnrol, rq.r.PathValue("id")) {
		return &pageError{Status: http.StatusForbidden, Msg: "Your role may not hand out enrolment codes: they let their holder complete the enrolment. Ask an administrator or an enroller, or issue an access pass for a first key."}
	}
	ttl := rq.r.PostFormValue("ttl")
	e, _, err := h.svc.CreateEnrolment(rq.ctx, rq.p, api.CreateEnrolment{User: rq.r.PathValue("id"), Kind: h.cfg.KeyKind, TTL: ttl})
	if err != nil {
		return err
	}
	d, err := h.loadUserPage(rq, e.UserID)
	if err != nil {
		return err
	}
	d.Code, d.CodeExpires = EnrolmentCode(e), e.ExpiresAt
	h.render(rq, http.StatusOK, "user", d.User.Username, d)
	return nil
}

// nameFactors writes factors by their labels in a status's reasons and
// next steps, which the policy writes with factor ids ("Replace factor
// fac_… with one the policy accepts"): people know their factors by name.
func nameFactors(st *api.MFAStatus, fs []core.Factor) {
	var pairs []string
	for _, f := range fs {
		if f.Label != "" {
			pairs = append(pairs, f.ID, "“"+f.Label+"”")
		}
	}
	if len(pairs) == 0 {
		return
	}
	r := strings.NewReplacer(pairs...)
	for i, s := range st.Reasons {
		st.Reasons[i] = r.Replace(s)
	}
	for i, s := range st.NextSteps {
		st.NextSteps[i] = r.Replace(s)
	}
}
