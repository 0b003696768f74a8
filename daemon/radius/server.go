package radius

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	"layeh.com/radius"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/foreground"
	"github.com/keyfleet/keyfleet/daemon/ratelimit"
)

// Verifier is what the listener needs of daemon/core: *core.Service.
type Verifier interface {
	CheckVerify(ctx context.Context, p core.Principal, in api.CheckVerify) (api.VerifyResult, error)
	LoginState(ctx context.Context, p core.Principal, ref string) (core.LoginState, error)
	RecordLogin(ctx context.Context, p core.Principal, ev core.LoginEvent) error
	IssueFirstLoginPass(ctx context.Context, p core.Principal, ref string, ttl time.Duration) (api.IssuedPass, error)
	CodeKinds() []string
}

var _ Verifier = (*core.Service)(nil)

// FirstFactor checks the first factor of password+code (FirstFactorLDAP).
// Check returns ErrBadPassword for a wrong password or unknown user, and
// an error wrapping ErrDirectoryUnavailable when it cannot tell.
type FirstFactor interface {
	Check(ctx context.Context, user, password string) error
}

// FirstLogin turns on first-login passes (keyfleetd.yaml first_login).
type FirstLogin struct {
	// PassTTL is how long a first-login pass lasts; 0 turns them off.
	PassTTL time.Duration
	// WelcomeURL is where a pass is redeemed (the web pages' /welcome).
	WelcomeURL string
}

// Options are what a Server takes besides its Config.
type Options struct {
	Service  Verifier // required
	Logger   *slog.Logger
	Registry prometheus.Registerer // nil skips the metrics
	// FirstFactor replaces the LDAP check that Config.LDAP describes
	// (tests); nil builds it from the config when first_factor is ldap.
	FirstFactor FirstFactor
	FirstLogin  FirstLogin
	// OutOfBand maps factor kinds answered out of band (push) to what
	// starts and polls them.
	OutOfBand map[string]OutOfBand
	// Challenges keeps open challenges; nil keeps them in this
	// listener's memory. With several keyfleetd on one database,
	// keyfleetd passes cluster.RadiusChallenges, so that a NAS may send
	// the answer to any of them.
	Challenges Challenges
	// SharedPushes says the pushes themselves are shared by every
	// keyfleetd on the database (daemon/push with a Board): a push wait
	// may then be polled by any listener, not only the one that asked.
	SharedPushes bool
	// Limits keeps the per-user buckets; nil keeps them in this
	// listener's memory. With several keyfleetd on one database,
	// keyfleetd passes cluster.Buckets, so that a user's limit holds
	// across all of them.
	Limits ratelimit.Shared
	// Foreground counts the requests being answered, for keyfleetd's
	// background passes to give way to; nil counts nothing.
	Foreground *foreground.Gate
	Now        func() time.Time // default time.Now
	Rand       io.Reader        // default crypto/rand: challenge handles
}

// client is a configured NAS.
type client struct {
	name     string
	networks []netip.Prefix
	secret   []byte
	limit    *rate.Limiter
}

// Server is the RADIUS listener. It is safe for concurrent use.
type Server struct {
	cfg        Config
	svc        Verifier
	log        *slog.Logger
	first      FirstFactor
	firstLogin FirstLogin
	oob        map[string]OutOfBand
	now        func() time.Time
	clients    []*client
	codeKinds  []string
	principal  core.Principal
	users      *userLimits
	cache      *replyCache
	open       Challenges
	rand       io.Reader
	refusals   *sampler[refusal]
	metrics    *metrics
	slots      chan struct{}
	boot       string // request ids: radius-<boot>-<n>
	sharedPush bool   // Options.SharedPushes
	fg         *foreground.Gate
	seq        atomic.Uint64
	inflight   sync.WaitGroup
}

// refusal is a sampled decision: a rate-limited or dropped request.
type refusal struct {
	client, source, user, reason string
}

// New validates cfg (after Defaults), reads the clients' secrets and
// returns a Server. It does not listen.
func New(cfg Config, o Options) (*Server, error) {
	cfg.Enabled = true
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Service == nil {
		return nil, errors.New("radius: Options.Service is required")
	}
	s := &Server{cfg: cfg, svc: o.Service, log: o.Logger, first: o.FirstFactor, firstLogin: o.FirstLogin, oob: o.OutOfBand,
		now: o.Now, principal: core.LoginPrincipal("radius"), slots: make(chan struct{}, cfg.MaxInFlight),
		users: newUserLimits(cfg.RateLimit.PerUser, cfg.RateLimit.UserBurst), cache: newReplyCache(replyTTL, maxCachedReqs),
		refusals: newSampler[refusal](time.Minute)}
	s.users.shared = o.Limits
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	s.rand, s.open, s.sharedPush, s.fg = o.Rand, o.Challenges, o.SharedPushes, o.Foreground
	if s.open == nil {
		s.open = newMemChallenges(s.now)
	}
	var boot [4]byte
	if _, err := io.ReadFull(o.Rand, boot[:]); err != nil {
		return nil, err
	}
	s.boot = hex.EncodeToString(boot[:])
	var err error
	if s.metrics, err = newMetrics(o.Registry); err != nil {
		return nil, err
	}
	if err := s.loadClients(); err != nil {
		return nil, err
	}
	s.metrics.start(s.clients)
	if s.first == nil && cfg.FirstFactor == FirstFactorLDAP {
		if s.first, err = NewLDAP(cfg.LDAP); err != nil {
			return nil, err
		}
	}
	s.codeKinds = s.svc.CodeKinds()
	if len(cfg.Kinds) > 0 {
		s.codeKinds = cfg.Kinds
	}
	return s, nil
}

