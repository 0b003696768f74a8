package web

import (
	"net/http"
	"slices"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// The recovery queue: every case that still needs someone (open or
// confirmed), oldest first, with its age and what comes next, so that an
// open case does not sit unseen on one user's page. The overview links
// here with the count.

type queueRow struct {
	api.RecoveryCase
	Age     string
	Next    string // what has to happen next, in words
	Pending *core.Approval
}

type recoveryQueue struct {
	Show  string // "active" (open or confirmed) or "all"
	Rows  []queueRow
	Count int
}

// maxQueue bounds the cases one page reads.
const maxQueue = 1000

func (h *handler) recoveryQueue(rq *request) error {
	d := recoveryQueue{Show: rq.r.URL.Query().Get("show")}
	if d.Show != "all" {
		d.Show = "active"
	}
	cs, err := h.activeCases(rq, d.Show == "all")
	if err != nil {
		return err
	}
	pending := h.pendingChecks(rq)
	now := h.now()
	for _, c := range cs {
		v := c.API(now)
		row := queueRow{RecoveryCase: v, Age: age(now.Sub(v.OpenedAt))}
		if a, ok := pending[c.ID]; ok {
			row.Pending = &a
		}
		row.Next = nextStep(v, row.Pending != nil)
		d.Rows = append(d.Rows, row)
	}
	d.Count = len(d.Rows)
	h.render(rq, http.StatusOK, "recovery", "Recovery cases", d)
	return nil
}

// activeCases reads the cases, oldest first: those still open or
// confirmed (all of them with all).
func (h *handler) activeCases(rq *request, all bool) ([]core.RecoveryCase, error) {
	var out []core.RecoveryCase
	now := h.now()
	pg := core.PageReq{Limit: core.MaxPageSize}
	for len(out) < maxQueue {
		cs, next, err := h.svc.ListRecovery(rq.ctx, rq.p, core.RecoveryFilter{}, pg)
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			if st := c.API(now).State; all || st == api.CaseOpen || st == api.CaseConfirmed {
				out = append(out, c)
			}
		}
		if next == "" {
			break
		}
		pg.After = next
	}
	slices.SortFunc(out, func(a, b core.RecoveryCase) int { return a.OpenedAt.Compare(b.OpenedAt) })
	return out, nil
}

// pendingChecks maps case ids to their identity check waiting for a
// second officer.
func (h *handler) pendingChecks(rq *request) map[string]core.Approval {
	out := map[string]core.Approval{}
	if !rq.p.Allowed(core.ReadApprovals) {
		return out
	}
	as, _, err := h.svc.ListApprovals(rq.ctx, rq.p, api.ApprovalPending, core.PageReq{Limit: core.MaxPageSize})
	if err != nil {
		return out
	}
	for _, a := range as {
		if a.Action == api.ActionRecoveryIdentity || a.Action == api.ActionRecoveryPass {
			out[a.TargetID] = a
		}
	}
	return out
}

// nextStep says what a case waits for.
func nextStep(c api.RecoveryCase, pending bool) string {
	switch {
	case c.State == api.CaseOpen && pending:
		return "an identity check waits for a second officer's approval"
	case c.State == api.CaseOpen:
		return "confirm who the user is: a recovery code they read out, or an identity check"
	case c.State == api.CaseConfirmed && c.PassID == "":
		return "issue a temporary access pass"
	case c.State == api.CaseConfirmed:
		return "the user enrols a new factor with the pass"
	}
	return "nothing: the case has ended"
}

// age says how long ago something started, in the largest unit.
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return plural(int(d.Minutes()), "minute")
	case d < 48*time.Hour:
		return plural(int(d.Hours()), "hour")
	}
	return plural(int(d.Hours()/24), "day")
}
