package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/foreground"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// Sealer encrypts secret material before it reaches the store. aad binds a
// sealed blob to its owner (a factor id), so blobs cannot be swapped.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// Config configures a Service. The zero value of every field but Store and
// Sealer is usable.
type Config struct {
	Store  Store
	Sealer Sealer
	// Kinds are the factor kinds this daemon offers: built-in ones and
	// plugins, behind one interface.
	Kinds []sdk.Factor
	// ApprovalTTL is how long a request waits for a second approver
	// (default 24h).
	ApprovalTTL time.Duration
	// EnrolmentTTL is the default lifetime of an enrolment (default 1h);
	// MaxEnrolmentTTL caps what a caller may ask for (default 7 days).
	EnrolmentTTL    time.Duration
	MaxEnrolmentTTL time.Duration
	// MaxFailures is how many failed verifications lock a factor, or a
	// user across factors (default 5); LockoutFor is how long (default
	// 15m). VerifyTTL is how long a begun verification may be finished
	// (default 5m).
	MaxFailures int
	LockoutFor  time.Duration
	VerifyTTL   time.Duration
	// BreakGlassMax is the longest a break-glass session may last
	// (default 4h, at most 24h).
	BreakGlassMax time.Duration
	// ProofTTL is how long a proof's challenge may be answered (default
	// 2m, at most 10m): a proof is fresh or it is nothing.
	ProofTTL time.Duration
	// PersonTokenTTL is a person's own token's lifetime when they name
	// none (default 12h); MaxPersonTokenTTL caps what they may ask for
	// (default 7 days). Service accounts' tokens are not capped: one
	// without an expiry is flagged by the compliance report.
	PersonTokenTTL    time.Duration
	MaxPersonTokenTTL time.Duration
	// IndependenceWindow is how long after one person acted on another's
	// account (created it, asked a role for it, recovered it, enrolled a
	// factor or issued a pass for it) the two may not decide each other's
	// requests (default 7 days; see independence.go).
	IndependenceWindow time.Duration
	// OutOfBand delivers out-of-band kinds' prompts (pushes) and keeps
	// them pending (daemon/push); nil offers no out-of-band factor.
	OutOfBand OutOfBand
	// Foreground counts the requests being served; keyfleetd's periodic
	// compliance sweep gives way to them between batches of users
	// (daemon/foreground). Nil: the sweep never waits.
	Foreground *foreground.Gate
	Now        func() time.Time // default time.Now
	Rand       io.Reader        // default crypto/rand
	Logger     *slog.Logger     // default discards
}

// Service is the domain. It is safe for concurrent use.
type Service struct {
	store  Store
	sealer Sealer
	kinds  map[string]kind
	cfg    Config
	log    *slog.Logger

	touches  tokenTouch
	noted    notedPolicy
	policies policyCache

	firstLogin firstLoginPasses
}

