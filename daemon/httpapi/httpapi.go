// Package httpapi serves keyfleet's REST API under /v1: authentication,
// the role check in front of every route, JSON decoding with limits, and
// the one mapping from errors to RFC 9457 problem responses (errors.go).
// Handlers are thin: they decode, call daemon/core, and encode.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/clientaddr"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/ratelimit"
	"github.com/keyfleet/keyfleet/internal/strictjson"
	"github.com/keyfleet/keyfleet/internal/version"
)

// Config configures the API handler.
type Config struct {
	Service *core.Service
	Logger  *slog.Logger
	// Registry receives the HTTP metrics; nil skips them.
	Registry prometheus.Registerer
	// MaxBodyBytes limits request bodies (default 1 MiB).
	MaxBodyBytes int64
	// Ready reports whether the daemon can serve (nil) for /readyz.
	Ready func() error
	// Checkpoints, if set, compares the audit log with its newest signed
	// checkpoint for GET /v1/audit/verify.
	Checkpoints CheckpointChecker
	// Metrics serves /metrics; nil leaves it out.
	Metrics http.Handler
	// Events serves the live event stream and sink status; nil leaves
	// those routes out.
	Events EventsAPI
	// AttestRoots are extra attestation roots for POST /v1/attest/verify.
	AttestRoots AttestRoots
	// AttestRootsFunc, when set, is asked for them at each request
	// instead (keyfleetd reloads them on SIGHUP).
	AttestRootsFunc func() AttestRoots
	// Build is the running binary's build, shown by GET /healthz when
	// asked for JSON; nil shows only the status.
	Build *version.Info
	// Directory runs directory syncs for /v1/directory; nil serves the
	// status only.
	Directory DirectoryAPI
	// Limiter counts attempts on the routes that need no token; keyfleetd
	// shares one with the web pages. Default: one of its own.
	Limiter *ratelimit.Limiter
	// FirstLogin turns on first-login passes for login surfaces.
	FirstLogin FirstLogin
	// Push serves the push companions' routes (/v1/push/…); nil leaves
	// them out.
	Push PushAPI
}

// Route is one registered route: its pattern and the permission it needs
// ("" for the unauthenticated probes).
type Route struct {
	Pattern string
	Action  core.Action
}

// Handler is the API.
type Handler struct {
	svc     *core.Service
	log     *slog.Logger
	mux     *http.ServeMux
	maxBody int64
	routes  []Route
	metrics *httpMetrics
	limiter *ratelimit.Limiter
	// checkpoints compares the audit log with its newest checkpoint; nil
	// when none is configured.
	checkpoints CheckpointChecker
}

// CheckpointChecker compares the audit log with the newest signed audit
// checkpoint (daemon/checkpoint): the record at its sequence number must
// carry its hash, and every record after it link, up to head, the head it
// checked to. The check is nil when there is no checkpoint yet.
type CheckpointChecker interface {
	CheckCheckpoint(ctx context.Context) (check *api.CheckpointCheck, head audit.Head)
}

// New returns the API handler with every route registered.
func New(cfg Config) (*Handler, error) {
	if cfg.Service == nil {
		return nil, errors.New("httpapi: Config.Service is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.Ready == nil {
		cfg.Ready = func() error { return nil }
	}
	if cfg.Limiter == nil {
		l, err := ratelimit.New(ratelimit.Config{})
		if err != nil {
			return nil, err
		}
		cfg.Limiter = l
	}
	h := &Handler{svc: cfg.Service, log: cfg.Logger, mux: http.NewServeMux(), maxBody: cfg.MaxBodyBytes, limiter: cfg.Limiter, checkpoints: cfg.Checkpoints}
	m, err := newHTTPMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	h.metrics = m
	h.probes(cfg)
	h.register()
	h.registerEvents(cfg.Events)
	h.registerPush(cfg.Push)
	roots := cfg.AttestRootsFunc
	if roots == nil {
		roots = func() AttestRoots { return cfg.AttestRoots }
	}
	h.registerAttest(roots)
	h.registerDirectory(cfg.Directory)
	h.registerLogin(cfg.FirstLogin)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, &apiError{http.StatusNotFound, probNotFound, "Not found",
			fmt.Sprintf("there is no route %s %s; the API is documented in docs/openapi.yaml", r.Method, r.URL.Path)})
	})
	return h, nil
}

// Routes lists the registered routes (the OpenAPI test checks them).
func (h *Handler) Routes() []Route { return h.routes }

