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
	// AppSession: the user signed in with an authenticator app (their own
	// pages only).
	AppSession bool
	Data       any
}

// render writes a page: the layout around the named template.
func (h *handler) render(rq *request, status int, page, title string, data any) {
	t, ok := h.pages[page]
	if !ok {
		http.Error(rq.w, "page template missing", http.StatusInternalServerError)
		return
	}
	v := view{Title: title, Page: page, SignedIn: rq.sess.SignedIn(), User: rq.user, Staff: rq.keySession() && rq.isStaff(), AppSession: rq.sess.Method == methodApp,
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
		"users":      p.Allowed(core.ReadUsers),
		"approvals":  p.Allowed(core.ReadApprovals),
		"decide":     p.Allowed(core.DecideApprovals),
		"audit":      p.Allowed(core.ReadAudit),
		"verify":     p.Allowed(core.VerifyAudit),
		"policy":     p.Allowed(core.ReadPolicy),
		"apply":      p.Allowed(core.ApplyPolicy),
		"devices":    p.Scope(core.ReadDevices) == core.All,
		"suspend":    p.Scope(core.SuspendFactors) == core.All,
		"resume":     p.Allowed(core.ResumeFactors),
		"revoke":     p.Allowed(core.RequestRevoke),
		"reset":      p.Allowed(core.RequestUserMFA),
		"lost":       p.Scope(core.ReportLost) == core.All,
		"enrol":      p.Scope(core.CreateEnrolments) == core.All && p.Scope(core.CompleteEnrol) == core.All,
		"reports":    p.Allowed(core.ReadReports),
		"recovery":   p.Allowed(core.ReadRecovery),
		"recover":    p.Allowed(core.ManageRecovery),
		"clearlock":  p.Allowed(core.ClearRecovery),
		"exempt":     p.Allowed(core.RequestExempt),
		"sinks":      p.Allowed(core.ReadAudit),
		"edituser":   p.Allowed(core.UpdateUsers),
		"createuser": p.Allowed(core.CreateUsers),
		"disable":    p.Allowed(core.RequestDisable),
		"enable":     p.Allowed(core.EnableUsers),
		"tokens":     p.Scope(core.ReadTokens) == core.All,
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
	"dotted":    dotted,
	"mfa":       mfaBadge,
	"firstName": func(s ...string) string { return firstNonEmpty(s...) },
	"chartArgs": func(c stackChart, id string) struct {
		C  stackChart
		ID string
	} {
		return struct {
			C  stackChart
			ID string
		}{c, id}
	},
	"last": func(s []string) int { return len(s) - 1 },
	"tokens": func(rows []tokenRow, csrf string, own bool) tokenTable {
		return tokenTable{Rows: rows, CSRF: csrf, Own: own}
	},
	"serviceTTLs": func() [][2]string { return serviceTTLs },
}

// tokenTable is one table of tokens on the tokens page.
type tokenTable struct {
	Rows []tokenRow
	CSRF string
	Own  bool
}

// badge is a status in words with its colour class.
type badge struct{ Class, Text string }

// mfaBadge says a user's MFA status in words: an exempt user reads as
// exempt (until when), never as compliant; a user no rule covers reads as
// "not required".
func mfaBadge(st api.MFAStatus) badge {
	switch {
	case st.ExemptUntil != nil:
		return badge{"state-exempt", "exempt until " + st.ExemptUntil.UTC().Format("2006-01-02")}
	case st.Status == "grace" && st.GraceUntil != nil:
		return badge{"state-grace", "in grace until " + st.GraceUntil.UTC().Format("2006-01-02")}
	case st.Status == "non_compliant":
		return badge{"state-non-compliant", "non-compliant"}
	case st.Status == "compliant" && len(st.ReasonDetails) > 0 && st.ReasonDetails[0].Code == "not_required":
		return badge{"state-not-required", "not required"}
	case st.Status == "":
		return badge{"", "unknown"}
	}
	return badge{"state-" + strings.ReplaceAll(st.Status, "_", "-"), strings.ReplaceAll(st.Status, "_", "-")}
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
