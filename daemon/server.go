// Package daemon wires keyfleetd together: configuration, the store, the
// sealing key, the domain service, the HTTPS API and metrics, and a
// graceful shutdown that finishes in-flight requests and closes the store.
package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/attest"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/clientaddr"
	"github.com/keyfleet/keyfleet/daemon/cluster"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/directory"
	"github.com/keyfleet/keyfleet/daemon/events"
	"github.com/keyfleet/keyfleet/daemon/foreground"
	"github.com/keyfleet/keyfleet/daemon/httpapi"
	fido2kind "github.com/keyfleet/keyfleet/daemon/kinds/fido2"
	pivkind "github.com/keyfleet/keyfleet/daemon/kinds/piv"
	"github.com/keyfleet/keyfleet/daemon/push"
	"github.com/keyfleet/keyfleet/daemon/radius"
	"github.com/keyfleet/keyfleet/daemon/ratelimit"
	"github.com/keyfleet/keyfleet/daemon/seal"
	"github.com/keyfleet/keyfleet/daemon/store"
	"github.com/keyfleet/keyfleet/daemon/store/postgres"
	"github.com/keyfleet/keyfleet/daemon/web"
	"github.com/keyfleet/keyfleet/internal/version"
	"github.com/keyfleet/keyfleet/plugins/host"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// The push hub serves the companions' routes of the API.
var _ httpapi.PushAPI = (*push.Hub)(nil)

var logLevels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}

// Options are what a Server takes besides its Config.
type Options struct {
	Getenv func(string) string // default os.Getenv
	LogOut io.Writer           // default os.Stderr
	Kinds  []sdk.Factor        // factor kinds to enable
	// Now is the domain's clock: enrolment, pass, token and approval
	// expiry (default time.Now). Tests move it to expire things.
	Now func() time.Time
}

// Server is a configured keyfleetd.
type Server struct {
	cfg     Config
	log     *slog.Logger
	reg     *prometheus.Registry
	store   backend
	badger  *store.Store    // set when store.backend is badger
	pg      *postgres.Store // set when store.backend is postgres
	elector *cluster.Elector
	plugins *host.Host
	push    *push.Hub
	svc     *core.Service
	// fg counts the requests being served, for the sweep to give way to
	// (daemon/foreground).
	fg     *foreground.Gate
	events *events.Manager
	api    *httpapi.Handler
	http   *http.Server
	// notify wakes the event sinks after a commit; set once the manager
	// exists (the store is opened first).
	notify      atomic.Pointer[func()]
	counters    *auditCounters
	compliance  *complianceGauges
	leaderGauge prometheus.Gauge
	chain       *chainGauge
	// anchor keeps the audit checkpoints; faultMetrics publish the fault
	// states (faults.go).
	anchor       *anchor
	faultMetrics *faultMetrics
	// roots are the configured extra attestation roots for the built-in
	// kinds and POST /v1/attest/verify, and cert the TLS certificate; both
	// are replaced by Reload (reload.go).
	roots    atomic.Pointer[httpapi.AttestRoots]
	cert     atomic.Pointer[tls.Certificate]
	reloadMu sync.Mutex
	// dir is the directory sync and SCIM service provider (directory.go).
	dir *directory.Directory
	// radius is the RADIUS listener, nil when it is off; radiusAddr is
	// where it listens once serving.
	radius     *radius.Server
	radiusAddr atomic.Value
}

// NewLogger makes the daemon's slog logger from the log settings.
func NewLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: logLevels[cfg.Log.Level]}
	if cfg.Log.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// New validates cfg, opens the store and builds the API. Close (or Run)