func (h *Handler) probes(cfg Config) {
	h.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if wantsJSON(r) {
			writeJSON(w, http.StatusOK, health{Status: "ok", Info: cfg.Build})
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	h.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := cfg.Ready(); err != nil {
			if secs, ok := retryAfter(err); ok {
				w.Header().Set("Retry-After", strconv.Itoa(secs))
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: %v\n", err)
			return
		}
		io.WriteString(w, "ready\n")
	})
	h.routes = append(h.routes, Route{"GET /healthz", ""}, Route{"GET /readyz", ""})
	if cfg.Metrics != nil {
		h.mux.Handle("GET /metrics", cfg.Metrics)
		h.routes = append(h.routes, Route{"GET /metrics", ""})
	}
}

// health is GET /healthz's JSON answer: the status and the build.
type health struct {
	Status string `json:"status"`
	*version.Info
}

// wantsJSON says the probe's caller asked for JSON: ?format=json or an
// Accept header naming application/json.
func wantsJSON(r *http.Request) bool {
	return r.URL.Query().Get("format") == "json" || strings.Contains(r.Header.Get("Accept"), "application/json")
}

// handlerFunc is an authenticated handler: it returns the status and body
// to encode, or an error for the problem mapping.
type handlerFunc func(r *http.Request, p core.Principal) (int, any, error)

// route registers an authenticated route that answers JSON.
func (h *Handler) route(pattern string, a core.Action, fn handlerFunc) {
	h.routeStream(pattern, a, func(w http.ResponseWriter, r *http.Request, p core.Principal) error {
		status, body, err := fn(r, p)
		if err == nil {
			writeJSON(w, status, body)
		}
		return err
	})
}

