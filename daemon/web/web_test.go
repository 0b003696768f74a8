package web

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestMemoryStoreDropsExpiredAndEvictsWhenFull(t *testing.T) {
	now := time.Now()
	m := &MemoryStore{Max: 2}
	m.Save(keyOf("a"), Session{Expires: now.Add(time.Minute), LastSeen: now})
	m.Save(keyOf("b"), Session{Expires: now.Add(time.Hour), LastSeen: now})
	if _, ok := m.Load(keyOf("a"), now.Add(2*time.Minute)); ok {
		t.Fatal("an expired session loaded")
	}
	m.Save(keyOf("c"), Session{Expires: now.Add(2 * time.Hour), LastSeen: now})
	m.Save(keyOf("d"), Session{Expires: now.Add(3 * time.Hour), LastSeen: now})
	if m.Len() > 2 {
		t.Fatalf("store holds %d sessions, limit 2", m.Len())
	}
	if _, ok := m.Load(keyOf("d"), now); !ok {
		t.Fatal("the newest session was evicted")
	}
}

func TestConfigIsValidated(t *testing.T) {
	for _, origin := range []string{"", "ftp://x", "http://example.com", "https://x.example/path"} {
		if err := (&Config{Service: nil, Origin: origin}).defaults(); err == nil {
			t.Errorf("origin %q accepted", origin)
		}
	}
}

// newTestHandler is the handler without a Service: enough for the pages
// and checks that run before any Service call.
func newTestHandler(t *testing.T) *handler {
	t.Helper()
	cfg := Config{Origin: "https://keyfleet.test", Secure: true}
	h := &handler{cfg: cfg, mux: http.NewServeMux()}
	if err := h.parseTemplates(); err != nil {
		t.Fatal(err)
	}
	h.cfg.Sessions, h.cfg.Now = NewMemoryStore(), time.Now
	h.cfg.IdleTimeout, h.cfg.AbsoluteTimeout, h.cfg.StepUpFor = 30*time.Minute, 12*time.Hour, 5*time.Minute
	h.log = slog.New(slog.DiscardHandler)
	h.routes()
	return h
}

func TestEveryAnswerCarriesTheSecurityHeadersAndASafeCookie(t *testing.T) {
	h := newTestHandler(t)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "https://keyfleet.test/signin", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /signin: %d", rec.Code)
	}
	csp := rec.Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("CSP %q", csp)
	}
	c := rec.Result().Cookies()
	if len(c) != 1 || c[0].Name != "__Host-keyfleet" || !c[0].Secure || !c[0].HttpOnly || c[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookie %+v", c)
	}
	if strings.Contains(rec.Body.String(), "<script>") {
		t.Fatal("the page has inline script")
	}
}

func TestFormsWithoutTheTokenAreRefused(t *testing.T) {
	h := newTestHandler(t)
	get := httptest.NewRecorder()
	h.ServeHTTP(get, httptest.NewRequest("GET", "https://keyfleet.test/signin", nil))
	cookie := get.Result().Cookies()[0]
	for _, tc := range []struct{ name, origin, token string }{
		{"no token", "https://keyfleet.test", ""},
		{"a wrong token", "https://keyfleet.test", "forged"},
		{"another origin", "https://evil.test", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "https://keyfleet.test/signout", strings.NewReader(url.Values{"csrf": {tc.token}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", tc.origin)
			req.AddCookie(cookie)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusForbidden {
				t.Fatalf("status %d, want 403", rec.Code)
			}
		})
	}
}
