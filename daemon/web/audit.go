package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/events"
	"github.com/keyfleet/keyfleet/daemon/foreground"
	"github.com/keyfleet/keyfleet/internal/csvsafe"
)

// The audit log page: newest first, filtered by words (a username for the
// user the events are about and for the actor, an action picked from a
// list, a lowest severity, a period), 100 at a time with a link to older
// ones; the same filters export as JSON lines (the event sinks' format,
// docs/events.md) or CSV; and the hash chain check.

// auditFilters is the filter form as the page reads it.
type auditFilters struct {
	User, Actor, Action, Severity, Since, From, To string
}

func (f auditFilters) query() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"user": f.User, "actor": f.Actor, "action": f.Action, "severity": f.Severity,
		"since": f.Since, "from": f.From, "to": f.To} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// Query is the filters as a URL query ("user=alice&severity=high").
func (f auditFilters) Query() string { return f.query().Encode() }

type auditRow struct {
	audit.Event
	Severity   string
	ActorLink  string // the actor's user page, for a person
	TargetLink string
}

type auditPage struct {
	auditFilters
	Rows     []auditRow
	Next     uint64
	Scanned  int
	Chain    *core.ChainReport
	ChainErr string
	// Actions and Severities fill the selects; Periods the "when" one.
	Actions    []actionChoice
	Severities []string
	Periods    [][2]string
	Error      string
}

var auditPeriods = [][2]string{{"", "any time"}, {"1h", "the last hour"}, {"24h", "the last day"}, {"168h", "the last 7 days"}, {"720h", "the last 30 days"}}

func readAuditFilters(rq *request) auditFilters {
	q := rq.r.URL.Query()
	return auditFilters{User: strings.TrimSpace(q.Get("user")), Actor: strings.TrimSpace(q.Get("actor")), Action: q.Get("action"),
		Severity: q.Get("severity"), Since: q.Get("since"), From: q.Get("from"), To: q.Get("to")}
}

