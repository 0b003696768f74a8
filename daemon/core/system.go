package core

import "context"

// RecordEvent appends an audit event the daemon raises on its own (a plugin
// refused or restarted, a sink's dead letter): no record changes, but the
// trail must show it. extra must not carry a secret.
func (s *Service) RecordEvent(ctx context.Context, action, targetType, targetID string, extra map[string]string) error {
	return s.RecordAction(ctx, System, action, targetType, targetID, extra)
}

// RecordAction appends an audit event for an action p took outside the
// domain's records (replaying an event sink). It checks nothing: the
// caller has authorised p.
func (s *Service) RecordAction(ctx context.Context, p Principal, action, targetType, targetID string, extra map[string]string) error {
	return s.store.Update(ctx, func(tx Tx) error {
		ev := s.eventCtx(ctx, p, "")
		ev.extra = extra
		return ev.audit(tx, action, targetRef{targetType, targetID, targetID}, nil, nil)
	})
}