// releases the store.
func New(cfg Config, o Options) (*Server, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.LogOut == nil {
		o.LogOut = os.Stderr
	}
	s := &Server{cfg: cfg, log: NewLogger(cfg, o.LogOut), reg: prometheus.NewRegistry(), fg: &foreground.Gate{}}
	s.counters = newAuditCounters(s.reg)
	s.compliance = newComplianceGauges(s.reg)
	s.registerOpsMetrics()
	s.faultMetrics = newFaultMetrics()
	if err := s.open(o); err != nil {
		return nil, err
	}
	if err := s.build(o); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) open(o Options) error {
	storeKey, err := loadKey(o.Getenv, EnvStoreKey, storeKeyPath(s.cfg.DataDir))
	if err != nil {
		return err
	}
	sealKey, err := loadKey(o.Getenv, EnvSealKey, sealKeyPath(s.cfg.DataDir))
	if err != nil {
		return err
	}
	sl, err := seal.New(sealKey)
	if err != nil {
		return err
	}
	if err := s.openBackend(storeKey); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	err = checkSealKey(ctx, s.sealChecks(), s.store, sl, s.log) // the store key was checked at open
	cancel()
	if err != nil {
		s.Close()
		return err
	}
	if err := s.openAnchor(sl); err != nil {
		s.Close()
		return err
	}
	builtin, err := s.builtinKinds(o)
	if err != nil {
		s.Close()
		return err
	}
	kinds, pev, err := s.loadPlugins()
	if err != nil {
		s.Close()
		return err
	}
	if s.push, err = push.New(s.cfg.Push, push.Options{Logger: s.log.With("component", "push"), Registerer: s.reg, Now: o.Now, Shared: s.sharedPushes(), Board: s.pushBoard()}); err != nil {
		s.Close()
		return err
	}
	s.svc, err = core.New(core.Config{OutOfBand: s.push,
		Store: s.store, Sealer: sl, Kinds: append(builtin, kinds...), Logger: s.log,
		ApprovalTTL: s.cfg.ApprovalTTL.Duration, EnrolmentTTL: s.cfg.EnrolmentTTL.Duration,
		BreakGlassMax: s.cfg.BreakGlass.MaxSession.Duration, Now: o.Now,
		MaxFailures: s.cfg.Verify.MaxFailures, LockoutFor: s.cfg.Verify.Lockout.Duration, VerifyTTL: s.cfg.Verify.TTL.Duration,
		PersonTokenTTL: s.cfg.Tokens.PersonTTL.Duration, MaxPersonTokenTTL: s.cfg.Tokens.MaxPersonTTL.Duration,
		IndependenceWindow: s.cfg.Approvals.IndependenceWindow.Duration, ProofTTL: s.cfg.Proofs.TTL.Duration,
		Foreground: s.fg,
	})
	if err != nil {
		s.Close()
		return err
	}
	if err := s.startCheckpoints(); err != nil { // before anything records events concurrently
		s.Close()
		return err
	}
	pev.attach(s.svc)
	s.push.Attach(s.svc)
	return nil
}

func (s *Server) afterAudit(evs []*audit.Event) {
	if f := s.notify.Load(); f != nil {
		(*f)()
	}
	s.counters.count(evs)
	if s.anchor != nil && s.anchor.mgr != nil {
		s.anchor.mgr.Notify()
	}
}

// builtinKinds are the kinds keyfleetd has without plugins (piv, and
// fido2 unless turned off), unless Options.Kinds replaces them (tests).
func (s *Server) builtinKinds(o Options) ([]sdk.Factor, error) {
	roots, err := loadRoots(s.cfg)
	if err != nil {
		return nil, err
	}
	s.roots.Store(&roots)
	if o.Kinds != nil {
		return slices.Clip(o.Kinds), nil
	}
	piv, err := pivkind.New(pivkind.Config{RootsFunc: func() []*x509.Certificate { return s.attestRoots().PIV }})
	if err != nil {
		return nil, err
	}
	kinds := []sdk.Factor{piv}
	if s.cfg.FIDO2.Disabled {
		return kinds, nil
	}
	f := s.cfg.FIDO2
	fido, err := fido2kind.New(fido2kind.Config{RPID: f.RPID, RPDisplayName: f.RPName, Origins: f.Origins,
		RootsFunc:          func() []*x509.Certificate { return s.attestRoots().FIDO2 },
		RequireAttestation: f.RequireAttestation, UserVerification: f.UserVerification, EnterpriseAttestation: f.EnterpriseAttestation})
	if err != nil {
		return nil, fmt.Errorf("fido2: %w", err)
	}
	return append(kinds, fido), nil
}

// readRoots reads PEM files of extra attestation roots.
func readRoots(setting string, files []string) ([]*x509.Certificate, error) {
	var roots []*x509.Certificate
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", setting, err)
		}
		certs, err := attest.ParseCertificates(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", setting, file, err)
		}
		roots = append(roots, certs...)
	}
	return roots, nil
}

// loadPlugins starts the pinned factor plugins. A refused plugin is logged
// and audited, and the daemon runs without it.
func (s *Server) loadPlugins() ([]sdk.Factor, *pluginEvents, error) {
	events := &pluginEvents{}
	h, err := host.New(s.cfg.Plugins, host.Options{Logger: s.log.With("component", "plugins"), Events: events, Registerer: s.reg})
	if err != nil {
		return nil, nil, err
	}
	s.plugins = h
	kinds, err := h.Load(context.Background())
	return kinds, events, err
}