func (h *handler) auditLog(rq *request) error {
	f := readAuditFilters(rq)
	d := auditPage{auditFilters: f, Actions: actionChoices, Severities: events.Severities, Periods: auditPeriods}
	before, _ := strconv.ParseUint(rq.r.URL.Query().Get("before"), 10, 64)
	q, err := h.auditQuery(rq, f)
	if err != nil {
		_, d.Error = h.describe(rq, err)
	} else {
		q.Before = before
		pg, err := h.svc.ListAuditNewest(rq.ctx, rq.p, q, 100)
		if err != nil {
			return err
		}
		d.Next, d.Scanned = pg.Next, pg.Scanned
		names := map[string]string{}
		for _, ev := range pg.Events {
			d.Rows = append(d.Rows, h.auditRow(h.named(rq, ev, names)))
		}
	}
	if rq.r.URL.Query().Get("verify") == "1" {
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

func (h *handler) auditRow(ev audit.Event) auditRow {
	r := auditRow{Event: ev, Severity: severityOf(ev)}
	if strings.HasPrefix(ev.Actor.ID, "usr_") {
		r.ActorLink = "/admin/users/" + ev.Actor.ID
	}
	if ev.Target.Type == "user" {
		r.TargetLink = "/admin/users/" + ev.Target.ID
	} else if u := ev.Extra["user_id"]; u != "" {
		r.TargetLink = "/admin/users/" + u
	}
	return r
}

// named fills in the names of people an event records by id only (an
// action taken before its actor had a name in the session), so the page
// names people; names caches the lookups of one page.
func (h *handler) named(rq *request, ev audit.Event, names map[string]string) audit.Event {
	name := func(id string) string {
		if n, ok := names[id]; ok {
			return n
		}
		n := ""
		if u, err := h.svc.GetUser(rq.ctx, rq.p, id); err == nil {
			n = u.Username
		}
		names[id] = n
		return n
	}
	if ev.Actor.Name == "" && strings.HasPrefix(ev.Actor.ID, "usr_") {
		ev.Actor.Name = name(ev.Actor.ID)
	}
	if ev.Approver != nil && ev.Approver.Name == "" && strings.HasPrefix(ev.Approver.ID, "usr_") {
		a := *ev.Approver
		a.Name = name(a.ID)
		ev.Approver = &a
	}
	return ev
}

// severityOf is the severity the event sinks give the event.
func severityOf(ev audit.Event) string {
	ae := api.AuditEvent{Seq: ev.Seq, Time: ev.Time, Actor: ev.Actor, Approver: ev.Approver, Action: ev.Action, Target: ev.Target,
		Before: ev.Before, After: ev.After, Reason: ev.Reason, Extra: ev.Extra}
	return events.Severity(ev.Action, ae)
}

// auditQuery turns the words of the form into a query: usernames become
// ids (the user's factors and recovery cases count as about them), the
// period becomes times, the severity a lowest level.
func (h *handler) auditQuery(rq *request, f auditFilters) (core.AuditQuery, error) {
	var q core.AuditQuery
	var checks []func(audit.Event) bool
	if f.Action != "" {
		if strings.HasSuffix(f.Action, ".*") {
			prefix := strings.TrimSuffix(f.Action, "*")
			checks = append(checks, func(ev audit.Event) bool { return strings.HasPrefix(ev.Action, prefix) })
		} else {
			q.Action = f.Action
		}
	}
	if f.Actor != "" {
		id, err := h.userRef(rq, f.Actor)
		if err != nil {
			return q, err
		}
		q.ActorID = id
	}
	if f.User != "" {
		about, err := h.aboutUser(rq, f.User)
		if err != nil {
			return q, err
		}
		checks = append(checks, about)
	}
	if i := slices.Index(events.Severities, f.Severity); i > 0 {
		checks = append(checks, func(ev audit.Event) bool { return slices.Index(events.Severities, severityOf(ev)) >= i })
	}
	if err := h.period(f, &q); err != nil {
		return q, err
	}
	if len(checks) > 0 {
		q.Match = func(ev audit.Event) bool {
			for _, c := range checks {
				if !c(ev) {
					return false
				}
			}
			return true
		}
	}
	return q, nil
}

// period reads "since" (a duration back from now) or from/to dates.
func (h *handler) period(f auditFilters, q *core.AuditQuery) error {
	if f.Since != "" {
		d, err := time.ParseDuration(f.Since)
		if err != nil || d <= 0 {
			return &pageError{Status: http.StatusBadRequest, Msg: "Pick a period from the list."}
		}
		q.Since = h.now().Add(-d)
	}
	for _, p := range []struct {
		s   string
		t   *time.Time
		add time.Duration
	}{{f.From, &q.Since, 0}, {f.To, &q.Until, 24 * time.Hour}} {
		if p.s == "" {
			continue
		}
		t, err := time.Parse("2006-01-02", p.s)
		if err != nil {
			return &pageError{Status: http.StatusBadRequest, Msg: "Give dates like 2026-07-01."}
		}
		*p.t = t.Add(p.add)
	}
	return nil
}

// userRef finds a user by name (or id) for a filter.
func (h *handler) userRef(rq *request, name string) (string, error) {
	if name == "keyfleetd" || name == agent.Username {
		return name, nil
	}
	u, err := h.svc.GetUser(rq.ctx, rq.p, name)
	if err != nil {
		return "", &pageError{Status: http.StatusBadRequest, Msg: fmt.Sprintf("There is no user %q. Type a username as it appears in the user list.", name)}
	}
	return u.ID, nil
}

// aboutUser matches events about a user: the user, their factors and
// recovery cases, and verifications of theirs.
func (h *handler) aboutUser(rq *request, name string) (func(audit.Event) bool, error) {
	id, err := h.userRef(rq, name)
	if err != nil {
		return nil, err
	}
	ids := map[string]bool{id: true}
	if fs, err := h.allFactors(rq, core.FactorFilter{UserID: id}); err == nil {
		for _, f := range fs {
			ids[f.ID] = true
		}
	}
	if rq.p.Allowed(core.ReadRecovery) {
		if cs, _, err := h.svc.ListRecovery(rq.ctx, rq.p, core.RecoveryFilter{UserID: id}, core.PageReq{Limit: core.MaxPageSize}); err == nil {
			for _, c := range cs {
				ids[c.ID] = true
			}
		}
	}
	return func(ev audit.Event) bool { return ids[ev.Target.ID] || ev.Extra["user_id"] == id }, nil
}

// auditExport streams every event the filters match, oldest first, as
// JSON lines (the event sinks' format) or CSV (a cell a spreadsheet would
// run as a formula is written as text).
func (h *handler) auditExport(rq *request) error {
	f := readAuditFilters(rq)
	q, err := h.auditQuery(rq, f)
	if err != nil {
		return err
	}
	format := rq.r.URL.Query().Get("format")
	if format != "jsonl" && format != "csv" {
		return &pageError{Status: http.StatusBadRequest, Msg: "Export as JSON lines or CSV."}
	}
	name := "keyfleet-audit-" + h.now().Format("20060102-150405") + "." + format
	hd := rq.w.Header()
	hd.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	var write func(events.Event) error
	if format == "jsonl" {
		hd.Set("Content-Type", "application/x-ndjson")
		enc := json.NewEncoder(rq.w)
		write = func(e events.Event) error { return enc.Encode(e) }
	} else {
		hd.Set("Content-Type", "text/csv; charset=utf-8")
		w := csvsafe.NewWriter(rq.w)
		w.Write(csvHeader)
		write = func(e events.Event) error { return w.Write(csvRow(e)) }
		defer w.Flush()
	}
	foreground.Release(rq.ctx) // an export lasts as long as its reader reads: no sweep waits for it
	return h.svc.ExportAudit(rq.ctx, rq.p, 0, func(r audit.Record) error {
		ev, err := r.Event()
		if err != nil || !matchQuery(q, ev) {
			return err
		}
		e, err := events.FromRecord(r)
		if err != nil {
			return err
		}
		return write(e)
	})
}

// matchQuery applies a page query to one event, for the export.
func matchQuery(q core.AuditQuery, ev audit.Event) bool {
	return (q.ActorID == "" || ev.Actor.ID == q.ActorID) && (q.Action == "" || ev.Action == q.Action) &&
		(q.Since.IsZero() || !ev.Time.Before(q.Since)) && (q.Until.IsZero() || ev.Time.Before(q.Until)) &&
		(q.Match == nil || q.Match(ev))
}

var csvHeader = []string{"seq", "time", "severity", "actor", "actor_id", "auth", "action", "target_type", "target", "target_id",
	"approver", "reason", "source", "request_id", "details", "hash"}

func csvRow(e events.Event) []string {
	approver := ""
	if e.Approver != nil {
		approver = e.Approver.Name
	}
	details, _ := json.Marshal(map[string]any{"before": e.Before, "after": e.After, "extra": e.Extra})
	return []string{strconv.FormatUint(e.Seq, 10), e.Time.UTC().Format(time.RFC3339Nano), e.Severity, e.Actor.Name, e.Actor.ID, e.Actor.Auth,
		e.Action, e.Target.Type, e.Target.Name, e.Target.ID, approver, e.Reason, e.Source, e.RequestID, string(details), e.Hash}
}

// actionChoice is an audit action with its words, for the filter.
type actionChoice struct{ Action, Words string }

// actionChoices are the actions people look for, grouped by what they
// are about; "x.*" picks every action of a kind.
var actionChoices = []actionChoice{
	{"user.*", "anything about users"}, {"user.create", "user created"}, {"user.update", "user changed"},
	{"user.disable", "user disabled"}, {"user.enable", "user enabled"}, {"user.lockout", "user locked out"},
	{"user.app_sign_in", "signed in with an authenticator app"}, {"user.app_sign_in_refused", "app sign-in refused"},
	{"user.push_sign_in", "signed in with a push"}, {"user.push_sign_in_refused", "push sign-in refused"},
	{"factor.*", "anything about factors"}, {"factor.enrol", "factor enrolled"}, {"factor.verify", "verified"},
	{"factor.verify_failed", "verification failed"}, {"factor.lockout", "factor locked out"}, {"factor.suspend", "factor suspended"},
	{"factor.resume", "factor resumed"}, {"factor.revoke", "factor revoked"}, {"device.lost", "key reported lost"},
	{"approval.*", "anything about approvals"}, {"approval.request", "approval requested"}, {"approval.approve", "request approved"},
	{"approval.deny", "request denied"}, {"approval.refused", "refused attempt to decide"},
	{"recovery.*", "anything about recovery"}, {"pass.redeem", "access pass redeemed"},
	{"policy.*", "anything about the policy"}, {"policy.apply", "policy applied"},
	{"token.*", "anything about tokens"}, {"breakglass.*", "break-glass"}, {"audit.*", "the audit log itself"},
}
