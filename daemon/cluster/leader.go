package cluster

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// LeaderLockID is the advisory lock the leader holds ("kfleader").
const LeaderLockID int64 = 0x6b66_6c65_6164

// ElectorConfig configures an Elector.
type ElectorConfig struct {
	// Connect opens the connection the lock is held on (not a pooled one:
	// the lock lives as long as the session). Required.
	Connect func(ctx context.Context) (*pgx.Conn, error)
	// Every is how often a follower tries the lock and the leader checks
	// its connection (default 1s). A check that takes longer than Every
	// (at least 1s) counts as a lost connection. A follower that takes
	// the lock waits Every plus that timeout before it leads: a leader
	// whose session PostgreSQL ended (a restart, a terminated backend)
	// has noticed by then and stopped, so that two never lead at once. A
	// dead leader is replaced within about 2×Every plus the timeout after
	// PostgreSQL notices its session ended.
	Every  time.Duration
	Logger *slog.Logger
	// OnChange, if set, hears each change of leadership.
	OnChange func(leader bool)
}

// Elector runs a function while this keyfleetd is the leader.
type Elector struct {
	cfg    ElectorConfig
	leader atomic.Bool
}

// NewElector checks cfg.
func NewElector(cfg ElectorConfig) (*Elector, error) {
	if cfg.Connect == nil {
		return nil, errors.New("cluster: ElectorConfig.Connect is required")
	}
	if cfg.Every <= 0 {
		cfg.Every = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Elector{cfg: cfg}, nil
}

// Leader reports whether this keyfleetd leads now.
func (e *Elector) Leader() bool { return e.leader.Load() }

// Run tries for leadership until ctx ends; each time it wins, it runs
// lead with a context that ends when leadership is lost (the connection
// broke) or ctx ends, and waits for lead to return before trying again.
func (e *Elector) Run(ctx context.Context, lead func(ctx context.Context)) {
	t := time.NewTicker(e.cfg.Every)
	defer t.Stop()
	for ctx.Err() == nil {
		conn, ok := e.try(ctx)
		if ok && e.handOver(ctx, conn) {
			e.hold(ctx, conn, lead)
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

// try opens a connection and takes the lock if it is free.
func (e *Elector) try(ctx context.Context) (*pgx.Conn, bool) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := e.cfg.Connect(cctx)
	if err != nil {
		if ctx.Err() == nil {
			e.cfg.Logger.Warn("trying for leadership: cannot reach PostgreSQL", "err", err)
		}
		return nil, false
	}
	var got bool
	if err := conn.QueryRow(cctx, "SELECT pg_try_advisory_lock($1)", LeaderLockID).Scan(&got); err != nil || !got {
		conn.Close(context.Background())
		return nil, false
	}
	return conn, true
}

// checkTimeout bounds one check of the leader's connection.
func (e *Elector) checkTimeout() time.Duration { return max(e.cfg.Every, time.Second) }

// handOver waits, holding the lock, until a leader whose session ended
// has noticed, then checks the connection; false (and the lock given up)
// if it broke meanwhile or ctx ended.
func (e *Elector) handOver(ctx context.Context, conn *pgx.Conn) bool {
	t := time.NewTimer(e.cfg.Every + e.checkTimeout())
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
		pctx, cancel := context.WithTimeout(ctx, e.checkTimeout())
		err := conn.Ping(pctx)
		cancel()
		if err == nil {
			return true
		}
	}
	conn.Close(context.Background())
	return false
}

// hold runs lead while the connection holding the lock lives.
func (e *Elector) hold(ctx context.Context, conn *pgx.Conn, lead func(context.Context)) {
	defer conn.Close(context.Background()) // ends the session: the lock is free
	lctx, lost := context.WithCancel(ctx)
	defer lost()
	done := make(chan struct{})
	e.set(true)
	go func() { defer close(done); lead(lctx) }()
	t := time.NewTicker(e.cfg.Every)
	defer t.Stop()
	for lctx.Err() == nil {
		select {
		case <-done:
			lost()
		case <-lctx.Done():
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, e.checkTimeout())
			err := conn.Ping(pctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				e.cfg.Logger.Error("lost the connection that holds leadership; stopping the leader's work", "err", err)
				lost()
			}
		}
	}
	<-done
	e.set(false)
}

func (e *Elector) set(v bool) {
	if e.leader.Swap(v) != v {
		e.cfg.Logger.Info("leadership", "leader", v)
		if e.cfg.OnChange != nil {
			e.cfg.OnChange(v)
		}
	}
}
