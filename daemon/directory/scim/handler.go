package scim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// Prefix is where the service provider is served.
const Prefix = "/scim/v2"

// GroupMap is what a SCIM group (by displayName) gives its members.
type GroupMap struct{ Group, Role string }

// Config configures the SCIM service provider. Service is required.
type Config struct {
	Service *core.Service
	Logger  *slog.Logger // default discards
	// BaseURL is the service provider's URL as clients reach it
	// ("https://keyfleet.example.com:8443/scim/v2"), for meta.location;
	// default Prefix alone.
	BaseURL string
	// Groups maps group displayNames (any case) to what they give;
	// AutoGroups gives an unmapped group's members the keyfleet group
	// named like it, when that is a valid name.
	Groups     map[string]GroupMap
	AutoGroups bool
	// MaxResults bounds a page (default 200); MaxBodyBytes a request
	// (default 2 MiB, enough for a group of 20,000 members).
	MaxResults   int
	MaxBodyBytes int64
}

// Handler is the SCIM 2.0 service provider (RFC 7643, RFC 7644): Users
// and Groups of the client whose token calls it, and the discovery
// endpoints.
type Handler struct {
	svc        *core.Service
	log        *slog.Logger
	base       string
	maxResults int
	maxBody    int64
	src        core.DirectorySource
	mux        *http.ServeMux
}

// New validates cfg and returns the handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Service == nil {
		return nil, errors.New("scim: Config.Service is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxResults == 0 {
		cfg.MaxResults = 200
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 2 << 20
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = Prefix
	}
	h := &Handler{svc: cfg.Service, log: cfg.Logger, base: strings.TrimSuffix(cfg.BaseURL, "/"), maxResults: cfg.MaxResults,
		maxBody: cfg.MaxBodyBytes, mux: http.NewServeMux()}
	h.src = groupSource(cfg.Groups, cfg.AutoGroups)
	h.routes()
	return h, nil
}

// groupSource is the DirectorySource of a SCIM client: its groups map to
// keyfleet groups and roles by displayName.
func groupSource(groups map[string]GroupMap, auto bool) core.DirectorySource {
	byName := map[string]GroupMap{}
	src := core.DirectorySource{Kind: api.DirectorySCIM}
	for name, m := range groups {
		byName[strings.ToLower(name)] = m
		if m.Group != "" {
			src.ManagedGroups = append(src.ManagedGroups, m.Group)
		}
		if m.Role != "" {
			src.ManagedRoles = append(src.ManagedRoles, m.Role)
		}
	}
	src.GroupMap = func(g core.DirectoryGroup) (string, string) {
		if m, ok := byName[strings.ToLower(g.DisplayName)]; ok {
			return m.Group, m.Role
		}
		if auto {
			return autoGroup(g.DisplayName), ""
		}
		return "", ""
	}
	return src
}

// autoGroup is the keyfleet group named like a SCIM group ("" when no
// valid name comes of it).
func autoGroup(name string) string {
	g := strings.ToLower(strings.Join(strings.Fields(name), "-"))
	if len(g) == 0 || len(g) > 64 || strings.Trim(g, "abcdefghijklmnopqrstuvwxyz0123456789._-") != "" || strings.ContainsAny(g[:1], "._-") {
		return ""
	}
	return g
}

// answer is what a route returns: a status and a body (a representation
// with its ETag, a list, or nothing).
type answer struct {
	status int
	body   any
	etag   string
}

type route func(r *http.Request, p core.Principal) (answer, error)

func (h *Handler) routes() {
	h.handle("GET /ServiceProviderConfig", func(*http.Request, core.Principal) (answer, error) {
		return answer{status: 200, body: h.serviceProviderConfig()}, nil
	})
	h.handle("GET /ResourceTypes", func(r *http.Request, _ core.Principal) (answer, error) {
		return h.listOf(h.resourceTypes()), nil
	})
	h.handle("GET /ResourceTypes/{id}", func(r *http.Request, _ core.Principal) (answer, error) {
		return h.byID(h.resourceTypes(), r.PathValue("id"))
	})
	h.handle("GET /Schemas", func(r *http.Request, _ core.Principal) (answer, error) { return h.listOf(h.schemas()), nil })
	h.handle("GET /Schemas/{id}", func(r *http.Request, _ core.Principal) (answer, error) {
		return h.byID(h.schemas(), r.PathValue("id"))
	})
	h.handle("GET /Users", h.listUsers)
	h.handle("POST /Users", h.createUser)
	h.handle("GET /Users/{id}", h.getUser)
	h.handle("PUT /Users/{id}", h.replaceUser)
	h.handle("PATCH /Users/{id}", h.patchUser)
	h.handle("DELETE /Users/{id}", h.deleteUser)
	h.handle("GET /Groups", h.listGroups)
	h.handle("POST /Groups", h.createGroup)
	h.handle("GET /Groups/{id}", h.getGroup)
	h.handle("PUT /Groups/{id}", h.replaceGroup)
	h.handle("PATCH /Groups/{id}", h.patchGroup)
	h.handle("DELETE /Groups/{id}", h.deleteGroup)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, h.log, r, &Error{Status: http.StatusNotFound, Detail: fmt.Sprintf("there is no SCIM endpoint %s %s; keyfleet serves /Users, /Groups, /Schemas, /ResourceTypes and /ServiceProviderConfig", r.Method, r.URL.Path)})
	})
}

