package web

import (
	"errors"
	"fmt"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// The overview's health panels: the event sinks (what `keyfleet events
// status` shows) and the break-glass credential.

// sinkView is one sink's status with a verdict for people.
type sinkView struct {
	api.SinkStatus
	Health string // ok, behind, failing, disabled
}

// sinkLagWarn is the lag (events) past which a sink reads as behind.
const sinkLagWarn = 100

// sinks reads the sinks' status for readers of the audit log (the API
// shows it to the same roles).
func (h *handler) sinks(rq *request) ([]sinkView, bool) {
	if h.cfg.Events == nil || !rq.p.Allowed(core.ReadAudit) {
		return nil, false
	}
	var out []sinkView
	for _, st := range h.cfg.Events.Status() {
		v := sinkView{SinkStatus: st, Health: "ok"}
		switch {
		case st.Disabled:
			v.Health = "disabled"
		case st.Retrying || st.DeadLetters > 0 && st.LastErrorAt != nil && h.now().Sub(*st.LastErrorAt) < time.Hour:
			v.Health = "failing"
		case st.Lag > sinkLagWarn:
			v.Health = "behind"
		}
		out = append(out, v)
	}
	return out, true
}

// breakGlassView is the break-glass credential's state: which share set,
// whether it was used and must be rotated, and whether a session is open.
type breakGlassView struct {
	api.BreakGlassStatus
	None          bool       // no credential was made (keyfleetd init makes one)
	SessionUntil  *time.Time // an open session runs until then
	SessionEnded  *time.Time
	SessionReason string
	Err           string
}

// breakGlass reads the status, and the session from the audit trail of
// the share set (breakglass.start names its token; breakglass.end targets
// that token). Break-glass readers (admin, security officer, auditor) all
// read the audit log.
func (h *handler) breakGlass(rq *request) *breakGlassView {
	if !rq.p.Allowed(core.ReadBreakGlass) {
		return nil
	}
	st, err := h.svc.BreakGlassStatus(rq.ctx, rq.p)
	v := &breakGlassView{BreakGlassStatus: st}
	switch {
	case errors.Is(err, core.ErrNotFound):
		v.None = true
		return v
	case err != nil:
		_, v.Err = h.describe(rq, err)
		return v
	}
	if st.UsedAt == nil || !rq.p.Allowed(core.ReadAudit) {
		return v
	}
	start, ok := h.lastEvent(rq, st.SetID, "breakglass.start")
	if !ok {
		return v
	}
	v.SessionReason = start.reason
	if end, ok := h.lastEvent(rq, start.extra["token_id"], "breakglass.end"); ok {
		v.SessionEnded = &end.time
		return v
	}
	if until, err := time.Parse(time.RFC3339Nano, fmt.Sprint(start.after["expires_at"])); err == nil && h.now().Before(until) {
		v.SessionUntil = &until
	}
	return v
}

type eventBrief struct {
	time   time.Time
	reason string
	extra  map[string]string
	after  map[string]any
}

// lastEvent finds the newest event with action about target.
func (h *handler) lastEvent(rq *request, target, action string) (eventBrief, bool) {
	if target == "" {
		return eventBrief{}, false
	}
	var found eventBrief
	ok := false
	var after uint64
	for range 10 { // bounded: a share set has few events besides failures
		recs, err := h.svc.ListAudit(rq.ctx, rq.p, core.AuditFilter{TargetID: target, After: after}, core.MaxPageSize)
		if err != nil || len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if ev, err := r.Event(); err == nil && ev.Action == action {
				found, ok = eventBrief{time: ev.Time, reason: ev.Reason, extra: ev.Extra, after: ev.After}, true
			}
		}
		after = recs[len(recs)-1].Seq
		if len(recs) < core.MaxPageSize {
			break
		}
	}
	return found, ok
}

// directory reads the directory sources' status for those who may see it
// (what 'keyfleet directory status' shows); nil when none is configured
// and no user comes from one.
func (h *handler) directory(rq *request) (*api.DirectoryOverview, string) {
	if h.cfg.Directory == nil || !rq.p.Allowed(core.ReadDirectory) {
		return nil, ""
	}
	ov, err := h.cfg.Directory.Overview(rq.ctx, rq.p)
	if err != nil {
		_, msg := h.describe(rq, err)
		return nil, msg
	}
	if len(ov.Sources) == 0 {
		return nil, ""
	}
	return &ov, ""
}