// New validates cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Sealer == nil {
		return nil, errors.New("core: Config.Store and Config.Sealer are required")
	}
	if cfg.ApprovalTTL == 0 {
		cfg.ApprovalTTL = 24 * time.Hour
	}
	if cfg.EnrolmentTTL == 0 {
		cfg.EnrolmentTTL = time.Hour
	}
	if cfg.MaxEnrolmentTTL == 0 {
		cfg.MaxEnrolmentTTL = 7 * 24 * time.Hour
	}
	if cfg.ApprovalTTL < time.Minute || cfg.EnrolmentTTL < time.Minute || cfg.EnrolmentTTL > cfg.MaxEnrolmentTTL {
		return nil, fmt.Errorf("core: approval TTL (%s) and enrolment TTL (%s) must be at least a minute, and the enrolment TTL at most %s", cfg.ApprovalTTL, cfg.EnrolmentTTL, cfg.MaxEnrolmentTTL)
	}
	if cfg.MaxFailures == 0 {
		cfg.MaxFailures = 5
	}
	if cfg.LockoutFor == 0 {
		cfg.LockoutFor = 15 * time.Minute
	}
	if cfg.VerifyTTL == 0 {
		cfg.VerifyTTL = 5 * time.Minute
	}
	if cfg.BreakGlassMax == 0 {
		cfg.BreakGlassMax = 4 * time.Hour
	}
	if cfg.BreakGlassMax < time.Minute || cfg.BreakGlassMax > 24*time.Hour {
		return nil, fmt.Errorf("core: the break-glass session limit (%s) must be from 1m to 24h", cfg.BreakGlassMax)
	}
	if err := cfg.proofDefaults(); err != nil {
		return nil, err
	}
	if cfg.MaxFailures < 1 || cfg.LockoutFor < time.Second || cfg.VerifyTTL < 10*time.Second {
		return nil, fmt.Errorf("core: max failures (%d) must be at least 1, lockout (%s) at least 1s, verify TTL (%s) at least 10s", cfg.MaxFailures, cfg.LockoutFor, cfg.VerifyTTL)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = defaultRand
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{store: cfg.Store, sealer: cfg.Sealer, kinds: map[string]kind{}, cfg: cfg, log: cfg.Logger,
		touches: tokenTouch{last: map[string]time.Time{}}, noted: notedPolicy{m: map[string]string{}}}
	for _, f := range cfg.Kinds {
		if err := s.addKind(f); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Kinds lists the registered factor kinds.
func (s *Service) Kinds() []string {
	out := make([]string, 0, len(s.kinds))
	for k := range s.kinds {
		out = append(out, k)
	}
	return out
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// Now is the service's clock (Config.Now): what records' states, such as an
// enrolment's expiry, are read against.
func (s *Service) Now() time.Time { return s.now() }

// RequestInfo is what audit records say about the request behind a change.
type RequestInfo struct {
	ID     string // request id
	Source string // client address
	// Extra is what else the request says about where it comes from (a
	// RADIUS client's NAS-Identifier, Calling-Station-Id); audit records
	// keep it in their extra fields.
	Extra map[string]string
}

type requestKey struct{}

// WithRequest attaches request information to ctx for audit records.
func WithRequest(ctx context.Context, ri RequestInfo) context.Context {
	return context.WithValue(ctx, requestKey{}, ri)
}

// RequestFrom returns the request information WithRequest attached to
// ctx (zero when none).
func RequestFrom(ctx context.Context) RequestInfo { return requestFrom(ctx) }

func requestFrom(ctx context.Context) RequestInfo {
	ri, _ := ctx.Value(requestKey{}).(RequestInfo)
	return ri
}

// event starts an audit event for p acting on a target.
func (s *Service) event(ctx context.Context, p Principal, action string, target targetRef) *audit.Event {
	ri := requestFrom(ctx)
	ev := &audit.Event{
		Time: s.now(), Actor: p.Actor(), Action: action, Target: target.api(),
		RequestID: ri.ID, Source: ri.Source,
	}
	if p.breakGlass() {
		// Every action in a break-glass session says so, for the sinks
		// to raise it as high severity.
		ev.Extra = map[string]string{"breakglass": "true"}
	}
	ri.addRequestExtra(ev)
	return ev
}

type targetRef struct{ typ, id, name string }

func userTarget(u User) targetRef     { return targetRef{"user", u.ID, u.Username} }
func factorTarget(f Factor) targetRef { return targetRef{"factor", f.ID, f.Label} }

// proofDefaults fills and checks the proof, token and independence
// settings.
func (cfg *Config) proofDefaults() error {
	if cfg.ProofTTL == 0 {
		cfg.ProofTTL = 2 * time.Minute
	}
	if cfg.PersonTokenTTL == 0 {
		cfg.PersonTokenTTL = 12 * time.Hour
	}
	if cfg.MaxPersonTokenTTL == 0 {
		cfg.MaxPersonTokenTTL = 7 * 24 * time.Hour
	}
	if cfg.IndependenceWindow == 0 {
		cfg.IndependenceWindow = 7 * 24 * time.Hour
	}
	switch {
	case cfg.ProofTTL < 10*time.Second || cfg.ProofTTL > 10*time.Minute:
		return fmt.Errorf("core: the proof lifetime (%s) must be from 10s to 10m", cfg.ProofTTL)
	case cfg.PersonTokenTTL < time.Minute || cfg.PersonTokenTTL > cfg.MaxPersonTokenTTL:
		return fmt.Errorf("core: a person's token lifetime (%s) must be from 1m to the maximum (%s)", cfg.PersonTokenTTL, cfg.MaxPersonTokenTTL)
	case cfg.MaxPersonTokenTTL > 90*24*time.Hour:
		return fmt.Errorf("core: the longest a person's token may live (%s) is at most 90 days (2160h)", cfg.MaxPersonTokenTTL)
	case cfg.IndependenceWindow < 0:
		return fmt.Errorf("core: the independence window (%s) cannot be negative", cfg.IndependenceWindow)
	}
	return nil
}