func (s *Server) build(o Options) error {
	reg := s.reg
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.counters.zero(s.svc.Kinds())
	s.registerStoreMetrics(reg)
	err := s.buildEvents(reg)
	if err != nil {
		return err
	}
	if err := s.buildDirectory(); err != nil {
		return err
	}
	// One limiter for the API's tokenless routes and the pages' first
	// sign-in, so switching between them gains a guesser nothing; with
	// PostgreSQL, for every keyfleetd on the database.
	limiter, err := ratelimit.New(ratelimit.Config{Shared: s.sharedLimits()})
	if err != nil {
		return err
	}
	h, err := httpapi.New(httpapi.Config{
		Service: s.svc, Logger: s.log, Registry: reg, MaxBodyBytes: s.cfg.MaxBodyBytes,
		Ready: s.store.Ready, Checkpoints: s,
		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
		Events:  s.events, AttestRootsFunc: s.attestRoots, Build: ptr(version.Get()), Limiter: limiter, Directory: s.dir,
		FirstLogin: s.firstLogin(), Push: s.push,
	})
	if err != nil {
		return err
	}
	s.api = h
	if err := s.buildRadius(reg); err != nil {
		return err
	}
	handler, err := s.withPages(h, limiter)
	if err != nil {
		return err
	}
	handler = s.withSCIM(handler)
	cert, err := loadCertificate(s.cfg)
	if err != nil {
		return err
	}
	s.cert.Store(cert)
	s.http = &http.Server{
		// The client address is found once, for the API and the pages.
		Handler:           clientaddr.Middleware(clientaddr.New(s.cfg.trustedProxies()), counted(s.fg, handler)),
		TLSConfig:         serverTLS(s.certificate),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return nil
}

// buildEvents makes the event sinks' manager; it wakes after every commit
// that appended audit events.
func (s *Server) buildEvents(reg prometheus.Registerer) error {
	m, err := events.New(s.cfg.Events, events.Options{
		Source: s.store, Cursors: s.store, Registerer: reg, Logger: s.log.With("component", "events"),
		Groups: func(ctx context.Context, id string) ([]string, error) {
			u, err := s.svc.GetUser(ctx, core.System, id)
			if errors.Is(err, core.ErrNotFound) {
				return nil, nil
			}
			return u.Groups, err
		},
		DeadLetters: deadLetters{s.svc},
	})
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	s.events = m
	notify := m.Notify
	s.notify.Store(&notify)
	return nil
}

// deadLetters audits a batch a sink gave up on.
type deadLetters struct{ svc *core.Service }

func (d deadLetters) ReportDeadLetter(ctx context.Context, dl events.DeadLetter) error {
	return d.svc.RecordEvent(ctx, events.ActionDeadLetter, "event_sink", dl.Sink, map[string]string{
		"from_seq": fmt.Sprint(dl.FromSeq), "to_seq": fmt.Sprint(dl.ToSeq), "attempts": fmt.Sprint(dl.Attempts), "error": dl.Error})
}

// withPages puts the dashboard and self-service pages beside the API: /v1/
// and the probes go to the API, everything else to the pages.
func (s *Server) withPages(apiHandler http.Handler, limiter *ratelimit.Limiter) (http.Handler, error) {
	if s.cfg.Web.Disabled {
		return apiHandler, nil
	}
	pages, err := web.New(web.Config{Service: s.svc, Logger: s.log.With("component", "web"), Origin: s.cfg.Web.Origin,
		RPID: s.cfg.FIDO2.RPID, Secure: !s.cfg.Web.Insecure, Events: s.events, Sessions: s.webSessions(), Limiter: limiter,
		Directory: s.dir})
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case strings.HasPrefix(p, "/v1/"), p == "/healthz", p == "/readyz", p == "/metrics":
			apiHandler.ServeHTTP(w, r)
		default:
			pages.ServeHTTP(w, r)
		}
	}), nil
}

func (s *Server) registerStoreMetrics(reg *prometheus.Registry) {
	if b := s.badger; b != nil {
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "keyfleet", Subsystem: "store", Name: "size_bytes",
				Help: "On-disk size of the store (LSM tree and value log)."}, func() float64 { return float64(b.Size()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "keyfleet", Subsystem: "store", Name: "commits_total",
				Help: "Write transactions acknowledged."}, func() float64 { c, _ := b.SyncStats(); return float64(c) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "keyfleet", Subsystem: "store", Name: "syncs_total",
				Help: "Syncs to disk; each makes every commit waiting for it durable."}, func() float64 { _, n := b.SyncStats(); return float64(n) }))
	}
	s.registerClusterMetrics(reg)
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "keyfleet", Subsystem: "audit", Name: "head_seq",
			Help: "Sequence number of the last audit event."}, func() float64 { return float64(s.store.AuditHead().Seq) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "keyfleet", Subsystem: "approvals", Name: "pending",
			Help: "Requests waiting for a second approver."}, s.pendingApprovals),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "keyfleet", Subsystem: "sweep", Name: "gave_way_total",
			Help: "Times the periodic compliance sweep paused between batches of users for requests being served."},
			func() float64 { n, _ := s.fg.Waited(); return float64(n) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "keyfleet", Subsystem: "sweep", Name: "gave_way_seconds_total",
			Help: "Time the periodic compliance sweep spent paused for requests being served."},
			func() float64 { _, d := s.fg.Waited(); return d.Seconds() }),
	)
	s.registerFaultMetrics(reg)
}

