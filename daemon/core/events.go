package core

import (
	"context"

	"github.com/keyfleet/keyfleet/api"
)

// eventCtx is who acts, for whom and why, shared by the several audit
// events one change can write (an approved reset revokes many factors).
type eventCtx struct {
	s        *Service
	ctx      context.Context
	p        Principal
	approver *api.Actor
	reason   string
	extra    map[string]string
}

func (s *Service) eventCtx(ctx context.Context, p Principal, reason string) *eventCtx {
	return &eventCtx{s: s, ctx: ctx, p: p, reason: reason}
}

func (e *eventCtx) audit(tx Tx, action string, t targetRef, before, after map[string]any) error {
	ev := e.s.event(e.ctx, e.p, action, t)
	ev.Approver, ev.Reason, ev.Before, ev.After = e.approver, e.reason, before, after
	for k, v := range e.extra {
		if ev.Extra == nil {
			ev.Extra = map[string]string{}
		}
		ev.Extra[k] = v
	}
	return tx.Audit(ev)
}

func (t targetRef) api() api.Target { return api.Target{Type: t.typ, ID: t.id, Name: t.name} }