// handle registers an authenticated route under Prefix.
func (h *Handler) handle(pattern string, fn route) {
	method, path, _ := strings.Cut(pattern, " ")
	h.mux.HandleFunc(method+" "+Prefix+path, func(w http.ResponseWriter, r *http.Request) {
		p, err := h.authenticate(r)
		if err != nil {
			writeError(w, h.log, r, err)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, h.maxBody)
		a, err := fn(r, p)
		if err != nil {
			writeError(w, h.log, r, err)
			return
		}
		if a.etag != "" {
			w.Header().Set("ETag", a.etag)
		}
		if loc, ok := locationOf(a); ok && a.status == http.StatusCreated {
			w.Header().Set("Location", loc)
		}
		if a.body == nil {
			w.WriteHeader(a.status)
			return
		}
		writeJSON(w, a.status, a.body)
	})
}

func locationOf(a answer) (string, bool) {
	m, ok := a.body.(map[string]any)
	if !ok {
		return "", false
	}
	meta, _ := m["meta"].(map[string]any)
	loc, ok := meta["location"].(string)
	return loc, ok
}

// ServeHTTP serves the routes under Prefix.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// authenticate takes a bearer token of a service account that carries the
// scim role and nothing else.
func (h *Handler) authenticate(r *http.Request) (core.Principal, error) {
	secret, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(secret) == "" {
		return core.Principal{}, fmt.Errorf("%w: send the SCIM client's token as \"Authorization: Bearer <token>\"", core.ErrUnauthenticated)
	}
	p, err := h.svc.Authenticate(r.Context(), strings.TrimSpace(secret))
	if err != nil {
		return core.Principal{}, err
	}
	if !slices.Equal(p.Roles, []string{api.RoleScim}) {
		return core.Principal{}, &core.ForbiddenError{Principal: p.Username, Action: core.ProvisionUsers,
			Reason: fmt.Sprintf("the token carries %v; SCIM takes a token of a service account carrying the scim role and nothing else (keyfleet tokens create --user ACCOUNT --role scim)", p.Roles)}
	}
	return p, nil
}

// readBody reads a request body into a lower-cased map; an oversized body
// is refused.
func readBody(r *http.Request) (map[string]any, error) {
	b, err := io.ReadAll(r.Body)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, &Error{Status: http.StatusRequestEntityTooLarge, ScimType: typeTooMany, Detail: fmt.Sprintf("the body is over %d bytes", mbe.Limit)}
	}
	if err != nil {
		return nil, badRequest(typeInvalidSyntax, "reading the body: %v", err)
	}
	return decodeResource(b)
}

// listResponse is a ListResponse message (RFC 7644 §3.4.2).
type listResponse struct {
	Schemas      []string `json:"schemas"`
	TotalResults int      `json:"totalResults"`
	StartIndex   int      `json:"startIndex"`
	ItemsPerPage int      `json:"itemsPerPage"`
	Resources    []any    `json:"Resources"`
}

func (h *Handler) listOf(items []map[string]any) answer {
	res := make([]any, len(items))
	for i, x := range items {
		res[i] = x
	}
	return answer{status: 200, body: listResponse{Schemas: []string{schemaList}, TotalResults: len(items), StartIndex: 1, ItemsPerPage: len(items), Resources: res}}
}

func (h *Handler) byID(items []map[string]any, id string) (answer, error) {
	for _, x := range items {
		if strings.EqualFold(fmt.Sprint(x["id"]), id) {
			return answer{status: 200, body: x}, nil
		}
	}
	return answer{}, &Error{Status: http.StatusNotFound, Detail: fmt.Sprintf("no %q here", id)}
}

// paging reads startIndex (1-based) and count (RFC 7644 §3.4.2.4).
func (h *Handler) paging(r *http.Request) (offset, count int, err error) {
	q := r.URL.Query()
	start, count := 1, h.maxResults
	if v := q.Get("startIndex"); v != "" {
		if start, err = strconv.Atoi(v); err != nil {
			return 0, 0, badRequest(typeInvalidValue, "startIndex %q is not a number", v)
		}
	}
	if v := q.Get("count"); v != "" {
		if count, err = strconv.Atoi(v); err != nil {
			return 0, 0, badRequest(typeInvalidValue, "count %q is not a number", v)
		}
	}
	return max(start, 1) - 1, min(max(count, 0), h.maxResults), nil
}

// page answers a list page.
func (h *Handler) page(items []map[string]any, total, offset int, r *http.Request) answer {
	res := make([]any, len(items))
	for i, x := range items {
		res[i] = project(x, r)
	}
	return answer{status: 200, body: listResponse{Schemas: []string{schemaList}, TotalResults: total, StartIndex: offset + 1,
		ItemsPerPage: len(items), Resources: res}}
}

// project applies the attributes and excludedAttributes parameters
// (top-level names; id, schemas and meta are always returned).
func project(m map[string]any, r *http.Request) map[string]any {
	q := r.URL.Query()
	split := func(s string) []string {
		var out []string
		for _, x := range strings.Split(s, ",") {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, strings.ToLower(x))
			}
		}
		return out
	}
	only, excluded := split(q.Get("attributes")), split(q.Get("excludedAttributes"))
	if len(only) == 0 && len(excluded) == 0 {
		return m
	}
	out := map[string]any{}
	for k, v := range m {
		lk := strings.ToLower(k)
		always := lk == "id" || lk == "schemas" || lk == "meta"
		if always || (len(only) == 0 || slices.Contains(only, lk)) && !slices.Contains(excluded, lk) {
			out[k] = v
		}
	}
	return out
}

// ifMatch reads the If-Match precondition ("" when none, or "*").
func ifMatch(r *http.Request) string {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "*" {
		return ""
	}
	return v
}

// asMap turns a representation into its lower-cased generic form.
func asMap(v any) map[string]any {
	b, _ := json.Marshal(v)
	m, _ := decodeResource(b)
	return m
}

// withCtx is the request's context (for the core calls).
func withCtx(r *http.Request) context.Context {
	return core.WithRequest(r.Context(), core.RequestInfo{Source: r.RemoteAddr})
}