func (s *Server) pendingApprovals() float64 {
	as, _, err := s.svc.ListApprovals(context.Background(), core.System, api.ApprovalPending, core.PageReq{Limit: core.MaxPageSize})
	if err != nil {
		return -1
	}
	return float64(len(as))
}

// Service is the domain service (for tests and tools in this process).
func (s *Server) Service() *core.Service { return s.svc }

// Handler is the API handler.
func (s *Server) Handler() *httpapi.Handler { return s.api }

// ConnectedCompanions is how many push companions have a stream open to
// this keyfleetd (keyfleet_push_connected_devices).
func (s *Server) ConnectedCompanions() float64 { return s.push.Connected() }

// Requests is how many requests keyfleetd is serving now, as its
// background sweep counts them, and how many it has counted since it
// started (for tests and tools in this process).
func (s *Server) Requests() (inFlight int, counted int64) { return s.fg.InFlight(), s.fg.Entered() }

// Events is the event sinks' manager (for tests and tools in this process).
func (s *Server) Events() *events.Manager { return s.events }

// Run serves HTTPS on the configured address until ctx is cancelled, then
// shuts down gracefully. ready, if not nil, receives the bound address.
func (s *Server) Run(ctx context.Context, ready func(addr string)) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		s.Close()
		return fmt.Errorf("listening on %s: %w (is another keyfleetd running? pick another address with --listen)", s.cfg.Listen, err)
	}
	return s.Serve(ctx, ln, ready)
}

// Serve is Run on an existing listener.
func (s *Server) Serve(ctx context.Context, ln net.Listener, ready func(addr string)) error {
	stopRadius, err := s.startRadius()
	if err != nil {
		ln.Close()
		s.Close()
		return err
	}
	chainCtx, stopChain := context.WithCancel(context.Background())
	chainDone := make(chan struct{})
	go func() { defer close(chainDone); s.checkChain(chainCtx) }()
	sweepDone := make(chan struct{})
	go func() { defer close(sweepDone); s.lead(chainCtx, s.leaderWork) }()
	stopCheckpoints := s.runCheckpoints()
	stopDirectory := s.runDirectory()
	eventsCtx, stopEvents := context.WithCancel(context.Background())
	eventsDone := make(chan struct{})
	go func() {
		defer close(eventsDone)
		if err := s.runEvents(eventsCtx); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Error("event sinks stopped", "err", err)
		}
	}()
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(tls.NewListener(ln, s.http.TLSConfig)) }()
	runtimeLimit := debug.SetMemoryLimit(-1)
	serving := []any{"addr", ln.Addr().String(), "data", s.cfg.DataDir, "audit_head", s.store.AuditHead().Seq,
		"memory_limit_mb", runtimeLimit >> 20, "gogc", gcPercent()}
	group, limited := groupMemoryLimit("/")
	if limited {
		serving = append(serving, "service_memory_limit_mb", group>>20)
	}
	s.log.Info("keyfleetd serving", serving...)
	if advice := memoryGroupAdvice(group, runtimeLimit); limited && advice != "" {
		s.log.Warn(advice, "service_memory_limit_mb", group>>20, "memory_limit_mb", runtimeLimit>>20)
	}
	if ready != nil {
		ready(ln.Addr().String())
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	stopRadius() // its answers in flight commit before the store closes
	stopChain()
	<-chainDone
	<-sweepDone
	stopDirectory()
	stopCheckpoints() // its last checkpoint, before the store closes
	// The sinks stop first: their live streams end, so the HTTP shutdown
	// does not wait on them.
	stopEvents()
	<-eventsDone
	return errors.Join(serveErr, s.shutdown())
}

