// Package clienttest is a fake keyfleetd for tests of code that uses the
// API client: an HTTPS server with a test certificate, a bearer token, and
// routes that each test answers as it needs.
package clienttest

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/keyfleet/keyfleet/api"
)

// Token is the bearer token the fake accepts.
const Token = "kft_test_0123456789abcdef"

// Request is one request the fake received.
type Request struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte
}

// Server is a fake keyfleetd. Register answers with Handle before the code
// under test calls it; anything unregistered answers 404 not-found.
type Server struct {
	*httptest.Server
	// CAPEM is the PEM of the server's certificate, to pass as
	// client.Config.CAPEM.
	CAPEM []byte

	mu       sync.Mutex
	mux      *http.ServeMux
	requests []Request
}

// NewServer starts a fake daemon that the test closes when it ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{mux: http.NewServeMux()}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	// Handshakes that tests make fail on purpose would log noise.
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.StartTLS()
	s.CAPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	t.Cleanup(s.Close)
	return s
}

// Handle answers requests matching pattern, an http.ServeMux pattern such
// as "GET /v1/users/{user}".
func (s *Server) Handle(pattern string, h http.HandlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mux.HandleFunc(pattern, h)
}

// Requests returns what the fake has received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Last returns the last request received, or the zero Request.
func (s *Server) Last() Request {
	r := s.Requests()
	if len(r) == 0 {
		return Request{}
	}
	return r[len(r)-1]
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.mu.Lock()
	s.requests = append(s.requests, Request{
		Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body,
	})
	mux := s.mux
	s.mu.Unlock()
	if strings.HasPrefix(r.URL.Path, "/v1/") && r.Header.Get("Authorization") != "Bearer "+Token {
		Problem(http.StatusUnauthorized, "unauthenticated", "missing or unknown bearer token")(w, r)
		return
	}
	if _, pattern := mux.Handler(r); pattern == "" {
		Problem(http.StatusNotFound, "not-found", "no route "+r.Method+" "+r.URL.Path)(w, r)
		return
	}
	mux.ServeHTTP(w, r)
}

// JSON answers with status and v encoded as JSON.
func JSON(status int, v any) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
}

// Problem answers with an application/problem+json of type
// "/problems/"+slug.
func Problem(status int, slug, detail string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(api.Problem{
			Type: "/problems/" + slug, Title: http.StatusText(status), Status: status,
			Detail: detail, RequestID: "req_test",
		})
	}
}

// Pages answers a list route from items, honouring ?limit= (default 2)
// and ?cursor= (an index into items), so tests see several pages.
func Pages[T any](items []T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start, n := atoi(r.URL.Query().Get("cursor")), atoi(r.URL.Query().Get("limit"))
		if n <= 0 {
			n = 2
		}
		start = min(start, len(items))
		end := min(start+n, len(items))
		pg := api.Page[T]{Items: items[start:end]}
		if end < len(items) {
			pg.NextCursor = itoa(end)
		}
		JSON(http.StatusOK, pg)(w, r)
	}
}

// Audit answers GET /v1/audit from the events events returns at each
// request (so a test can append while a client polls), honouring ?after=
// and ?limit= (default 2). next_cursor is the last sequence number sent
// when more remain.
func Audit(events func() []api.AuditEvent) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		after, n := atoi(r.URL.Query().Get("after")), atoi(r.URL.Query().Get("limit"))
		if n <= 0 {
			n = 2
		}
		var pg api.Page[api.AuditEvent]
		pg.Items = []api.AuditEvent{}
		all := events()
		for i, e := range all {
			if e.Seq <= uint64(after) {
				continue
			}
			if len(pg.Items) == n {
				pg.NextCursor = itoa(int(all[i-1].Seq))
				break
			}
			pg.Items = append(pg.Items, e)
		}
		JSON(http.StatusOK, pg)(w, r)
	}
}
