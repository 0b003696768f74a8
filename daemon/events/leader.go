package events

import (
	"context"
	"sync"
)

// Several keyfleetd on one database: every one serves the SSE stream,
// only the leader delivers to the sinks (daemon/cluster). A follower
// calls RunStreams for its whole life and RunSinks each time it becomes
// the leader.

// RunStreams serves the SSE streams until ctx ends, then ends them and
// closes the sinks: Run without the delivery. Call it once.
func (m *Manager) RunStreams(ctx context.Context) error {
	<-ctx.Done()
	m.once.Do(func() { close(m.closing) })
	return m.closeSinks()
}

// RunSinks delivers until ctx ends. It first reloads every sink's cursor
// and dead letters from the cursor store, so a keyfleetd that becomes the
// leader resumes where the last one stopped. It may be called again after
// it returned, never twice at once.
func (m *Manager) RunSinks(ctx context.Context) error {
	for _, r := range m.runners {
		if err := r.load(ctx); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	for _, r := range m.runners {
		if !r.cfg.Disabled {
			wg.Go(func() { r.loop(ctx) })
		}
	}
	m.log.Info("event sinks running", "sinks", len(m.runners))
	wg.Wait()
	return nil
}
