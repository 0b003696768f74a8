package events

import (
	"context"
	"fmt"
	"slices"
)

// GroupsFunc returns the groups of the user with the given id. It returns
// (nil, nil) for a user that does not exist (any more); an error means the
// answer is unknown for now, and the sink retries the batch.
type GroupsFunc func(ctx context.Context, userID string) ([]string, error)

// matcher is a validated Filter bound to a group lookup.
type matcher struct {
	f      Filter
	groups GroupsFunc
}

// match reports whether ev passes the filter.
func (m matcher) match(ctx context.Context, ev Event) (bool, error) {
	if len(m.f.Actions) > 0 && !matchAny(m.f.Actions, ev.Action) {
		return false, nil
	}
	if len(m.f.Severities) > 0 && !slices.Contains(m.f.Severities, ev.Severity) {
		return false, nil
	}
	if len(m.f.Groups) == 0 {
		return true, nil
	}
	gs, err := m.targetGroups(ctx, ev)
	if err != nil {
		return false, err
	}
	for _, g := range gs {
		if slices.Contains(m.f.Groups, g) {
			return true, nil
		}
	}
	return false, nil
}

// targetGroups finds the groups of the user an event is about: for a user
// target, the groups the event itself recorded (after, else before) so that
// a deleted user still matches; otherwise the groups of the user named by
// the target's user_id, looked up now. Events about no user match no group.
func (m matcher) targetGroups(ctx context.Context, ev Event) ([]string, error) {
	if ev.Target.Type == "user" {
		if gs, ok := stringList(ev.After["groups"]); ok {
			return gs, nil
		}
		if gs, ok := stringList(ev.Before["groups"]); ok {
			return gs, nil
		}
	}
	uid := userOf(ev)
	if uid == "" || m.groups == nil {
		return nil, nil
	}
	gs, err := m.groups(ctx, uid)
	if err != nil {
		return nil, fmt.Errorf("looking up the groups of the target of event %d: %w", ev.Seq, err)
	}
	return gs, nil
}

// userOf names the user an event is about, or "".
func userOf(ev Event) string {
	if ev.Target.Type == "user" {
		return ev.Target.ID
	}
	for _, m := range []map[string]any{ev.After, ev.Before} {
		if id, ok := m["user_id"].(string); ok && id != "" {
			return id
		}
	}
	return ""
}

func stringList(v any) ([]string, bool) {
	xs, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out, true
}
