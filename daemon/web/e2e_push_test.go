package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/kinds/fido2"
	"github.com/keyfleet/keyfleet/daemon/web"
	pushkind "github.com/keyfleet/keyfleet/plugins/push"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// pushEnv is env with the push kind and a daemon clock the test can move
// (so that an answer arrives after its deadline without waiting a
// minute), behind a handler that records the companion's answers and
// can hold one back, as a network between the phone and keyfleetd could.
type pushEnv struct {
	*env
	ahead   atomic.Int64 // the daemon's clock runs this far ahead
	mu      sync.Mutex
	answers []*http.Request // recorded, with their bodies
	bodies  [][]byte
	hold    chan struct{}
	api     http.Handler
}

func (e *pushEnv) daemonNow() time.Time { return time.Now().Add(time.Duration(e.ahead.Load())) }

func startPushBrowserEnv(t *testing.T, exe string) (*pushEnv, *browser) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &pushEnv{env: &env{url: fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)}}
	var handler atomic.Pointer[http.Handler]
	probe := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<!doctype html><title>probe</title>") }))
	handler.Store(&probe)
	hs := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*handler.Load()).ServeHTTP(w, r) })}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	b := newBrowser(t, exe, e.url)
	h := e.startPush(t)
	handler.Store(&h)
	return e, b
}

