package web_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/events"
	"github.com/keyfleet/keyfleet/daemon/kinds/fido2"
	"github.com/keyfleet/keyfleet/daemon/web"
	"github.com/keyfleet/keyfleet/internal/sharefile"
	"github.com/keyfleet/keyfleet/plugins/sdk"
	totpkind "github.com/keyfleet/keyfleet/plugins/totp"
)

// env is a keyfleetd in this process (real Badger store on a fresh data
// folder, the fido2 and totp kinds) with the pages and the API mounted
// side by side, served over plain HTTP on http://localhost:PORT: a secure
// context for WebAuthn without certificate errors (see docs/web.md).
type env struct {
	url    string
	svc    *core.Service
	offset atomic.Int64 // the pages' clock runs this far ahead (step-up tests)
	// shares are the break-glass shares keyfleetd init wrote.
	shares []string
	sinks  web.EventSinks
}

func (e *env) now() time.Time { return time.Now().Add(time.Duration(e.offset.Load())) }

// startEnv starts the browser and the daemon behind one listener.
func startEnv(t *testing.T, exe string) (*env, *browser) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{url: fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)}
	var handler atomic.Pointer[http.Handler]
	probe := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<!doctype html><title>probe</title>")
	}))
	handler.Store(&probe)
	hs := &http.Server{ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*handler.Load()).ServeHTTP(w, r) })}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	b := newBrowser(t, exe, e.url)
	var roots []*x509.Certificate // extra attestation roots: none needed
	h := e.start(t, roots)
	handler.Store(&h)
	return e, b
}

func (e *env) start(t *testing.T, roots []*x509.Certificate) http.Handler {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	res, err := daemon.Init(context.Background(), daemon.InitOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.BreakGlassFiles {
		sh, err := sharefile.Read(f)
		if err != nil {
			t.Fatal(err)
		}
		e.shares = append(e.shares, sh)
	}
	key, err := fido2.New(fido2.Config{RPID: "localhost", Origins: []string{e.url}, Roots: roots})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := daemon.New(daemon.Config{DataDir: dir, Events: sinks(t)}, daemon.Options{LogOut: io.Discard, Kinds: []sdk.Factor{key, totpkind.Factor{}, yubiKind{}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	e.svc, e.sinks = srv.Service(), srv.Events()
	// The sinks deliver as in keyfleetd (which runs them in Serve).
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Events().Run(ctx) }()
	t.Cleanup(func() { stop(); <-done })
	pages, err := web.New(web.Config{Service: e.svc, Origin: e.url, Now: e.now, Events: srv.Events()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, p := range []string{"/v1/", "/healthz", "/readyz", "/metrics"} {
		mux.Handle(p, srv.Handler())
	}
	mux.Handle("/", pages)
	return mux
}

// sinks are two event sinks for the overview's health panel: a file that
// takes every event, and a webhook whose receiver is down (nothing listens
// on the port), which fails and leaves dead letters.
func sinks(t *testing.T) events.Config {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String() + "/hook"
	ln.Close()
	ms := func(n int) events.Duration { return events.Duration{Duration: time.Duration(n) * time.Millisecond} }
	return events.Config{Sinks: []events.SinkConfig{
		{Name: "audit-file", Type: events.TypeFile, File: &events.FileConfig{Path: filepath.Join(t.TempDir(), "audit.jsonl"), NoSync: true}},
		{Name: "siem-webhook", Type: events.TypeWebhook, Retry: events.RetryConfig{Initial: ms(10), Max: ms(20), MaxAttempts: 2},
			Webhook: &events.WebhookConfig{URL: down, Secret: "test-secret-0123456789", AllowHTTP: true, Timeout: ms(500)}},
	}}
}

func (e *env) createUser(t *testing.T, name string, groups, roles []string) core.User {
	t.Helper()
	u, _, err := e.svc.CreateUser(context.Background(), core.System, api.CreateUser{Username: name, Groups: groups, Roles: roles})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// code opens a security-key enrolment and returns its first-sign-in code.
func (e *env) code(t *testing.T, user string) string {
	t.Helper()
	en, _, err := e.svc.CreateEnrolment(context.Background(), core.System, api.CreateEnrolment{User: user, Kind: "fido2"})
	if err != nil {
		t.Fatal(err)
	}
	return web.EnrolmentCode(en)
}

// addTOTP enrols an authenticator app for a user from the Service side.
func (e *env) addTOTP(t *testing.T, user, label string) core.Factor {
	t.Helper()
	ctx := context.Background()
	en, _, err := e.svc.CreateEnrolment(ctx, core.System, api.CreateEnrolment{User: user, Kind: "totp"})
	if err != nil {
		t.Fatal(err)
	}
	display := e.svc.UserDisplay(en) // the seed is sealed for the user: the kit reads it as them
	code, err := totp.GenerateCode(display["secret"], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f, err := e.svc.CompleteEnrolment(ctx, core.System, en.ID, api.CompleteEnrolment{Label: label, Payload: []byte(`{"code":"` + code + `"}`)})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// chromium finds Debian's Chromium, or skips.
func chromium(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("browser tests do not run with -short")
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("Chromium is not installed: the browser tests need it (make test installs Debian's chromium; or apt-get install chromium)")
	return ""
}
