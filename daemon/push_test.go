package daemon_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	"github.com/keyfleet/keyfleet/daemon"
	"github.com/keyfleet/keyfleet/daemon/core"
	pushkind "github.com/keyfleet/keyfleet/plugins/push"
	"github.com/keyfleet/keyfleet/plugins/sdk"
	"github.com/keyfleet/keyfleet/plugins/totp"
)

// pushEnv is a keyfleetd in this process with the push kind (in
// process), HTTPS on loopback, a service account that verifies, and
// clients for it.
type pushEnv struct {
	tb  testing.TB
	url string
	srv *daemon.Server
	svc *core.Service
	app *client.Client // the service account's
	// appToken is the service account's token.
	appToken string
	ca       []byte
	stop     func()
}

func startPushEnv(tb testing.TB, cfg daemon.Config, kinds ...sdk.Factor) *pushEnv {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "data")
	if _, err := daemon.Init(context.Background(), daemon.InitOptions{Dir: dir}); err != nil {
		tb.Fatal(err)
	}
	cfg.DataDir = dir
	if kinds == nil {
		kinds = []sdk.Factor{pushkind.Factor{}, totp.Factor{}}
	}
	srv, err := daemon.New(cfg, daemon.Options{LogOut: logOut(), Kinds: kinds})
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, nil) }()
	e := &pushEnv{tb: tb, url: "https://" + ln.Addr().String(), srv: srv, svc: srv.Service()}
	e.stop = func() { cancel(); <-done }
	tb.Cleanup(e.stop)
	e.ca, _ = os.ReadFile(filepath.Join(dir, "tls", "cert.pem"))
	u, _, err := e.svc.CreateUser(ctx, core.System, api.CreateUser{Username: "vpn-gateway", Kind: api.KindService})
	if err != nil {
		tb.Fatal(err)
	}
	_, tok, err := e.svc.CreateToken(ctx, core.System, api.CreateToken{User: u.ID, Name: "vpn"})
	if err != nil {
		tb.Fatal(err)
	}
	e.app, e.appToken = e.client(tok), tok
	return e
}

func logOut() *os.File {
	if os.Getenv("KEYFLEET_TEST_LOG") != "" {
		return os.Stderr
	}
	return nil
}

func (e *pushEnv) client(token string) *client.Client {
	c, err := client.New(client.Config{Server: e.url, Token: token, CAPEM: e.ca})
	if err != nil {
		e.tb.Fatal(err)
	}
	return c
}

// companion enrols a push companion for a new user named name.
func (e *pushEnv) companion(name string) (*pushkind.Device, *client.Client) {
	e.tb.Helper()
	ctx := context.Background()
	u, _, err := e.svc.CreateUser(ctx, core.System, api.CreateUser{Username: name})
	if err != nil {
		e.tb.Fatal(err)
	}
	en, _, err := e.svc.CreateEnrolment(ctx, core.System, api.CreateEnrolment{User: u.ID, Kind: "push"})
	if err != nil {
		e.tb.Fatal(err)
	}
	var params map[string]string
	json.Unmarshal(en.Params, &params)
	dev, _ := pushkind.NewDevice(nil)
	r, _ := dev.Enrol(en.ID, params["nonce"], name+"'s phone", "file")
	b, _ := json.Marshal(r)
	f, err := e.svc.CompleteEnrolment(ctx, core.System, en.ID, api.CompleteEnrolment{Label: "phone", Payload: b})
	if err != nil {
		e.tb.Fatal(err)
	}
	dev.FactorID = f.ID
	return dev, e.client("").WithDevice(dev)
}

func TestAPushThroughTheAPIAndTheCompanionsStream(t *testing.T) {
	e := startPushEnv(t, daemon.Config{})
	dev, c := e.companion("zoe")
	events := make(chan client.PushEvent, 16)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.PushStream(ctx, idle, func(ev client.PushEvent) error { events <- ev; return nil })
	if ev := <-events; ev.Type != "ready" {
		t.Fatalf("the stream opened with %+v", ev)
	}
	v, err := e.app.BeginVerify(ctx, api.BeginVerify{User: "zoe", Kinds: []string{"push"}, Application: "VPN"})
	if err != nil {
		t.Fatal(err)
	}
	ev := <-events
	var d pushkind.Delivery
	var p pushkind.Prompt
	json.Unmarshal(ev.Data, &d)
	json.Unmarshal(v.Factors[0].Prompt, &p)
	if ev.Type != "push" || d.VerificationID == "" || !strings.Contains(strings.Join(d.Choices, ","), p.Number) {
		t.Fatalf("the companion got %+v", ev)
	}
	a, _ := dev.Answer(d, p.Number, pushkind.Approve, timeNow())
	out, err := c.AnswerPush(ctx, a)
	if err != nil || !out.OK || out.Outcome != "approved" {
		t.Fatalf("answer: %+v %v", out, err)
	}
	res, err := e.app.FinishVerify(ctx, api.FinishVerify{ID: v.ID, FactorID: v.Factors[0].FactorID})
	if err != nil || !res.OK {
		t.Fatalf("finish: %+v %v", res, err)
	}
	if ev := <-events; ev.Type != "closed" || !strings.Contains(string(ev.Data), `"approved"`) {
		t.Fatalf("after the answer the stream said %+v", ev)
	}
}

const idle = 70 * time.Second

func timeNow() time.Time { return time.Now() }

// A request that waits on a person or a device (a companion's stream, a
// long poll, a finish waiting for the answer to a push) is not counted as
// work keyfleetd is doing once it waits, so the compliance sweep does
// not hold back for it.
func TestRequestsThatWaitDoNotHoldTheSweepBack(t *testing.T) {
	e := startPushEnv(t, daemon.Config{})
	_, c := e.companion("zoe")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// waiting runs call (a request that waits up to a few seconds) and
	// checks that, once keyfleetd has counted it and before it returns,
	// nothing is counted as in flight.
	waiting := func(what string, call func()) {
		t.Helper()
		_, before := e.srv.Requests()
		done := make(chan struct{})
		go func() { defer close(done); call() }()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if _, n := e.srv.Requests(); n > before {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: keyfleetd never counted the request", what)
			}
		}
		// The handler stops counting once it reaches its wait, well
		// within the 5 s each call waits.
		for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			select {
			case <-done:
				t.Fatalf("%s returned before it was checked", what)
			default:
			}
			n, _ := e.srv.Requests()
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d request(s) still counted in flight 3 s into its wait", what, n)
			}
		}
	}
	waiting("a long poll for pushes", func() { c.PendingPushes(ctx, 5*time.Second) })

	events := make(chan client.PushEvent, 16)
	waiting("a companion's stream", func() {
		c.PushStream(ctx, idle, func(ev client.PushEvent) error { events <- ev; return nil })
	})
	v, err := e.app.BeginVerify(ctx, api.BeginVerify{User: "zoe", Kinds: []string{"push"}, Application: "VPN"})
	if err != nil {
		t.Fatal(err)
	}
	waiting("a finish waiting for the answer", func() {
		e.app.FinishVerify(ctx, api.FinishVerify{ID: v.ID, FactorID: v.Factors[0].FactorID, Wait: "5s"})
	})
}
