package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/daemon/cluster"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/events"
	"github.com/keyfleet/keyfleet/daemon/push"
	"github.com/keyfleet/keyfleet/daemon/radius"
	"github.com/keyfleet/keyfleet/daemon/ratelimit"
	"github.com/keyfleet/keyfleet/daemon/store"
	"github.com/keyfleet/keyfleet/daemon/store/postgres"
	"github.com/keyfleet/keyfleet/daemon/web"
)

// Store backends (store.backend).
const (
	BackendBadger   = "badger"
	BackendPostgres = "postgres"
)

// PostgresConfig is store.postgres: where the database is.
type PostgresConfig struct {
	// DSN is a postgres:// URL or key=value connection string. Keep a
	// password out of the config file: use DSNFile, the PGPASSWORD
	// environment variable or ~/.pgpass.
	DSN string `yaml:"dsn"`
	// DSNFile is a file (mode 0600) holding the DSN.
	DSNFile string `yaml:"dsn_file"`
	// MaxConns bounds each keyfleetd's connections (default 16).
	MaxConns int32 `yaml:"max_conns"`
}

func (c *Config) validateBackend() []error {
	var errs []error
	pg := c.Store.Postgres
	switch c.Store.Backend {
	case BackendBadger:
		if pg.DSN != "" || pg.DSNFile != "" {
			errs = append(errs, errors.New("store.postgres is set but store.backend is badger: set store.backend: postgres to use it"))
		}
	case BackendPostgres:
		if (pg.DSN == "") == (pg.DSNFile == "") {
			errs = append(errs, errors.New("store.backend postgres needs exactly one of store.postgres.dsn and store.postgres.dsn_file (or KEYFLEET_STORE_DSN)"))
		}
		if pg.MaxConns < 0 || pg.MaxConns > 1000 {
			errs = append(errs, fmt.Errorf("store.postgres.max_conns: %d must be between 1 and 1000", pg.MaxConns))
		}
	default:
		errs = append(errs, fmt.Errorf("store.backend: %q must be badger or postgres", c.Store.Backend))
	}
	return errs
}

