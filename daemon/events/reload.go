package events

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
)

// ReloadResult says what [Manager.Reload] changed.
type ReloadResult struct {
	Added, Changed, Removed, Unchanged []string // sink names
	// NeedsRestart names settings that differ but apply only at start-up
	// (events.poll_interval, events.sse).
	NeedsRestart []string
}

// Reload replaces the sinks with cfg's while Run delivers: a sink whose
// configuration is unchanged keeps running; a changed one stops (a batch
// in flight is sent again, as after a restart) and starts again with its
// new settings from its stored cursor; a new one starts where its
// start_at says; a removed one stops and is closed. Every new sink is
// opened before anything stops, so an error (an invalid cfg, a sink that
// cannot be opened) changes nothing. It returns an error wrapping
// ErrInvalidConfig for a bad cfg, or ErrStopped once Run has returned.
func (m *Manager) Reload(cfg Config) (ReloadResult, error) {
	if err := cfg.Validate(); err != nil {
		return ReloadResult{}, err
	}
	m.mu.RLock()
	old, ended := m.byName, m.ended
	m.mu.RUnlock()
	if ended {
		return ReloadResult{}, ErrStopped
	}
	res := diffSinks(old, cfg.Sinks)
	if cfg.PollInterval != m.cfg.PollInterval {
		res.NeedsRestart = append(res.NeedsRestart, "events.poll_interval")
	}
	if cfg.SSE != m.cfg.SSE {
		res.NeedsRestart = append(res.NeedsRestart, "events.sse")
	}
	fresh, err := m.openRunners(cfg.Sinks, old)
	if err != nil {
		return ReloadResult{}, err
	}
	if err := m.swap(cfg.Sinks, fresh); err != nil {
		return ReloadResult{}, err
	}
	m.log.Info("event sinks reloaded", "added", res.Added, "changed", res.Changed, "removed", res.Removed, "unchanged", len(res.Unchanged))
	return res, nil
}

func diffSinks(old map[string]*runner, sinks []SinkConfig) ReloadResult {
	var res ReloadResult
	for _, sc := range sinks {
		r, ok := old[sc.Name]
		switch {
		case !ok:
			res.Added = append(res.Added, sc.Name)
		case reflect.DeepEqual(r.cfg, sc):
			res.Unchanged = append(res.Unchanged, sc.Name)
		default:
			res.Changed = append(res.Changed, sc.Name)
		}
	}
	for name := range old {
		if !slices.ContainsFunc(sinks, func(sc SinkConfig) bool { return sc.Name == name }) {
			res.Removed = append(res.Removed, name)
		}
	}
	slices.Sort(res.Removed)
	return res
}

// openRunners opens a runner for every sink that is new or changed; on an
// error it closes those it opened.
func (m *Manager) openRunners(sinks []SinkConfig, old map[string]*runner) (map[string]*runner, error) {
	fresh := map[string]*runner{}
	for _, sc := range sinks {
		if r, ok := old[sc.Name]; ok && reflect.DeepEqual(r.cfg, sc) {
			continue
		}
		r, err := m.newRunner(sc)
		if err != nil {
			for _, f := range fresh {
				f.sink.close()
			}
			return nil, fmt.Errorf("%w: events: sink %s: %w", ErrInvalidConfig, sc.Name, err)
		}
		fresh[sc.Name] = r
	}
	return fresh, nil
}

// ErrStopped: the manager's Run has returned; it takes no new sinks.
var ErrStopped = errors.New("event sinks have stopped")

// swap stops the sinks that are replaced or removed, then installs the new
// set in configuration order and starts the fresh ones (if Run runs).
func (m *Manager) swap(sinks []SinkConfig, fresh map[string]*runner) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ended { // Run ended while the new sinks were opened
		for _, r := range fresh {
			r.sink.close()
		}
		return ErrStopped
	}
	var errs []error
	for name, r := range m.byName {
		if _, keep := fresh[name]; !keep && slices.ContainsFunc(sinks, func(sc SinkConfig) bool { return sc.Name == name }) {
			continue // unchanged
		}
		if r.stop != nil {
			r.stop()
			<-r.done
		}
		errs = append(errs, r.sink.close())
		if _, kept := fresh[name]; !kept {
			m.metrics.forget(name, r.cfg.Type)
		}
	}
	runners, byName := make([]*runner, 0, len(sinks)), make(map[string]*runner, len(sinks))
	for _, sc := range sinks {
		r, ok := fresh[sc.Name]
		if !ok {
			r = m.byName[sc.Name]
		} else if m.runCtx != nil {
			m.start(r)
		}
		runners, byName[sc.Name] = append(runners, r), r
	}
	m.runners, m.byName, m.cfg.Sinks = runners, byName, sinks
	if err := errors.Join(errs...); err != nil {
		m.log.Warn("closing replaced event sinks", "err", err)
	}
	return nil
}
