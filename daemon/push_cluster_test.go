package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	"github.com/keyfleet/keyfleet/daemon"
	"github.com/keyfleet/keyfleet/daemon/core"
	pushkind "github.com/keyfleet/keyfleet/plugins/push"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// TestThePushCapHoldsAcrossKeyfleetdOnOneDatabase: the cap on pushes per
// user (push.max_per_user in push.period) is what keeps a person from
// being worn into approving. With two keyfleetd behind a load balancer on
// one PostgreSQL database, an attacker who knows the password and asks
// for pushes alternately through each gets the cap once, not once per
// keyfleetd: the fourth push of a cap of three is refused (429, with
// Retry-After), whichever keyfleetd it reaches.
func TestThePushCapHoldsAcrossKeyfleetdOnOneDatabase(t *testing.T) {
	dir, cfg, _ := initOn(t, postgres)
	cfg.Push.MaxPerUser = 3
	cfg.Push.Period.Duration = 10 * time.Minute
	n := serveNodes(t, dir, cfg, daemon.Options{LogOut: logOut(), Kinds: []sdk.Factor{pushkind.Factor{}}}, 2)
	ctx := context.Background()
	svc := n.servers[0].Service()
	u, _, err := svc.CreateUser(ctx, core.System, api.CreateUser{Username: "vpn-gateway", Kind: api.KindService})
	if err != nil {
		t.Fatal(err)
	}
	_, tok, err := svc.CreateToken(ctx, core.System, api.CreateToken{User: u.ID, Name: "vpn"})
	if err != nil {
		t.Fatal(err)
	}
	enrolPush(t, svc, "zoe")
	ca, _ := os.ReadFile(filepath.Join(dir, "tls", "cert.pem"))
	apps := make([]*client.Client, len(n.urls))
	for i, url := range n.urls {
		if apps[i], err = client.New(client.Config{Server: url, Token: tok, CAPEM: ca}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if _, err := apps[i%2].BeginVerify(ctx, api.BeginVerify{User: "zoe", Kinds: []string{"push"}, Application: "VPN"}); err != nil {
			t.Fatalf("push %d of 3, through keyfleetd %d: %v", i+1, i%2+1, err)
		}
	}
	for i, app := range apps {
		_, err := app.BeginVerify(ctx, api.BeginVerify{User: "zoe", Kinds: []string{"push"}, Application: "VPN"})
		var p *api.Problem
		if !errors.As(err, &p) || p.Status != http.StatusTooManyRequests || !strings.Contains(p.Detail, "3 pushes to zoe") {
			t.Fatalf("a fourth push through keyfleetd %d, past a cap of 3 counted across both: %v", i+1, err)
		}
	}
	// Another user has a budget of their own.
	enrolPush(t, svc, "yann")
	if _, err := apps[1].BeginVerify(ctx, api.BeginVerify{User: "yann", Kinds: []string{"push"}, Application: "VPN"}); err != nil {
		t.Fatalf("another user's first push: %v", err)
	}
}

// enrolPush enrols a push companion for a new user named name.
func enrolPush(t *testing.T, svc *core.Service, name string) {
	t.Helper()
	ctx := context.Background()
	u, _, err := svc.CreateUser(ctx, core.System, api.CreateUser{Username: name})
	if err != nil {
		t.Fatal(err)
	}
	en, _, err := svc.CreateEnrolment(ctx, core.System, api.CreateEnrolment{User: u.ID, Kind: "push"})
	if err != nil {
		t.Fatal(err)
	}
	var params map[string]string
	json.Unmarshal(en.Params, &params)
	dev, _ := pushkind.NewDevice(nil)
	r, _ := dev.Enrol(en.ID, params["nonce"], name+"'s phone", "file")
	b, _ := json.Marshal(r)
	if _, err := svc.CompleteEnrolment(ctx, core.System, en.ID, api.CompleteEnrolment{Label: "phone", Payload: b}); err != nil {
		t.Fatal(err)
	}
}

// TestAPushSignInCrossesKeyfleetdOnOneDatabase: two keyfleetd behind a
// load balancer on one PostgreSQL database. Pat, who has only a push
// companion, begins a sign-in on the page through the first; her phone
// keeps its stream open on the second, gets the push there and approves
// it there; her browser's next request reaches the second,
// which finishes the sign-in from the session the first began; and the
// page through the first knows her as signed in. A browser whose push she
// refused gets nowhere on either. Fails when a keyfleetd does not look up
// the pushes another filed for the phones connected to it (tried).
func TestAPushSignInCrossesKeyfleetdOnOneDatabase(t *testing.T) {
	dir, cfg, _ := initOn(t, postgres)
	n := serveNodes(t, dir, cfg, daemon.Options{LogOut: logOut(), Kinds: []sdk.Factor{pushkind.Factor{}}}, 2)
	ctx := context.Background()
	svc := n.servers[0].Service()
	out, err := svc.ApplyPolicy(ctx, core.System, api.PolicyDocument{Comment: "push sign-in",
		Document: "version: 1\nself_service:\n  push_sign_in: [recovery_code]\nrules: []\n"})
	if err != nil || out.Approval == nil {
		t.Fatalf("turning push sign-in on: %+v, %v; want it waiting for a second person", out, err)
	}
	second := core.Principal{UserID: "breakglass", Username: "break-glass", Roles: []string{api.RoleAdmin}, Auth: "breakglass"}
	if _, err := n.servers[1].Service().Approve(ctx, second, out.Approval.ID, "the second person"); err != nil {
		t.Fatal(err)
	}

	u, _, err := svc.CreateUser(ctx, core.System, api.CreateUser{Username: "pat"})
	if err != nil {
		t.Fatal(err)
	}
	en, _, err := svc.CreateEnrolment(ctx, core.System, api.CreateEnrolment{User: u.ID, Kind: pushkind.Kind})
	if err != nil {
		t.Fatal(err)
	}
	var params map[string]string
	json.Unmarshal(en.Params, &params)
	dev, _ := pushkind.NewDevice(nil)
	r, _ := dev.Enrol(en.ID, params["nonce"], "Pixel of pat", "file")
	b, _ := json.Marshal(r)
	holder := core.Principal{UserID: u.ID, Roles: []string{api.RoleUser}, Auth: "enrolment_code"}
	f, err := svc.CompleteEnrolment(ctx, holder, en.ID, api.CompleteEnrolment{Label: "phone", Payload: b})
	if err != nil || len(f.RecoveryCodes) < 2 {
		t.Fatalf("enrolling the companion: %v (%d recovery codes)", err, len(f.RecoveryCodes))
	}
	dev.FactorID = f.ID
	ca, _ := os.ReadFile(filepath.Join(dir, "tls", "cert.pem"))
	onSecond, err := client.New(client.Config{Server: n.urls[1], CAPEM: ca})
	if err != nil {
		t.Fatal(err)
	}
	phone := &companion{t: t, dev: dev, c: onSecond.WithDevice(dev)}

	// Pat's phone keeps its stream open on the second keyfleetd, as
	// keyfleet-agent push does.
	events := phone.stream()
	next := func(number string) pushkind.Delivery {
		t.Helper()
		for {
			select {
			case d := <-events:
				if slices.Contains(d.Choices, number) {
					return d
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the phone's stream on the second keyfleetd got no push for a sign-in begun on the first")
			}
		}
	}

	// A browser that begins on the first keyfleetd and is refused on the
	// phone is not signed in by finishing on the second.
	stranger := newBrowser(t, n.hc, n.urls[0])
	st, raw := stranger.post(n.urls[0], "/signin/push/begin", map[string]string{"username": "pat", "recovery_code": f.RecoveryCodes[1]})
	var begun struct {
		Choices []struct{ Device, Number string }
	}
	if json.Unmarshal(raw, &begun); st != http.StatusOK || len(begun.Choices) != 1 {
		t.Fatalf("the stranger's begin: %d %s", st, raw)
	}
	phone.answer(next(begun.Choices[0].Number), "", pushkind.Deny)

	browser := newBrowser(t, n.hc, n.urls[0])
	st, raw = browser.post(n.urls[0], "/signin/push/begin", map[string]string{"username": "pat", "recovery_code": f.RecoveryCodes[0]})
	if json.Unmarshal(raw, &begun); st != http.StatusOK || len(begun.Choices) != 1 || begun.Choices[0].Number == "" {
		t.Fatalf("begin through the first keyfleetd: %d %s", st, raw)
	}
	got := next(begun.Choices[0].Number)
	phone.answer(got, begun.Choices[0].Number, pushkind.Approve)
	if st, raw := browser.post(n.urls[1], "/signin/push/finish", map[string]string{"recovery_code": f.RecoveryCodes[0]}); st != http.StatusOK {
		t.Fatalf("finish through the second keyfleetd: %d %s", st, raw)
	}
	if st, page := browser.get(n.urls[0], "/me"); st != http.StatusOK || !strings.Contains(page, "signed in with a push") {
		t.Fatalf("/me through the first keyfleetd after the sign-in finished on the second: %d", st)
	}
	if st, raw := stranger.post(n.urls[1], "/signin/push/finish", map[string]string{"recovery_code": f.RecoveryCodes[1]}); st == http.StatusOK {
		t.Fatalf("the stranger's denied push signed a browser in through the second keyfleetd: %s", raw)
	}
	if st, _ := stranger.get(n.urls[0], "/me"); st == http.StatusOK {
		t.Fatal("the stranger's browser reaches /me")
	}
	recs, _ := svc.ListAudit(ctx, core.System, core.AuditFilter{Action: "user.push_sign_in"}, 10)
	if len(recs) != 1 {
		t.Fatalf("push sign-ins in the audit trail: %d, want 1", len(recs))
	}
}

// browser is a web client with cookies, shared by keyfleetd on one
// database as a load balancer would share them.
type browser struct {
	t    *testing.T
	c    *http.Client
	csrf string
}

func newBrowser(t *testing.T, hc *http.Client, url string) *browser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	p := &browser{t: t, c: &http.Client{Jar: jar, Transport: hc.Transport, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	st, page := p.get(url, "/signin/push")
	m := csrfMeta.FindStringSubmatch(page)
	if st != http.StatusOK || m == nil {
		t.Fatalf("GET /signin/push: %d, no CSRF token", st)
	}
	p.csrf = m[1]
	return p
}

func (p *browser) get(url, path string) (int, string) {
	p.t.Helper()
	resp, err := p.c.Get(url + path)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (p *browser) post(url, path string, body any) (int, []byte) {
	p.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", p.csrf)
	resp, err := p.c.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// companion is a push companion on one keyfleetd, through the API
// client as keyfleet-agent push uses it.
type companion struct {
	t   *testing.T
	dev *pushkind.Device
	c   *client.Client
}

// stream opens the companion's stream and returns its pushes as they
// come; it ends with the test.
func (c *companion) stream() <-chan pushkind.Delivery {
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan pushkind.Delivery, 8)
	done := make(chan struct{})
	c.t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		c.c.PushStream(ctx, time.Minute, func(ev client.PushEvent) error {
			var d pushkind.Delivery
			if ev.Type == "push" && json.Unmarshal(ev.Data, &d) == nil {
				select {
				case out <- d:
				case <-ctx.Done():
				}
			}
			return nil
		})
	}()
	return out
}

func (c *companion) answer(d pushkind.Delivery, number, decision string) {
	c.t.Helper()
	a, _ := c.dev.Answer(d, number, decision, time.Now())
	if _, err := c.c.AnswerPush(context.Background(), a); err != nil {
		c.t.Fatalf("answer: %v", err)
	}
}
