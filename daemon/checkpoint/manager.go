package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/keyfleet/keyfleet/daemon/audit"
)

// Config configures a Manager. Its zero value of each optional field is a
// sensible default.
type Config struct {
	// Head is where the audit chain ends now (the store). Required.
	Head interface{ AuditHead() audit.Head }
	// Signer signs checkpoints. Required.
	Signer *Signer
	// Places are where each checkpoint goes, in order. Required.
	Places []Place
	// Every is how many audit events at most go by without a checkpoint
	// (default 1000); Interval how long at most (default 1m), when any
	// event was appended meanwhile.
	Every    uint64
	Interval time.Duration
	// Poll is how often the manager looks at the head besides when
	// notified (default 1s).
	Poll   time.Duration
	Now    func() time.Time
	Logger *slog.Logger
	// Observe, if set, is told the outcome of each place's write (for
	// metrics): err is nil on success.
	Observe func(place string, c Checkpoint, err error)
}

// Manager writes checkpoints.
type Manager struct {
	cfg  Config
	wake chan struct{}

	mu sync.Mutex
	// last is the newest checkpoint written; since is the head after it
	// (past its own audit.checkpoint event), from which the next counts.
	last    Checkpoint
	hasLast bool
	since   uint64
	at      time.Time
	// retryAt holds off the next attempt after one no place took.
	retryAt time.Time
}

// New validates cfg and makes a Manager.
func New(cfg Config) (*Manager, error) {
	if cfg.Head == nil || cfg.Signer == nil || len(cfg.Places) == 0 {
		return nil, errors.New("checkpoint: Head, Signer and at least one place are required")
	}
	if cfg.Every == 0 {
		cfg.Every = 1000
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{cfg: cfg, wake: make(chan struct{}, 1)}, nil
}

// Start tells the manager where the last checkpoint stands (the newest
// found at start-up), so that it does not sign the same head again.
func (m *Manager) Start(c Checkpoint) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last, m.hasLast, m.since, m.at = c, true, c.Seq, c.Time
}

// Notify wakes the manager after a commit that appended audit events.
func (m *Manager) Notify() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Latest is the newest checkpoint the manager wrote or was started with.
func (m *Manager) Latest() (Checkpoint, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last, m.hasLast
}

// Run writes checkpoints until ctx ends, then one last one of the head
// (to the places that are not the audit log, which is closing).
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.cfg.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			m.final()
			return
		case <-t.C:
		case <-m.wake:
		}
		if m.due() {
			m.Checkpoint(ctx) // errors are logged and observed
		}
	}
}

// due reports whether the head moved far enough, or long enough ago.
func (m *Manager) due() bool {
	head := m.cfg.Head.AuditHead()
	m.mu.Lock()
	defer m.mu.Unlock()
	if head.Seq <= m.since || m.cfg.Now().Before(m.retryAt) {
		return false
	}
	return head.Seq-m.since >= m.cfg.Every || m.cfg.Now().Sub(m.at) >= m.cfg.Interval || !m.hasLast
}

// Checkpoint signs the head now and puts it in every place. It returns
// the checkpoint and the errors of the places that failed (joined); the
// checkpoint counts as written if any place took it.
func (m *Manager) Checkpoint(ctx context.Context) (Checkpoint, error) {
	return m.write(ctx, m.cfg.Places)
}

func (m *Manager) write(ctx context.Context, places []Place) (Checkpoint, error) {
	c := m.cfg.Signer.Sign(m.cfg.Head.AuditHead(), m.cfg.Now())
	var errs []error
	took, since := 0, c.Seq
	for _, p := range places {
		err := p.Put(ctx, c)
		if m.cfg.Observe != nil {
			m.cfg.Observe(p.Name(), c, err)
		}
		if err != nil {
			m.cfg.Logger.Error("writing an audit checkpoint failed", "place", p.Name(), "seq", c.Seq, "err", err)
			errs = append(errs, fmt.Errorf("%s: %w", p.Name(), err))
			continue
		}
		took++
		if _, ok := p.(Events); ok {
			since++ // its own audit.checkpoint event does not call for another
		}
	}
	if took == 0 {
		m.mu.Lock()
		m.retryAt = m.cfg.Now().Add(min(m.cfg.Interval, 30*time.Second))
		m.mu.Unlock()
	}
	if took > 0 {
		m.mu.Lock()
		m.last, m.hasLast, m.at, m.since = c, true, c.Time, since
		m.mu.Unlock()
		m.cfg.Logger.Info("audit checkpoint written", "seq", c.Seq, "hash", c.Hash, "places", took)
	}
	return c, errors.Join(errs...)
}

// final writes a checkpoint of the head at shutdown to the places outside
// the audit log, if the head moved since the last one.
func (m *Manager) final() {
	head := m.cfg.Head.AuditHead()
	m.mu.Lock()
	moved := !m.hasLast || head.Seq != m.last.Seq
	m.mu.Unlock()
	if !moved {
		return
	}
	var outside []Place
	for _, p := range m.cfg.Places {
		if _, ok := p.(Events); !ok {
			outside = append(outside, p)
		}
	}
	if len(outside) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		m.write(ctx, outside)
	}
}