// sweep ends break-glass sessions whose time ran out, every half minute,
// so their end is audited even if nobody presents the token again, and
// sweeps the shared database every five minutes; beside it, complianceLoop
// refreshes the compliance gauges (a sweep that gives way to requests may
// take a minute or more, and must not hold the rest back).
func (s *Server) sweep(ctx context.Context) {
	done := make(chan struct{})
	go func() { defer close(done); s.complianceLoop(ctx) }()
	defer func() { <-done }()
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for i := 0; ; i++ {
		if err := s.svc.SweepBreakGlass(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("ending an expired break-glass session", "err", err)
		}
		if i%10 == 0 {
			s.sweepStore(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// complianceLoop refreshes the compliance gauges and audits the enrolment
// deadlines that passed every sweepEvery, the first time as
// compliance_saved.go says.
func (s *Server) complianceLoop(ctx context.Context) {
	due, kept, ok := s.firstCompliance(time.Now())
	if ok {
		s.compliance.set(api.ComplianceReport{Overall: kept.Overall, ByGroup: kept.ByGroup})
	}
	for {
		t := time.NewTimer(time.Until(due))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		s.refreshCompliance(ctx)
		due = time.Now().Add(sweepEvery)
	}
}

// refreshCompliance refreshes the compliance gauges and, from the same
// evaluation of every user, audits the enrolment deadlines that passed.
func (s *Server) refreshCompliance(ctx context.Context) {
	start := time.Now()
	n0, d0 := s.fg.Waited()
	r, deadlines, err := s.svc.ComplianceSweep(ctx, 14*24*time.Hour)
	n1, d1 := s.fg.Waited()
	s.log.Debug("compliance sweep", "users", r.Overall.Users, "deadlines_recorded", deadlines,
		"duration_ms", time.Since(start).Milliseconds(), "gave_way", n1-n0, "gave_way_ms", (d1 - d0).Milliseconds())
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("refreshing the compliance gauges and auditing passed deadlines", "err", err)
		}
		if r.GeneratedAt.IsZero() {
			return
		}
	}
	s.compliance.set(r)
	if err == nil {
		s.saveCompliance(r)
	}
}

// shutdown stops accepting, lets in-flight requests finish (bounded by
// ShutdownTimeout), then closes the store so Badger flushes cleanly.
func (s *Server) shutdown() error {
	s.log.Info("keyfleetd shutting down", "timeout", s.cfg.ShutdownTimeout.String())
	s.push.Close() // companions' streams and waiting finishes end: pending pushes are lost on Badger, and say so (on PostgreSQL they wait on in the database)
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout.Duration)
	defer cancel()
	err := s.http.Shutdown(ctx)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if cerr := s.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	s.log.Info("keyfleetd stopped")
	return err
}

// Close stops the plugins and closes the store (Run and Serve call it when
// they end; call it for a server that never ran).
func (s *Server) Close() error {
	var err error
	if s.push != nil {
		s.push.Close()
	}
	if s.plugins != nil {
		err = s.plugins.Close()
	}
	if s.store != nil {
		if cerr := s.store.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("closing store: %w", cerr))
		}
	}
	return err
}

// checkChain reports the audit chain's state at start-up, in the
// background. The store was compared with the newest signed checkpoint
// before serving (openAnchor: the record at its sequence number carries
// its hash and every record after it links), which costs the events since
// that checkpoint, not the whole history; the whole chain is checked only
// when there is no checkpoint yet, and on demand (GET
// /v1/audit/verify?full=true).
func (s *Server) checkChain(ctx context.Context) {
	if st := s.anchor.startup; st != nil && st.found {
		broken := st.err != nil
		s.chain.set(broken)
		if !broken {
			s.log.Info("audit chain intact after the newest checkpoint", "from_seq", st.rep.Checkpoint.Seq, "events", st.rep.Checked, "head_seq", st.rep.Head.Seq)
		}
		return
	}
	start := time.Now()
	v, err := core.VerifyStore(ctx, s.store)
	switch {
	case errors.Is(err, context.Canceled):
	case err != nil:
		s.log.Error("audit chain check could not run", "err", err)
	case v.Break != nil:
		s.chain.set(true)
		s.log.Error("AUDIT CHAIN BROKEN: records were changed outside keyfleetd", "seq", v.Break.Seq, "reason", v.Break.Reason)
	default:
		s.chain.set(false)
		s.log.Info("audit chain intact", "events", v.Checked, "took_ms", time.Since(start).Milliseconds())
	}
}

// gcPercent is the collector's GOGC in force (0 when it is off).
func gcPercent() uint64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// counted serves next with every request counted by fg while it is
// served, so that the periodic sweep gives way to it.
func counted(fg *foreground.Gate, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, leave := fg.Enter(r.Context())
		defer leave()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}
