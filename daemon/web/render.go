package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// view is what every page template gets.
type view struct {
	Title     string
	Page      string
	SignedIn  bool
	User      core.User
	Staff     bool
	Can       map[string]bool // permissions the nav and buttons depend on
	CSRF      string
	Flash     string
	SteppedUp bool
	Data      any
}

// render writes a page: the layout around the named template.
func (h *handler) render(rq *request, status int, page, title string, data any) {
	t, ok := h.pages[page]
	if !ok {
		http.Error(rq.w, "page template missing", http.StatusInternalServerError)
		return
	}
	v := view{Title: title, Page: page, SignedIn: rq.sess.SignedIn(), User: rq.user, Staff: rq.sess.SignedIn() && rq.isStaff(),
		CSRF: rq.sess.CSRF, Flash: rq.sess.Flash, SteppedUp: rq.sess.SignedIn() && h.steppedUp(rq), Data: data, Can: permissions(rq.p)}
	rq.sess.Flash = ""
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		h.log.Error("rendering page", "page", page, "request_id", rq.id, "err", err)
		http.Error(rq.w, "Something went wrong showing this page; request id "+rq.id, http.StatusInternalServerError)
		return
	}
	rq.w.Header().Set("Content-Type", "text/html; charset=utf-8")
	rq.w.WriteHeader(status)
	rq.w.Write(buf.Bytes())
}

// permissions are the checks pages use to show or hide actions. Showing is
// a courtesy: every action is checked again by the Service.
func permissions(p core.Principal) map[string]bool {
	return map[string]bool{
		"users":     p.Allowed(core.ReadUsers),
		"approvals": p.Allowed(core.ReadApprovals),
		"decide":    p.Allowed(core.DecideApprovals),
		"audit":     p.Allowed(core.ReadAudit),
		"verify":    p.Allowed(core.VerifyAudit),
		"policy":    p.Allowed(core.ReadPolicy),
		"apply":     p.Allowed(core.ApplyPolicy),
		"devices":   p.Scope(core.ReadDevices) == core.All,
		"suspend":   p.Scope(core.SuspendFactors) == core.All,
		"resume":    p.Allowed(core.ResumeFactors),
		"revoke":    p.Allowed(core.RequestRevoke),
		"reset":     p.Allowed(core.RequestUserMFA),
		"lost":      p.Scope(core.ReportLost) == core.All,
		"enrol":     p.Scope(core.CreateEnrolments) == core.All && p.Scope(core.CompleteEnrol) == core.All,
		"reports":   p.Allowed(core.ReadReports),
		"recovery":  p.Allowed(core.ReadRecovery),
		"recover":   p.Allowed(core.ManageRecovery),
		"clearlock": p.Allowed(core.ClearRecovery),
		"exempt":    p.Allowed(core.RequestExempt),
		"sinks":     p.Allowed(core.ReadAudit),
	}
}

var funcs = template.FuncMap{
	"when":     when,
	"ago":      ago,
	"join":     strings.Join,
	"pct":      func(f float64) string { return fmt.Sprintf("%.0f%%", f*100) },
	"evidence": evidence,
	"actor":    func(a api.Actor) string { return a.Name },
	"verb":     verb,
	"stateClass": func(s string) string {
		return "state-" + strings.ReplaceAll(s, "_", "-")
	},
	"dotted": dotted,
}

// dotted lets a dotted name (an audit action) break after its dots and
// nowhere else in a narrow column. Each part is escaped.
func dotted(s string) template.HTML {
	parts := strings.Split(s, ".")
	for i, p := range parts {
		parts[i] = template.HTMLEscapeString(p)
	}
	return template.HTML(strings.Join(parts, ".<wbr>"))
}

func when(t any) string {
	switch v := t.(type) {
	case time.Time:
		if v.IsZero() {
			return "—"
		}
		return v.UTC().Format("2006-01-02 15:04 UTC")
	case *time.Time:
		if v == nil {
			return "never"
		}
		return when(*v)
	}
	return ""
}

func ago(t *time.Time) string {
	if t == nil {
		return "never"
	}
	d := time.Since(*t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

func verb(action string) string {
	_, v, ok := strings.Cut(action, ".")
	if !ok {
		return action
	}
	return strings.ReplaceAll(v, "_", " ")
}

// evidence lists a factor's attestation evidence as label/value pairs,
// in a fixed order, leaving out what is empty.
func evidence(raw json.RawMessage) [][2]string {
	if len(raw) == 0 {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	var out [][2]string
	for _, f := range evidenceFields {
		if v, ok := m[f[0]]; ok && v != nil && fmt.Sprint(v) != "" && fmt.Sprint(v) != "false" {
			out = append(out, [2]string{f[1], fmt.Sprint(v)})
		}
	}
	return out
}

var evidenceFields = [][2]string{
	{"vendor", "Vendor"}, {"model", "Model"}, {"serial", "Serial"}, {"firmware", "Firmware"},
	{"form_factor", "Form factor"}, {"fips", "FIPS"}, {"pin_policy", "PIN policy"}, {"touch_policy", "Touch policy"},
	{"aaguid", "AAGUID"}, {"aaguid_attested", "AAGUID attested"}, {"format", "Attestation"}, {"advisories", "Advisories"},
}