func (e *pushEnv) startPush(t *testing.T) http.Handler {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := daemon.Init(context.Background(), daemon.InitOptions{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	key, err := fido2.New(fido2.Config{RPID: "localhost", Origins: []string{e.url}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := daemon.New(daemon.Config{DataDir: dir}, daemon.Options{LogOut: io.Discard, Now: e.daemonNow,
		Kinds: []sdk.Factor{key, pushkind.Factor{}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	e.svc = srv.Service()
	pages, err := web.New(web.Config{Service: e.svc, Origin: e.url, Now: e.now})
	if err != nil {
		t.Fatal(err)
	}
	e.api = srv.Handler()
	mux := http.NewServeMux()
	mux.Handle("/v1/", http.HandlerFunc(e.serveAPI))
	mux.Handle("/", pages)
	return mux
}

// serveAPI records companions' answers, holding one back when asked.
func (e *pushEnv) serveAPI(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.URL.Path == "/v1/push/answer" {
		body, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.answers, e.bodies = append(e.answers, r.Clone(context.Background())), append(e.bodies, body)
		hold := e.hold
		e.hold = nil
		e.mu.Unlock()
		if hold != nil {
			<-hold
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	e.api.ServeHTTP(w, r)
}

func (e *pushEnv) holdNext() chan struct{} {
	ch := make(chan struct{})
	e.mu.Lock()
	e.hold = ch
	e.mu.Unlock()
	return ch
}

// replayLast sends the last recorded answer again, headers and body as
// they were, and returns the status.
func (e *pushEnv) replayLast() int {
	e.mu.Lock()
	r, body := e.answers[len(e.answers)-1], e.bodies[len(e.bodies)-1]
	e.mu.Unlock()
	req := httptest.NewRequest("POST", "/v1/push/answer", bytes.NewReader(body))
	req.Header = r.Header.Clone()
	rec := httptest.NewRecorder()
	e.api.ServeHTTP(rec, req)
	return rec.Code
}

// pushTo is an application (in this process, as the service account)
// asking for a push to user.
func (e *pushEnv) pushTo(t *testing.T, app core.Principal, user string) (api.Verification, pushkind.Prompt, error) {
	t.Helper()
	v, err := e.svc.BeginVerify(context.Background(), app, api.BeginVerify{User: user, Kinds: []string{"push"}, Application: "Payroll", Address: "198.51.100.23"})
	var p pushkind.Prompt
	if err == nil {
		json.Unmarshal(v.Factors[0].Prompt, &p)
	}
	return v, p, err
}

func (e *pushEnv) outcome(t *testing.T, app core.Principal, v api.Verification, wait string) api.VerifyResult {
	t.Helper()
	res, err := e.svc.FinishVerify(context.Background(), app, api.FinishVerify{ID: v.ID, FactorID: v.Factors[0].FactorID, Wait: wait})
	if err != nil {
		t.Fatalf("finish: %v", err)
	}
	return res
}

// promptFor waits until the companion shows a push (v's: it is the only
// one waiting) and returns the numbers it offers.
func (b *browser) promptFor(_ api.Verification) []string {
	b.t.Helper()
	b.settle(`document.querySelectorAll("#prompts .push-prompt:not([data-done])").length > 0`, "a push on the companion")
	return eval[[]string](b, `[...document.querySelector("#prompts .push-prompt:not([data-done]) .push-choices").querySelectorAll("button")].map(x => x.textContent)`)
}

// pick clicks a button of the waiting prompt and returns what it says.
func (b *browser) pick(label string) string {
	b.t.Helper()
	b.do(chromedp.Click(`#prompts .push-prompt:not([data-done]) button[aria-label=` + jsString(label) + `]`))
	b.settle(`document.querySelector("#prompts .push-prompt .push-result").textContent !== ""`, "the answer's outcome")
	return b.text("#prompts .push-prompt .push-result")
}

// TestTheWebCompanion: wes registers a key with his enrolment code, signs
// in, and adds this browser as a push companion at /me/push (a proof with
// his key, then a WebCrypto key that cannot leave the browser). Sign-ins
// to Payroll then ask for him there.
func TestTheWebCompanion(t *testing.T) {
	exe := chromium(t)
	e, b := startPushBrowserEnv(t, exe)
	ctx := context.Background()
	wes := e.createUser(t, "wes", nil, nil)
	appUser, _, err := e.svc.CreateUser(ctx, core.System, api.CreateUser{Username: "payroll", Kind: api.KindService})
	if err != nil {
		t.Fatal(err)
	}
	app := core.Principal{UserID: appUser.ID, Username: "payroll", Roles: []string{api.RoleService}, Auth: "token"}
	b.welcome(e.code(t, "wes"))
	b.signIn("wes", "/me")

	b.do(chromedp.Navigate(e.url + "/me/push"))
	b.settle(`document.getElementById("companion-status").textContent.includes("not a push companion yet")`, "the companion page")
	b.do(chromedp.SetValue("#push-label", "wes's browser"))
	b.do(chromedp.Click("#push-add button"))
	b.settle(`document.getElementById("companion-status").textContent.includes("Waiting for sign-ins of wes")`, "the enrolled companion")
	fs, _, _ := e.svc.ListFactors(ctx, core.System, core.FactorFilter{UserID: wes.ID, Kind: "push"}, core.PageReq{})
	if len(fs) != 1 || fs[0].State != api.FactorActive || !strings.Contains(string(fs[0].Public), `"key_protection":"non-extractable"`) {
		t.Fatalf("wes's push factors: %+v", fs)
	}
	if recs, _ := e.svc.ListAudit(ctx, core.System, core.AuditFilter{Action: "enrolment.create", TargetID: wes.ID}, 10); len(recs) == 0 ||
		!strings.Contains(string(recs[len(recs)-1].Body), "proof_kind") {
		t.Fatal("the push enrolment was not proved with wes's key")
	}
	extractable := eval[string](b, `new Promise((ok) => { const r = indexedDB.open("keyfleet-push", 1); r.onsuccess = () => {
		const g = r.result.transaction("device").objectStore("device").get("device");
		g.onsuccess = () => ok(String(g.result.key.extractable) + "/" + g.result.key.algorithm.namedCurve); }; })`)
	if extractable != "false/P-256" {
		t.Fatalf("the browser's push key: extractable/curve = %s", extractable)
	}
	b.shot("push-companion")

	t.Run("the right number is verified", func(t *testing.T) {
		b.t = t
		v, p, err := e.pushTo(t, app, "wes")
		if err != nil {
			t.Fatal(err)
		}
		if got := b.promptFor(v); len(got) != 3 || !containsStr(got, p.Number) {
			t.Fatalf("the companion offers %v; the sign-in screen shows %s", got, p.Number)
		}
		if head := b.text("#prompts .push-prompt h3"); head != "wes is signing in to Payroll from 198.51.100.23" {
			t.Fatalf("the prompt says %q", head)
		}
		b.shot("push-prompt")
		if got := b.pick("Pick " + p.Number); !strings.HasPrefix(got, "Approved") {
			t.Fatalf("picking the right number: %q", got)
		}
		if res := e.outcome(t, app, v, "5s"); !res.OK {
			t.Fatalf("finish: %+v", res)
		}
	})

	t.Run("a replayed answer is refused", func(t *testing.T) {
		if code := e.replayLast(); code != http.StatusUnauthorized {
			t.Fatalf("the approved answer sent again: %d", code)
		}
	})

	t.Run("a wrong number is refused", func(t *testing.T) {
		b.t = t
		v, p, _ := e.pushTo(t, app, "wes")
		choices := b.promptFor(v)
		wrong := choices[0]
		if wrong == p.Number {
			wrong = choices[1]
		}
		if got := b.pick("Pick " + wrong); got != "Refused: the user picked the wrong number." {
			t.Fatalf("picking %s when the screen shows %s: %q", wrong, p.Number, got)
		}
		if res := e.outcome(t, app, v, "5s"); res.OK {
			t.Fatal("a wrong number was verified")
		}
	})

	t.Run("an answer that arrives after the deadline is refused", func(t *testing.T) {
		b.t = t
		v, p, _ := e.pushTo(t, app, "wes")
		b.promptFor(v)
		release := e.holdNext()
		b.do(chromedp.Click(`#prompts .push-prompt:not([data-done]) button[aria-label=` + jsString("Pick "+p.Number) + `]`))
		poll(t, func() bool { e.mu.Lock(); defer e.mu.Unlock(); return e.hold == nil })
		e.ahead.Store(int64(61 * time.Second)) // the answer reaches keyfleetd a minute late
		close(release)
		b.settle(`document.querySelector("#prompts .push-prompt .push-result").textContent !== ""`, "the late answer's outcome")
		if got := b.text("#prompts .push-prompt .push-result"); got != "Refused: the answer came after the deadline." {
			t.Fatalf("a late answer: %q", got)
		}
		e.ahead.Store(0)
		if res := e.outcome(t, app, v, "5s"); res.OK {
			t.Fatal("a late answer was verified")
		}
	})

	t.Run("the installed app works without a session", func(t *testing.T) {
		b.t = t
		b.signOut()
		b.do(chromedp.Navigate(e.url + "/push/"))
		b.settle(`document.getElementById("companion-status").textContent.includes("Waiting for sign-ins of wes")`, "the companion app")
		inst, err := chromedp.Call(b.ctx, page.GetInstallabilityErrors, cdp.Empty{})
		if err != nil || len(inst.InstallabilityErrors) != 0 {
			t.Fatalf("the companion is not installable: %v %+v", err, inst.InstallabilityErrors)
		}
		v, p, _ := e.pushTo(t, app, "wes")
		b.promptFor(v)
		if got := b.pick("Pick " + p.Number); !strings.HasPrefix(got, "Approved") {
			t.Fatalf("answering in the app: %q", got)
		}
		b.shot("push-app")
	})

	t.Run("this wasn't me locks pushes and is audited", func(t *testing.T) {
		b.t = t
		v, _, _ := e.pushTo(t, app, "wes")
		b.promptFor(v)
		if got := b.pick("This wasn't me"); !strings.HasPrefix(got, "Reported") {
			t.Fatalf("reporting: %q", got)
		}
		if _, _, err := e.pushTo(t, app, "wes"); !errors.Is(err, core.ErrLocked) {
			t.Fatalf("a push after the report: %v", err)
		}
		recs, _ := e.svc.ListAudit(ctx, core.System, core.AuditFilter{Action: "push.reported"}, 10)
		if len(recs) != 1 || !strings.Contains(string(recs[0].Body), "Payroll") {
			t.Fatalf("push.reported: %d records", len(recs))
		}
	})
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func poll(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}