// routeStream registers an authenticated route that writes its own body.
// Every /v1 route names the permission it needs; the check runs before the
// handler (deny by default). An error returned before the handler wrote
// anything becomes a problem response.
func (h *Handler) routeStream(pattern string, a core.Action, fn func(w http.ResponseWriter, r *http.Request, p core.Principal) error) {
	if a == "" {
		panic("httpapi: route " + pattern + " has no permission")
	}
	h.routes = append(h.routes, Route{pattern, a})
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		p, err := h.authenticate(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="keyfleet"`)
			h.fail(w, r, err)
			return
		}
		if !p.Allowed(a) {
			h.fail(w, r, &core.ForbiddenError{Principal: p.Username, Action: a})
			return
		}
		setPrincipal(r, p)
		if err := fn(w, r, p); err != nil {
			h.fail(w, r, err)
		}
	})
}

func (h *Handler) authenticate(r *http.Request) (core.Principal, error) {
	auth := r.Header.Get("Authorization")
	secret, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || secret == "" {
		return core.Principal{}, fmt.Errorf("%w: send an API token as \"Authorization: Bearer <token>\" (keyfleet login saves one)", core.ErrUnauthenticated)
	}
	p, err := h.svc.Authenticate(r.Context(), strings.TrimSpace(secret))
	if err != nil {
		return core.Principal{}, err
	}
	return p, withProof(r, &p)
}

// withProof adds the Keyfleet-Proof header's proof, if any, to p.
func withProof(r *http.Request, p *core.Principal) error {
	hv := r.Header.Get(api.ProofHeader)
	if hv == "" {
		return nil
	}
	pr, err := core.DecodeProof(hv)
	p.Proof = pr
	return err
}

// ServeHTTP adds the request id, limits, logging and metrics around the mux.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.observed(w, r, func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, h.maxBody)
		h.mux.ServeHTTP(w, r)
	})
}

// Observed serves next with what every API request gets: a request id,
// the no-store and nosniff headers, the request log line and
// keyfleet_http_requests_total (by next's mux pattern). For routes served
// beside the API, such as SCIM's, which keep their own body limit.
func (h *Handler) Observed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.observed(w, r, next.ServeHTTP) })
}

// observed runs serve (a mux, which sets the request's Pattern) inside
// the request's id, log line and metrics.
func (h *Handler) observed(w http.ResponseWriter, r *http.Request, serve http.HandlerFunc) {
	start := time.Now()
	rid := requestID(r)
	w.Header().Set("X-Request-Id", rid)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	info := &reqInfo{id: rid}
	source := clientaddr.Of(r)
	ctx := context.WithValue(r.Context(), infoKey{}, info)
	ctx = core.WithRequest(ctx, core.RequestInfo{ID: rid, Source: source})
	r = r.WithContext(ctx)
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	serve(sw, r)
	h.metrics.observe(r.Method, r.Pattern, sw.status, time.Since(start))
	attrs := []any{"method", r.Method, "path", r.URL.Path, "status", sw.status, "duration_ms",
		float64(time.Since(start).Microseconds()) / 1000, "request_id", rid, "source", source}
	if peer, _, _ := net.SplitHostPort(r.RemoteAddr); peer != source {
		attrs = append(attrs, "proxy", r.RemoteAddr)
	}
	if info.principal != "" {
		attrs = append(attrs, "principal", info.principal)
	}
	level := slog.LevelInfo
	if sw.status >= 500 {
		level = slog.LevelError
	}
	h.log.Log(r.Context(), level, "request", attrs...)
}

var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); requestIDRE.MatchString(id) {
		return id
	}
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type infoKey struct{}

type reqInfo struct {
	id        string
	principal string
}

func setPrincipal(r *http.Request, p core.Principal) {
	if info, ok := r.Context().Value(infoKey{}).(*reqInfo); ok {
		info.principal = p.Username
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection, so that the
// streams (events, push companions) can set write deadlines.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(body)
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	p := problemFor(err)
	info, _ := r.Context().Value(infoKey{}).(*reqInfo)
	if info != nil {
		p.RequestID = info.id
	}
	p.Instance = r.URL.Path
	if secs, ok := retryAfter(err); ok {
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	switch {
	case errors.Is(err, core.ErrStorageFull): // the store logs the state once, loudly
		h.log.Warn("request refused: storage full", "request_id", p.RequestID, "path", r.URL.Path)
	case p.Status >= 500:
		h.log.Error("request failed", "err", err, "request_id", p.RequestID, "path", r.URL.Path)
	}
	var rl *rateLimitedError
	if errors.As(err, &rl) {
		w.Header().Set("Retry-After", strconv.Itoa(int(rl.d.RetryAfter/time.Second)))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}

// decode reads a JSON body strictly: one object, no unknown fields, no
// key twice, keys in their fields' exact case (internal/strictjson),
// within the size limit. An empty body decodes to the zero value when
// optional.
func decode(r *http.Request, v any, optional bool) error {
	body, err := io.ReadAll(r.Body)
	if err == nil {
		err = strictjson.Decode(body, v)
	}
	var mbe *http.MaxBytesError
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var ke *strictjson.KeyError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.EOF) && optional:
		return nil
	case errors.Is(err, io.EOF):
		return &apiError{http.StatusBadRequest, probInvalidJSON, "Malformed JSON", "the request needs a JSON body; see docs/openapi.yaml for its fields"}
	case errors.As(err, &mbe):
		return &apiError{http.StatusRequestEntityTooLarge, probBodyTooLarge, "Body too large", fmt.Sprintf("the body is larger than %d bytes; send less", mbe.Limit)}
	case errors.Is(err, strictjson.ErrTrailingData):
		return &apiError{http.StatusBadRequest, probInvalidJSON, "Malformed JSON", "the body has data after its JSON object; send exactly one object"}
	case errors.As(err, &ke) && ke.Duplicate():
		return &apiError{http.StatusBadRequest, probDuplicateKey, "Duplicate key", ke.Error()}
	case errors.As(err, &ke):
		return &apiError{http.StatusBadRequest, probUnknownField, "Unknown field", ke.Error()}
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
		return &apiError{http.StatusBadRequest, probInvalidJSON, "Malformed JSON", "the body is not valid JSON: " + err.Error()}
	case errors.As(err, &te):
		return &apiError{http.StatusBadRequest, probInvalidJSON, "Malformed JSON", fmt.Sprintf("field %q must be a %s, not a JSON %s", te.Field, te.Type, te.Value)}
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return &apiError{http.StatusBadRequest, probUnknownField, "Unknown field", strings.TrimPrefix(err.Error(), "json: ") + "; check the spelling against docs/openapi.yaml"}
	}
	return &apiError{http.StatusBadRequest, probInvalidJSON, "Malformed JSON", err.Error()}
}

// pageReq reads ?limit= and ?cursor=.
func pageReq(r *http.Request) (core.PageReq, error) {
	pg := core.PageReq{After: r.URL.Query().Get("cursor")}
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > core.MaxPageSize {
			return pg, &apiError{http.StatusBadRequest, probBadRequest, "Bad query parameter",
				fmt.Sprintf("limit=%q must be a number from 1 to %d", l, core.MaxPageSize)}
		}
		pg.Limit = n
	}
	return pg, nil
}

func page[T, U any](items []T, next string, conv func(T) U) api.Page[U] {
	out := api.Page[U]{Items: make([]U, 0, len(items)), NextCursor: next}
	for _, it := range items {
		out.Items = append(out.Items, conv(it))
	}
	return out
}
