package web

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/attest"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// The activity page: charts where people would rather look than read.
// Verifications per day by outcome and by kind, enrolments per day,
// lockouts per day (all from the audit log of the last days), and the
// active factors by kind and by model and firmware, with the models that
// have a known advisory highlighted. Each chart has its numbers as a
// table beside it (and in its SVG title), so it reads without colour and
// with a screen reader.

// activityDays is how far back the charts look; activityScan bounds the
// audit events one page load reads (the newest ones).
const (
	activityDays = 14
	activityScan = 100_000
)

type activityPage struct {
	Days         int
	Verification stackChart // by outcome
	ByKind       stackChart // successful verifications by kind
	Enrolments   stackChart
	Lockouts     stackChart
	Kinds        barChart
	Models       []modelRow
	Partial      bool // the read stopped at activityScan events
	ShowFactors  bool
	ShowAudit    bool
}

// modelRow is a key model and firmware with how many active factors
// are on it and whether an advisory affects it.
type modelRow struct {
	Model, Firmware, Advisory string
	Count                     int
	Width                     float64 // of a 300-pixel bar
}

func (h *handler) activity(rq *request) error {
	d := activityPage{Days: activityDays}
	now := h.now()
	if d.ShowAudit = rq.p.Allowed(core.ReadAudit); d.ShowAudit {
		counts, partial, err := h.countEvents(rq, now)
		if err != nil {
			return err
		}
		d.Partial = partial
		days := dayLabels(now, activityDays)
		d.Verification = newStackChart("Verifications per day by outcome", days, counts.outcome, []string{"success", "failed"})
		d.ByKind = newStackChart("Successful verifications per day by kind", days, counts.kind, nil)
		d.Enrolments = newStackChart("Factors enrolled per day by kind", days, counts.enrol, nil)
		d.Lockouts = newStackChart("Lockouts per day", days, counts.lockout, []string{"user", "factor"})
	}
	if d.ShowFactors = rq.p.Allowed(core.ReadFactors) && rq.p.Allowed(core.ReadUsers); d.ShowFactors {
		fs, err := h.allFactors(rq, core.FactorFilter{State: api.FactorActive})
		if err != nil {
			return err
		}
		d.Kinds = kindBars(fs)
		d.Models = h.modelRows(rq, fs)
	}
	h.render(rq, http.StatusOK, "activity", "Activity", d)
	return nil
}

// eventCounts are per-day counts by series: counts[series][day].
type eventCounts struct {
	outcome, kind, enrol, lockout map[string][]int
}

// countEvents reads the audit events of the last days, newest first.
func (h *handler) countEvents(rq *request, now time.Time) (eventCounts, bool, error) {
	c := eventCounts{outcome: map[string][]int{}, kind: map[string][]int{}, enrol: map[string][]int{}, lockout: map[string][]int{}}
	start := dayStart(now).AddDate(0, 0, -(activityDays - 1))
	add := func(m map[string][]int, series string, day int) {
		if m[series] == nil {
			m[series] = make([]int, activityDays)
		}
		m[series][day]++
	}
	q := core.AuditQuery{Since: start, Match: func(ev audit.Event) bool {
		return ev.Action == "factor.verify" || ev.Action == "factor.verify_failed" || ev.Action == "factor.enrol" || strings.HasSuffix(ev.Action, ".lockout")
	}}
	scanned := 0
	for {
		pg, err := h.svc.ListAuditNewest(rq.ctx, rq.p, q, core.MaxPageSize)
		if err != nil {
			return c, false, err
		}
		for _, ev := range pg.Events {
			day := int(ev.Time.Sub(start) / (24 * time.Hour))
			if day < 0 || day >= activityDays {
				continue
			}
			switch ev.Action {
			case "factor.verify":
				add(c.outcome, "success", day)
				add(c.kind, firstNonEmpty(ev.Extra["kind"], "other"), day)
			case "factor.verify_failed":
				add(c.outcome, "failed", day)
			case "factor.enrol":
				add(c.enrol, firstNonEmpty(fmt.Sprint(ev.After["kind"]), "other"), day)
			default:
				add(c.lockout, strings.TrimSuffix(ev.Action, ".lockout"), day)
			}
		}
		scanned += pg.Scanned
		if pg.Next == 0 {
			return c, false, nil
		}
		if scanned >= activityScan {
			return c, true, nil
		}
		q.Before = pg.Next
	}
}

func dayStart(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func dayLabels(now time.Time, n int) []string {
	start := dayStart(now).AddDate(0, 0, -(n - 1))
	out := make([]string, n)
	for i := range out {
		out[i] = start.AddDate(0, 0, i).Format("02 Jan")
	}
	return out
}

// kindBars counts active factors by kind.
func kindBars(fs []core.Factor) barChart {
	n := map[string]int{}
	for _, f := range fs {
		n[f.Kind]++
	}
	total := max(len(fs), 1)
	var ps []point
	for k, c := range n {
		ps = append(ps, point{Label: fmt.Sprintf("%s (%d)", k, c), Value: float64(c) / float64(total)})
	}
	slices.SortFunc(ps, func(a, b point) int { return cmp.Compare(b.Value, a.Value) })
	return newBarChart(ps)
}

// modelRows counts active hardware factors by model and firmware, and
// marks the ones with an advisory (the vulnerable-factor report's).
func (h *handler) modelRows(rq *request, fs []core.Factor) []modelRow {
	advisory := map[string]string{}
	if rq.p.Allowed(core.ReadReports) {
		if vs, err := h.svc.FactorReport(rq.ctx, rq.p, core.ReportVulnerable, ""); err == nil {
			for _, v := range vs {
				advisory[v.Model+"\x00"+v.Firmware] = advisoryWords(v.Why)
			}
		}
	}
	n := map[[2]string]int{}
	for _, f := range fs {
		var ev struct{ Model, Firmware string }
		if json.Unmarshal(f.Evidence, &ev) != nil || ev.Model == "" {
			continue
		}
		n[[2]string{ev.Model, ev.Firmware}]++
	}
	var out []modelRow
	most := 1
	for k, c := range n {
		out = append(out, modelRow{Model: k[0], Firmware: k[1], Count: c, Advisory: advisory[k[0]+"\x00"+k[1]]})
		most = max(most, c)
	}
	for i := range out {
		out[i].Width = float64(out[i].Count) / float64(most) * 300
	}
	slices.SortFunc(out, func(a, b modelRow) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Model, b.Model), strings.Compare(a.Firmware, b.Firmware))
	})
	return out
}

// advisoryWords names the advisories a report's reason mentions, with
// their short names ("YSA-2024-03 (EUCLEAK)"); the reason itself when it
// names none.
func advisoryWords(why string) string {
	var out []string
	for _, a := range attest.KnownAdvisories() {
		if strings.Contains(why, a.ID) {
			name, _, _ := strings.Cut(a.Summary, ":")
			out = append(out, a.ID+" ("+name+")")
		}
	}
	if len(out) == 0 {
		return why
	}
	return strings.Join(out, ", ")
}