func (s *Server) loadClients() error {
	for _, c := range s.cfg.Clients {
		secret, err := readSecret(c.SecretFile)
		if err != nil {
			return fmt.Errorf("radius.clients %s: secret_file: %w", c.Name, err)
		}
		cl := &client{name: c.Name, secret: secret,
			limit: rate.NewLimiter(rate.Limit(s.cfg.RateLimit.PerClient), s.cfg.RateLimit.ClientBurst)}
		for _, n := range c.Networks {
			p, _ := parseNetwork(n) // checked by Validate
			cl.networks = append(cl.networks, p)
		}
		s.clients = append(s.clients, cl)
	}
	return nil
}

// clientFor finds the NAS that sends from addr; nil for none.
func (s *Server) clientFor(addr net.Addr) *client {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return nil
	}
	ip := ua.AddrPort().Addr().Unmap()
	for _, c := range s.clients {
		for _, p := range c.networks {
			if p.Contains(ip) {
				return c
			}
		}
	}
	return nil
}

// ListenAndServe listens on the configured UDP address and serves until
// ctx ends. ready, if not nil, gets the bound address.
func (s *Server) ListenAndServe(ctx context.Context, ready func(addr string)) error {
	conn, err := net.ListenPacket("udp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("radius: listening on %s: %w (another RADIUS server there? pick another radius.listen)", s.cfg.Listen, err)
	}
	if ready != nil {
		ready(conn.LocalAddr().String())
	}
	return s.Serve(ctx, conn)
}

// Serve answers requests on conn until ctx ends; it then closes conn and
// waits for the requests being worked on.
func (s *Server) Serve(ctx context.Context, conn net.PacketConn) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	tidyCtx, stopTidy := context.WithCancel(ctx)
	defer stopTidy()
	tidied := make(chan struct{})
	go func() { defer close(tidied); s.tidyEvery(tidyCtx, 10*time.Second) }()
	s.log.Info("radius listening", "addr", conn.LocalAddr().String(), "clients", len(s.clients), "first_factor", s.cfg.FirstFactor)
	var err error
	for err == nil {
		err = s.readOne(ctx, conn)
	}
	s.inflight.Wait()
	stopTidy()
	<-tidied
	s.tidy(true) // what was held back is audited before the store closes
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// readOne reads a datagram and hands it to a worker; it returns an error
// only when the connection is gone.
func (s *Server) readOne(ctx context.Context, conn net.PacketConn) error {
	buf := buffers.Get().(*[radius.MaxPacketLength]byte)
	n, addr, err := conn.ReadFrom(buf[:])
	if err != nil {
		buffers.Put(buf)
		if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
			return net.ErrClosed
		}
		s.log.Warn("radius: reading a packet", "err", err)
		return nil
	}
	select {
	case s.slots <- struct{}{}:
	default:
		buffers.Put(buf)
		s.metrics.drop("", "busy")
		return nil
	}
	s.inflight.Add(1)
	go func() {
		defer s.inflight.Done()
		defer func() { <-s.slots; buffers.Put(buf) }()
		ctx, leave := s.fg.Enter(context.WithoutCancel(ctx))
		defer leave()
		s.handle(ctx, conn, buf[:n], addr)
	}()
	return nil
}

// buffers holds datagram buffers between requests: a packet's parts are
// copied out of it (radius.Parse, the reply) before it goes back.
var buffers = sync.Pool{New: func() any { return new([radius.MaxPacketLength]byte) }}

func (s *Server) tidyEvery(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.tidy(false)
		}
	}
}

// tidy forgets expired challenges and audits the refusals held back for
// a minute (all of them when flush is set).
func (s *Server) tidy(flush bool) {
	now := s.now()
	if err := s.open.Sweep(context.Background(), now); err != nil {
		s.log.Warn("radius: forgetting expired challenges", "err", err)
	}
	at := now
	if flush {
		at = now.Add(time.Hour)
	}
	for _, h := range s.refusals.due(at) {
		s.recordRefusal(h.what, h.count)
	}
}
