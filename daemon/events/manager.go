package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options are what a Manager needs besides its Config.
type Options struct {
	Source  Source      // required: the audit log
	Cursors CursorStore // required: where cursors and dead letters persist
	// Groups looks up a user's groups for group filters. Required if any
	// sink filters on groups.
	Groups GroupsFunc
	// DeadLetters hears about dead letters (optional).
	DeadLetters DeadLetterReporter
	// Registerer receives the sink metrics (optional).
	Registerer prometheus.Registerer
	Logger     *slog.Logger     // default: discard
	Now        func() time.Time // default time.Now
	Rand       func() float64   // jitter in [0,1); default math/rand/v2
}

// Manager runs the configured sinks and serves the SSE stream.
type Manager struct {
	cfg  Config
	o    Options
	log  *slog.Logger
	wake broadcast
	// mu guards the sink set, which Reload replaces while Run delivers.
	mu      sync.RWMutex
	runners []*runner
	byName  map[string]*runner
	runCtx  context.Context // Run's context once Run started; nil before
	ended   bool            // Run returned: the sinks are closed
	wg      sync.WaitGroup  // the running sinks' loops
	metrics *metrics
	sse     *sseHandler
	closing chan struct{} // closed when Run ends: SSE streams finish
	once    sync.Once
	decoded decodedEvents
}

// Sentinel errors of [Manager.Replay].
var (
	ErrUnknownSink = errors.New("no such event sink")
	ErrBadReplay   = errors.New("cannot replay from that sequence number")
)

// New validates cfg, opens every sink's target (files, sockets are opened
// lazily on first delivery) and loads the cursors. It does not start
// delivering: call Run.
func New(cfg Config, o Options) (*Manager, error) {
	if o.Source == nil || o.Cursors == nil {
		return nil, errors.New("events: Options.Source and Options.Cursors are required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	m := &Manager{cfg: cfg, o: o, log: o.Logger, byName: map[string]*runner{}, closing: make(chan struct{})}
	m.wake.init()
	m.metrics = newMetrics(m)
	for _, sc := range cfg.Sinks {
		r, err := m.newRunner(sc)
		if err != nil {
			m.closeSinks()
			return nil, fmt.Errorf("events: sink %s: %w", sc.Name, err)
		}
		m.runners = append(m.runners, r)
		m.byName[sc.Name] = r
	}
	if err := m.metrics.register(o.Registerer); err != nil {
		m.closeSinks()
		return nil, err
	}
	m.sse = newSSEHandler(m)
	return m, nil
}

func (m *Manager) newRunner(sc SinkConfig) (*runner, error) {
	if len(sc.Filter.Groups) > 0 && m.o.Groups == nil {
		return nil, errors.New("filter.groups needs Options.Groups to look up users' groups")
	}
	s, err := newSink(sc, m.o)
	if err != nil {
		return nil, err
	}
	r := &runner{m: m, cfg: sc, sink: s, match: matcher{f: sc.Filter, groups: m.o.Groups}, kick: make(chan struct{}, 1)}
	m.metrics.zero(sc.Name, sc.Type)
	if err := r.load(context.Background()); err != nil {
		s.close()
		return nil, err
	}
	return r, nil
}

func newSink(sc SinkConfig, o Options) (sink, error) {
	switch sc.Type {
	case TypeFile:
		return newFileSink(*sc.File)
	case TypeSyslog:
		return newSyslogSink(*sc.Syslog)
	default:
		return newWebhookSink(sc.Name, *sc.Webhook, o)
	}
}

// Run delivers until ctx is cancelled, then ends the SSE streams and
// closes the sinks. A batch in flight when ctx ends is not counted as
// delivered and is sent again by the next Run. Run once.
func (m *Manager) Run(ctx context.Context) error {
	endStreams := func() { m.once.Do(func() { close(m.closing) }) }
	stop := context.AfterFunc(ctx, endStreams)
	defer stop()
	defer endStreams()
	m.mu.Lock()
	m.runCtx = ctx
	for _, r := range m.runners {
		m.start(r)
	}
	n := len(m.runners)
	m.mu.Unlock()
	m.log.Info("event sinks running", "sinks", n)
	<-ctx.Done() // with no sinks, Run still lasts as long as the SSE streams may
	m.mu.Lock()
	defer m.mu.Unlock()
	m.wg.Wait()
	m.ended = true
	return m.closeSinks()
}

// start runs r's loop under Run's context until Run ends or Reload stops
// it. The caller holds m.mu and Run has started.
func (m *Manager) start(r *runner) {
	if r.cfg.Disabled {
		return
	}
	ctx, cancel := context.WithCancel(m.runCtx)
	r.stop, r.done = cancel, make(chan struct{})
	m.wg.Go(func() { defer close(r.done); r.loop(ctx) })
}

// closeSinks closes every sink; the caller holds m.mu or owns m.
func (m *Manager) closeSinks() error {
	var errs []error
	for _, r := range m.runners {
		if err := r.sink.close(); err != nil {
			errs = append(errs, fmt.Errorf("closing sink %s: %w", r.cfg.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Notify wakes every sink and SSE stream to look for new events. The
// daemon calls it after each commit that appended audit events. It never
// blocks.
func (m *Manager) Notify() { m.wake.fire() }

// SSEHandler serves GET /v1/events (see docs/events.md). It does no
// authentication: the daemon wraps it.
func (m *Manager) SSEHandler() http.Handler { return m.sse }

// Status reports every configured sink, in configuration order.
func (m *Manager) Status() []SinkStatus {
	m.mu.RLock()
	defer m.mu.RUnlock()
	head := m.o.Source.AuditHead().Seq
	out := make([]SinkStatus, 0, len(m.runners))
	for _, r := range m.runners {
		out = append(out, r.status(head))
	}
	return out
}

// Replay makes sink deliver again every event from seq from (inclusive)
// onwards. A batch in flight finishes first. It returns an error wrapping
// ErrUnknownSink or ErrBadReplay, or the cursor store's error.
func (m *Manager) Replay(ctx context.Context, sink string, from uint64) error {
	m.mu.RLock()
	r, ok := m.byName[sink]
	m.mu.RUnlock()
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownSink, sink)
	}
	head := m.o.Source.AuditHead().Seq
	if from < 1 || from > head+1 {
		return fmt.Errorf("%w: %d is outside 1 … %d (the head is %d)", ErrBadReplay, from, head+1, head)
	}
	return r.rewind(ctx, from-1)
}

// broadcast wakes every waiter at once: waiters take the current channel,
// fire closes it and installs a fresh one.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

func (b *broadcast) init() { b.ch = make(chan struct{}) }

func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

func (b *broadcast) fire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.ch)
	b.ch = make(chan struct{})
}