// PostgresDSN returns the configured DSN, read from DSNFile if given.
func (c PostgresConfig) PostgresDSN() (string, error) {
	if c.DSNFile == "" {
		return c.DSN, nil
	}
	st, err := os.Stat(c.DSNFile)
	if err != nil {
		return "", fmt.Errorf("store.postgres.dsn_file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("store.postgres.dsn_file %s is readable by other users (mode %o); run: chmod 600 %s", c.DSNFile, st.Mode().Perm(), c.DSNFile)
	}
	b, err := os.ReadFile(c.DSNFile)
	if err != nil {
		return "", fmt.Errorf("store.postgres.dsn_file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// backend is what the server needs of a store, whichever it is.
type backend interface {
	core.Store
	events.CursorStore
	Close() error
}

// openBackend opens the configured store.
func (s *Server) openBackend(storeKey []byte) error {
	if s.cfg.Store.Backend != BackendPostgres {
		st, err := store.Open(storeOptions(s.cfg, storeKey, s.log, s.afterAudit))
		if err != nil {
			return err
		}
		s.store, s.badger = st, st
		return nil
	}
	dsn, err := s.cfg.Store.Postgres.PostgresDSN()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := postgres.Open(ctx, postgres.Options{DSN: dsn, StoreKey: storeKey, Logger: s.log.With("component", "store"),
		MaxConns: s.cfg.Store.Postgres.MaxConns, AfterAudit: s.afterAudit, OnRemoteAudit: s.remoteAudit})
	if err != nil {
		return err
	}
	s.store, s.pg = st, st
	s.elector, err = cluster.NewElector(cluster.ElectorConfig{Logger: s.log.With("component", "cluster"),
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			return pgx.ConnectConfig(ctx, st.Pool().Config().ConnConfig.Copy())
		}, OnChange: s.leaderChanged})
	return err
}

// remoteAudit wakes the sinks, and the checkpoint writer, after another
// keyfleetd's commit.
func (s *Server) remoteAudit() {
	if f := s.notify.Load(); f != nil {
		(*f)()
	}
	if s.anchor != nil && s.anchor.mgr != nil {
		s.anchor.mgr.Notify()
	}
}

// webSessions is where the pages keep sessions: in the database when
// several keyfleetd share it, else in memory.
func (s *Server) webSessions() web.SessionStore {
	if s.pg == nil {
		return nil
	}
	return &cluster.Sessions{Pool: s.pg.Pool(), Sealer: s.pg, Logger: s.log.With("component", "web")}
}

// sharedLimits is where the attempt limiter keeps its buckets: in the
// database when several keyfleetd share it (so that a guesser gains
// nothing by spreading attempts over them), else in memory (nil).
func (s *Server) sharedLimits() ratelimit.Shared {
	if s.pg == nil {
		return nil
	}
	return &cluster.Buckets{Pool: s.pg.Pool(), Sealer: s.pg}
}

// sharedPushes is where the push hub counts pushes per user: in the
// database when several keyfleetd share it, so that the cap holds across
// them, else in the hub's memory (nil).
func (s *Server) sharedPushes() push.Shared {
	if s.pg == nil {
		return nil
	}
	return &cluster.Buckets{Pool: s.pg.Pool(), Sealer: s.pg}
}

// pushBoard is where the push hub keeps pending pushes: in the database
// when several keyfleetd share it (a push reaches companions connected to
// any of them, and is answered and finished on any), else in the hub's
// memory (nil).
func (s *Server) pushBoard() push.Board {
	if s.pg == nil {
		return nil
	}
	return &cluster.Pushes{Pool: s.pg.Pool(), Sealer: s.pg, Logger: s.log.With("component", "push")}
}

// radiusChallenges is where the RADIUS listener keeps open challenges:
// in the database when several keyfleetd share it (a NAS may send the
// answer to any of them), else in the listener's memory (nil).
func (s *Server) radiusChallenges() radius.Challenges {
	if s.pg == nil {
		return nil
	}
	return &cluster.RadiusChallenges{Pool: s.pg.Pool(), Sealer: s.pg}
}

// lead runs work once among the keyfleetd on one database: at once with
// Badger (one keyfleetd), else each time this keyfleetd becomes the
// leader, until it stops being it or ctx ends.
func (s *Server) lead(ctx context.Context, work func(ctx context.Context)) {
	if s.elector == nil {
		work(ctx)
		return
	}
	s.elector.Run(ctx, work)
}

func (s *Server) leaderChanged(leader bool) {
	if s.leaderGauge != nil {
		v := 0.0
		if leader {
			v = 1
		}
		s.leaderGauge.Set(v)
	}
	if !leader {
		s.compliance.clear()
	}
}

// runEvents runs the sinks (only on the leader) and the SSE streams (on
// every keyfleetd) until ctx ends.
func (s *Server) runEvents(ctx context.Context) error {
	if s.elector == nil {
		return s.events.Run(ctx)
	}
	return s.events.RunStreams(ctx)
}

// leaderWork is what runs once: the sinks, the audit checkpoints and the
// directory sync (with PostgreSQL; with Badger runEvents, runCheckpoints
// and runDirectory run them), and the sweeps. One election decides it
// all: a second would contend for the same lock, and the work that must
// run once would bounce between keyfleetd.
func (s *Server) leaderWork(ctx context.Context) {
	if s.badger != nil {
		go s.serveBackups(ctx)
	}
	var wg sync.WaitGroup
	if s.elector != nil { // with Badger, runEvents, runCheckpoints and runDirectory run these
		wg.Go(func() {
			if err := s.events.RunSinks(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("event sinks stopped", "err", err)
			}
		})
		wg.Go(func() { s.leadCheckpoints(ctx) })
		wg.Go(func() { s.dir.Run(ctx) })
	}
	s.sweep(ctx)
	wg.Wait()
}

// sweepStore deletes what outlived its use in a shared database.
func (s *Server) sweepStore(ctx context.Context) {
	if s.pg == nil {
		return
	}
	if err := s.pg.Sweep(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("sweeping expired verifications and sessions", "err", err)
	}
}

// clear empties the compliance gauges: a keyfleetd that is not the
// leader publishes none (the leader's are the fleet's).
func (c *complianceGauges) clear() {
	for _, g := range []*prometheus.GaugeVec{c.adoption, c.users, c.nonCompliant, c.grace, c.stale, c.vulnerable} {
		g.Reset()
	}
}

// registerClusterMetrics publishes keyfleet_cluster_leader and the group
// commit's counters (PostgreSQL only; Badger's are in server.go).
func (s *Server) registerClusterMetrics(reg prometheus.Registerer) {
	if s.elector == nil {
		return
	}
	pg := s.pg
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "keyfleet", Subsystem: "store", Name: "commits_total",
			Help: "Write transactions with audit events acknowledged."}, func() float64 { c, _ := pg.SyncStats(); return float64(c) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "keyfleet", Subsystem: "store", Name: "syncs_total",
			Help: "Durability barriers run; each makes every commit waiting for it durable."}, func() float64 { _, n := pg.SyncStats(); return float64(n) }))
	s.leaderGauge = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "keyfleet", Subsystem: "cluster", Name: "leader",
		Help: "1 while this keyfleetd is the leader (runs the event sinks, sweeps and compliance gauges), else 0."})
	reg.MustRegister(s.leaderGauge)
	if s.elector.Leader() {
		s.leaderGauge.Set(1)
	}
}
