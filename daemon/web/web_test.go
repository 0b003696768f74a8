package web

import (
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
)

func TestConfigIsValidated(t *testing.T) {
	for _, origin := range []string{"", "ftp://x", "http://example.com", "https://x.example/path"} {
		if err := (&Config{Service: nil, Origin: origin}).defaults(); err == nil {
			t.Errorf("origin %q accepted", origin)
		}
	}
}

// newTestHandler is the handler without a Service: enough for the pages
// and checks that run before any Service call.
func newTestHandler(t testing.TB) *handler {
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

func TestSeveralKeysAreAskedForOnceOnlyWhenTheyShareAChallenge(t *testing.T) {
	opts := func(challenge, cred, uv string) json.RawMessage {
		b, _ := json.Marshal(api.FIDO2RequestOptions{Challenge: []byte(challenge), RPID: "keyfleet.test", Timeout: 60000,
			AllowCredentials: []api.FIDO2CredentialDescriptor{{Type: "public-key", ID: []byte(cred)}}, UserVerification: uv})
		return b
	}
	for _, tc := range []struct {
		name  string
		keys  []keyChallenge
		merge bool
	}{
		{"one key needs no merging", []keyChallenge{{FactorID: "f1", Options: opts("c", "k1", "preferred")}}, false},
		{"keys with one challenge are merged", []keyChallenge{{FactorID: "f1", Options: opts("c", "k1", "preferred")},
			{FactorID: "f2", Options: opts("c", "k2", "required")}}, true},
		{"keys with their own challenges are not", []keyChallenge{{FactorID: "f1", Options: opts("c1", "k1", "preferred")},
			{FactorID: "f2", Options: opts("c2", "k2", "preferred")}}, false},
		{"options that are not WebAuthn's are not", []keyChallenge{{FactorID: "f1", Options: json.RawMessage(`{}`)},
			{FactorID: "f2", Options: json.RawMessage(`{}`)}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, creds, ok := mergeRequests(tc.keys)
			if ok != tc.merge {
				t.Fatalf("merged %v, want %v", ok, tc.merge)
			}
			if !ok {
				return
			}
			if len(got.AllowCredentials) != 2 || got.UserVerification != "required" ||
				creds[base64.RawURLEncoding.EncodeToString([]byte("k2"))] != "f2" {
				t.Fatalf("merged %+v, credentials %v", got, creds)
			}
		})
	}
}

func TestTheTOTPPageSaysWhenTheAppMustMakeUnusualCodes(t *testing.T) {
	tests := []struct{ params, want string }{
		{`{"algorithm":"SHA1","digits":"6","period":"30"}`, ""},
		{`{"algorithm":"SHA256","digits":"8","period":"60"}`, "8-digit codes with SHA256 every 60 seconds"},
		{``, ""},
	}
	for _, tt := range tests {
		if got := unusualTOTP([]byte(tt.params)); got != tt.want {
			t.Errorf("unusualTOTP(%s) = %q, want %q", tt.params, got, tt.want)
		}
	}
}
