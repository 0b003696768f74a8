package web

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/clientaddr"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/ratelimit"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config configures the pages. Service and Origin are required; every
// other field has a safe default.
type Config struct {
	Service *core.Service
	Logger  *slog.Logger // default discards
	// Origin is the exact origin browsers reach the pages at
	// ("https://keyfleet.example.com:8443"). Requests that change anything
	// must come from it, and WebAuthn ceremonies are bound to it.
	Origin string
	// RPID is the WebAuthn relying party id; default: Origin's host. It
	// must be Origin's host or a parent domain of it.
	RPID string
	// Secure marks cookies Secure and names the session cookie with the
	// __Host- prefix. Leave it on: only tests on http://localhost turn it
	// off.
	Secure bool
	Now    func() time.Time // default time.Now
	// Sessions keeps sessions; default a MemoryStore (sessions end when
	// keyfleetd restarts and are per daemon).
	Sessions SessionStore
	// IdleTimeout ends a session unused for that long (default 30m);
	// AbsoluteTimeout ends any session that old (default 12h); StepUpFor
	// is how long a re-verification with the key allows sensitive actions
	// (default 5m).
	IdleTimeout     time.Duration
	AbsoluteTimeout time.Duration
	StepUpFor       time.Duration
	// KeyKind is the factor kind used to sign in and step up (default
	// "fido2"); TOTPKind the authenticator-app kind (default "totp").
	KeyKind  string
	TOTPKind string
	// Events reports the event sinks' health for the overview; nil shows
	// no sink section (keyfleetd passes its events manager).
	Events EventSinks
	// Limiter counts first sign-in attempts with a code or a pass;
	// keyfleetd shares one with the API's tokenless routes. Default: one of
	// its own.
	Limiter *ratelimit.Limiter
	// Directory reports the directory sources for the overview; nil
	// shows no directory section.
	Directory DirectoryStatus
}

// DirectoryStatus is what the overview needs of the directory sources
// (*directory.Directory implements it).
type DirectoryStatus interface {
	Overview(ctx context.Context, p core.Principal) (api.DirectoryOverview, error)
}

// EventSinks is what the overview needs of the event sinks
// (*events.Manager implements it).
type EventSinks interface {
	Status() []api.SinkStatus
}

func (c *Config) defaults() error {
	if c.Service == nil {
		return errors.New("web: Config.Service is required")
	}
	u, err := url.Parse(c.Origin)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" {
		return fmt.Errorf("web: Config.Origin %q must be a bare origin like https://keyfleet.example.com:8443", c.Origin)
	}
	if u.Scheme == "http" && u.Hostname() != "localhost" {
		return fmt.Errorf("web: Config.Origin %q: WebAuthn needs https (plain http works only on localhost)", c.Origin)
	}
	if c.RPID == "" {
		c.RPID = u.Hostname()
	}
	if h := u.Hostname(); h != c.RPID && !strings.HasSuffix(h, "."+c.RPID) {
		return fmt.Errorf("web: Config.RPID %q must be %q or a parent domain of it", c.RPID, h)
	}
	setDefault(&c.Logger, slog.New(slog.DiscardHandler))
	if c.Now == nil {
		c.Now = time.Now
	}
	setDefault[SessionStore](&c.Sessions, NewMemoryStore())
	setDefault(&c.IdleTimeout, 30*time.Minute)
	setDefault(&c.AbsoluteTimeout, 12*time.Hour)
	setDefault(&c.StepUpFor, 5*time.Minute)
	setDefault(&c.KeyKind, "fido2")
	setDefault(&c.TOTPKind, "totp")
	if c.Limiter == nil {
		l, err := ratelimit.New(ratelimit.Config{Now: c.Now})
		if err != nil {
			return err
		}
		c.Limiter = l
	}
	if c.IdleTimeout < time.Minute || c.AbsoluteTimeout < c.IdleTimeout || c.StepUpFor < 30*time.Second {
		return fmt.Errorf("web: idle timeout (%s) must be at least 1m and at most the absolute timeout (%s); step-up window (%s) at least 30s",
			c.IdleTimeout, c.AbsoluteTimeout, c.StepUpFor)
	}
	return nil
}

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// handler serves the pages.
type handler struct {
	svc   *core.Service
	log   *slog.Logger
	cfg   Config
	mux   *http.ServeMux
	pages map[string]*template.Template
}

// New validates cfg and returns the handler for the dashboard and the
// self-service pages. Mount it at "/" beside the API (see docs/web.md).
func New(cfg Config) (http.Handler, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	h := &handler{svc: cfg.Service, log: cfg.Logger, cfg: cfg, mux: http.NewServeMux()}
	if err := h.parseTemplates(); err != nil {
		return nil, err
	}
	h.routes()
	return h, nil
}

func (h *handler) parseTemplates() error {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	h.pages = map[string]*template.Template{}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return fmt.Errorf("web: parsing %s: %w", n, err)
		}
		h.pages[strings.TrimSuffix(base, ".html")] = t
	}
	return nil
}

// ServeHTTP sets the security headers every answer carries and dispatches.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Permissions-Policy", "publickey-credentials-get=(self), publickey-credentials-create=(self), camera=(), microphone=(), geolocation=()")
	if h.cfg.Secure {
		hd.Set("Strict-Transport-Security", "max-age=31536000")
	}
	if !strings.HasPrefix(r.URL.Path, "/static/") {
		hd.Set("Cache-Control", "no-store")
	}
	h.mux.ServeHTTP(w, r)
}

// csp allows scripts, styles and images from the daemon alone: no inline
// script or style, no eval, no framing, forms post only to the daemon.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"manifest-src 'self'; worker-src 'self'; " + // the push companion's app manifest and service worker
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

func (h *handler) now() time.Time { return h.cfg.Now().UTC() }

// requestContext attaches the request id and client address for audit.
func requestContext(r *http.Request) (context.Context, string) {
	b := make([]byte, 12)
	rand.Read(b)
	id := hex.EncodeToString(b)
	return core.WithRequest(r.Context(), core.RequestInfo{ID: id, Source: clientaddr.Of(r)}), id
}
