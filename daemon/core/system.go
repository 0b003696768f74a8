package core

import "context"

// RecordEvent appends an audit event the daemon raises on its own (a plugin
// refused or restarted, a sink's dead letter): no record changes, but the
// trail must show it. extra must not carry a secret.
func (s *Service) RecordEvent(ctx context.Context, action, targetType, targetID string, extra map[string]string) error {
	return s.store.Update(ctx, func(tx Tx) error {
		ev := s.eventCtx(ctx, System, "")
		ev.extra = extra
		return ev.audit(tx, action, targetRef{targetType, targetID, targetID}, nil, nil)
	})
}
