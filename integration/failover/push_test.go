package failover

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/integration/kftest"
	pushkind "github.com/keyfleet/keyfleet/plugins/push"
)

// pushNodes sets up n keyfleetd on one database with the push plugin,
// and returns them with an administrator's token and an application's
// (a service user's) token.
func pushNodes(t *testing.T, n int, extra ...map[string]string) (nodes []*kftest.Daemon, admin, app string) {
	t.Helper()
	dsn := cluster.Database(t)
	base := t.TempDir()
	d1 := filepath.Join(base, "k1")
	kftest.Init(t, keyfleetd(), d1, "--postgres", dsn)
	pdir, pins := kftest.PluginDir(t, bins["keyfleet-plugin-push"])
	kftest.EditConfig(t, d1, map[string]string{
		"plugins.dir":       strconv.Quote(pdir),
		"plugins.plugins":   pins,
		"trusted_proxies":   "[127.0.0.1/32]",
		"push.max_per_user": "30",
	})
	for _, e := range extra {
		kftest.EditConfig(t, d1, e)
	}
	dirs := []string{d1}
	for i := 2; i <= n; i++ {
		d := filepath.Join(base, fmt.Sprintf("k%d", i))
		if out, err := exec.Command("cp", "-a", d1, d).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
		dirs = append(dirs, d)
	}
	admin = kftest.AdminToken(t, d1)
	nodes = serveAll(t, dirs)
	nodes[0].MustCall(201, admin, "POST", "/v1/users", api.CreateUser{Username: "vpn-gateway", Kind: api.KindService}, nil)
	var tok api.CreatedToken
	nodes[0].MustCall(201, admin, "POST", "/v1/tokens", api.CreateToken{User: "vpn-gateway", Name: "vpn"}, &tok)
	return nodes, admin, tok.Secret
}

// phone is a person's push companion: its device key, on the test's side.
type phone struct {
	t   *testing.T
	dev *pushkind.Device
}

// enrolPhone has an admin open a push enrolment (15 s to answer) for a
// new user, who redeems its code and registers a phone, through d.
func enrolPhone(t *testing.T, d *kftest.Daemon, admin, user string) *phone {
	t.Helper()
	d.MustCall(201, admin, "POST", "/v1/users", api.CreateUser{Username: user}, nil)
	var en api.Enrolment
	d.MustCall(201, admin, "POST", "/v1/enrolments", api.CreateEnrolment{User: user, Kind: "push", Options: map[string]string{"timeout": "15"}}, &en)
	var red api.RedeemedEnrolment
	if code, err := kftest.CallFrom(d.HTTP, "192.0.2.10", "", "POST", d.URL+"/v1/enrolments/redeem", api.RedeemEnrolmentCode{Code: en.Code}, &red); err != nil || code != 201 {
		t.Fatalf("redeeming %s's enrolment code: %d %v", user, code, err)
	}
	var params map[string]string
	json.Unmarshal(red.Enrolment.Params, &params)
	dev, err := pushkind.NewDevice(nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := dev.Enrol(en.ID, params["nonce"], user+"'s phone", "file")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(r)
	var f api.Factor
	d.MustCall(201, red.Token, "POST", "/v1/enrolments/"+en.ID+"/complete", api.CompleteEnrolment{Payload: b}, &f)
	dev.FactorID = f.ID
	return &phone{t: t, dev: dev}
}

// sse is one event of a companion's stream.
type sse struct{ event, data string }

// connect opens the phone's stream to d and returns its events.
func (p *phone) connect(d *kftest.Daemon) <-chan sse {
	p.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", d.URL+"/v1/push/stream", nil)
	h, _ := p.dev.Authorization("GET", "/v1/push/stream", time.Now())
	req.Header.Set(pushkind.DeviceHeader, h)
	hc := &http.Client{Transport: d.HTTP.Transport}
	resp, err := hc.Do(req)
	if err != nil || resp.StatusCode != 200 {
		cancel()
		p.t.Fatalf("the phone's stream to %s: %v %v", d.Name, err, resp)
	}
	out := make(chan sse, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		var ev sse
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			case line == "" && ev.event != "":
				out <- ev
				ev = sse{}
			}
		}
	}()
	p.t.Cleanup(func() { cancel(); resp.Body.Close(); <-done })
	return out
}

// next waits for the stream's next event of type want.
func next(t *testing.T, events <-chan sse, want string) string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("the stream ended before a %q event", want)
			}
			if ev.event == want {
				return ev.data
			}
		case <-deadline:
			t.Fatalf("no %q event in 20s", want)
		}
	}
}

// answer signs a decision on the delivery data and returns the body.
func (p *phone) answer(data, number, decision string) []byte {
	p.t.Helper()
	var del pushkind.Delivery
	if err := json.Unmarshal([]byte(data), &del); err != nil {
		p.t.Fatalf("delivery %q: %v", data, err)
	}
	a, err := p.dev.Answer(del, number, decision, time.Now())
	if err != nil {
		p.t.Fatal(err)
	}
	b, _ := json.Marshal(a)
	return b
}

// send posts an answer body to d, signed by the phone.
func (p *phone) send(d *kftest.Daemon, body []byte) (int, string) {
	p.t.Helper()
	req, _ := http.NewRequest("POST", d.URL+"/v1/push/answer", bytes.NewReader(body))
	h, _ := p.dev.Authorization("POST", "/v1/push/answer", time.Now())
	req.Header.Set(pushkind.DeviceHeader, h)
	resp, err := d.HTTP.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// pushSignIn is an application's push verification.
type pushSignIn struct {
	v      api.Verification
	number string
}

func beginPushOn(t *testing.T, d *kftest.Daemon, app, user string) pushSignIn {
	t.Helper()
	var s pushSignIn
	d.MustCall(201, app, "POST", "/v1/verify/begin", api.BeginVerify{User: user, Kinds: []string{"push"}, Application: "VPN", Address: "203.0.113.7"}, &s.v)
	var pr pushkind.Prompt
	json.Unmarshal(s.v.Factors[0].Prompt, &pr)
	s.number = pr.Number
	return s
}

func (s pushSignIn) finishOn(t *testing.T, d *kftest.Daemon, app, wait string) (int, api.VerifyResult) {
	t.Helper()
	var res api.VerifyResult
	code, err := d.Call(app, "POST", "/v1/verify/finish", api.FinishVerify{ID: s.v.ID, FactorID: s.v.Factors[0].FactorID, Wait: wait}, &res)
	if err != nil {
		t.Fatal(err)
	}
	return code, res
}

func wrongNumber(data, right string) string {
	var del pushkind.Delivery
	json.Unmarshal([]byte(data), &del)
	for _, c := range del.Choices {
		if c != right {
			return c
		}
	}
	return ""
}

// TestAPushBegunOnOneKeyfleetdIsAnsweredThroughAnother: two keyfleetd
// on one database. Ivy's phone keeps its stream open to A; the VPN
// gateway begins her sign-in through B and waits there. The push reaches
// her phone through A, she picks the number, her answer goes to A, and
// the gateway waiting on B learns she approved. Her recorded answer sent
// again, to either, is refused; a denial through B is a denial on A; the
// same answer sent to both at once counts once; mallory's phone cannot
// answer ivy's push; an answer after the deadline is refused; and a push
// outlives the keyfleetd that began it.
func TestAPushBegunOnOneKeyfleetdIsAnsweredThroughAnother(t *testing.T) {
	nodes, admin, app := pushNodes(t, 2)
	a, b := nodes[0], nodes[1]
	ivy := enrolPhone(t, a, admin, "ivy")
	mallory := enrolPhone(t, b, admin, "mallory")
	events := ivy.connect(a)
	next(t, events, "ready")

	s := beginPushOn(t, b, app, "ivy")
	waited := make(chan api.VerifyResult, 1)
	go func() {
		var res api.VerifyResult
		b.Call(app, "POST", "/v1/verify/finish", api.FinishVerify{ID: s.v.ID, FactorID: s.v.Factors[0].FactorID, Wait: "20s"}, &res)
		waited <- res
	}()
	delivery := next(t, events, "push")
	var del pushkind.Delivery
	if json.Unmarshal([]byte(delivery), &del); del.User != "ivy" || del.Application != "VPN" || del.VerificationID == "" {
		t.Fatalf("the phone got %s", delivery)
	}
	approved := ivy.answer(delivery, s.number, pushkind.Approve)
	if code, body := ivy.send(a, approved); code != 200 || !strings.Contains(body, `"approved"`) {
		t.Fatalf("the answer through A: %d %s", code, body)
	}
	select {
	case res := <-waited:
		if !res.OK || res.Pending {
			t.Fatalf("the gateway waiting on B got %+v", res)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the gateway waiting on B learned nothing in 20s")
	}
	if closed := next(t, events, "closed"); !strings.Contains(closed, del.VerificationID) || !strings.Contains(closed, "approved") {
		t.Fatalf("the phone was told %s", closed)
	}
	if code, _ := s.finishOn(t, a, app, "0s"); code == 200 || code == 202 {
		t.Fatalf("the outcome taken a second time, on A: %d", code)
	}

	t.Run("a replayed answer is refused on both", func(t *testing.T) {
		for _, d := range nodes {
			if code, body := ivy.send(d, approved); code < 400 || strings.Contains(body, "approved") {
				t.Fatalf("the replay to %s: %d %s", d.Name, code, body)
			}
		}
	})

	t.Run("a captured request is refused by the other keyfleetd", func(t *testing.T) {
		h, _ := ivy.dev.Authorization("GET", "/v1/push/pending", time.Now())
		for i, d := range nodes {
			req, _ := http.NewRequest("GET", d.URL+"/v1/push/pending", nil)
			req.Header.Set(pushkind.DeviceHeader, h)
			resp, err := d.HTTP.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := []int{200, 401}[i]; resp.StatusCode != want || (i == 1 && !strings.Contains(string(body), "used already")) {
				t.Fatalf("the request on %s: %d %s, want %d", d.Name, resp.StatusCode, body, want)
			}
		}
	})

	t.Run("a denial through B is a denial on A", func(t *testing.T) {
		s := beginPushOn(t, a, app, "ivy")
		delivery := next(t, events, "push")
		if code, body := ivy.send(b, ivy.answer(delivery, "", pushkind.Deny)); code != 200 || strings.Contains(body, `"approved"`) {
			t.Fatalf("the denial through B: %d %s", code, body)
		}
		waitFor(t, "A to learn of the denial", func() bool {
			code, res := s.finishOn(t, a, app, "1s")
			if code == 200 && res.OK {
				t.Fatalf("a denied push verified: %+v", res)
			}
			return code == 200 && !res.Pending
		})
	})

	t.Run("the same answer to both at once counts once", func(t *testing.T) {
		s := beginPushOn(t, b, app, "ivy")
		delivery := next(t, events, "push")
		body := ivy.answer(delivery, s.number, pushkind.Approve)
		var wg sync.WaitGroup
		var mu sync.Mutex
		won := 0
		for i := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if code, out := ivy.send(nodes[i%2], body); code == 200 && strings.Contains(out, `"approved"`) {
					mu.Lock()
					won++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if won != 1 {
			t.Fatalf("%d answers approved", won)
		}
		if code, res := s.finishOn(t, a, app, "5s"); code != 200 || !res.OK {
			t.Fatalf("finish on A: %d %+v", code, res)
		}
	})

	t.Run("mallory's phone cannot answer ivy's push", func(t *testing.T) {
		s := beginPushOn(t, a, app, "ivy")
		delivery := next(t, events, "push")
		forged := ivy.answer(delivery, s.number, pushkind.Approve) // names ivy's factor
		for _, d := range nodes {
			if code, body := mallory.send(d, forged); code != 403 {
				t.Fatalf("mallory sent ivy's answer to %s: %d %s", d.Name, code, body)
			}
		}
		var del pushkind.Delivery
		json.Unmarshal([]byte(delivery), &del)
		del.FactorID = mallory.dev.FactorID // ivy's verification under mallory's factor
		own, _ := mallory.dev.Answer(del, s.number, pushkind.Approve, time.Now())
		ob, _ := json.Marshal(own)
		for _, d := range nodes {
			if code, body := mallory.send(d, ob); code < 400 {
				t.Fatalf("mallory's own-factor answer to ivy's push on %s: %d %s", d.Name, code, body)
			}
		}
		if code, res := s.finishOn(t, b, app, "0s"); code != 202 || !res.Pending {
			t.Fatalf("ivy's push after mallory's tries: %d %+v", code, res)
		}
		ivy.send(b, ivy.answer(delivery, "", pushkind.Deny))
	})

	t.Run("an answer after the deadline is refused", func(t *testing.T) {
		s := beginPushOn(t, b, app, "ivy")
		delivery := next(t, events, "push")
		late := ivy.answer(delivery, s.number, pushkind.Approve)
		waitFor(t, "the push to run out", func() bool {
			code, res := s.finishOn(t, a, app, "2s")
			if code == 200 && res.OK {
				t.Fatalf("a push nobody answered verified: %+v", res)
			}
			return code == 200 && !res.Pending
		})
		for _, d := range nodes {
			if code, body := ivy.send(d, late); code < 400 {
				t.Fatalf("the late answer to %s: %d %s", d.Name, code, body)
			}
		}
		var page struct{ Items []api.AuditEvent }
		a.MustCall(200, admin, "GET", "/v1/audit?action=push.unanswered&limit=100", nil, &page)
		if len(page.Items) != 1 {
			t.Fatalf("%d push.unanswered events, want 1 (one keyfleetd closes it)", len(page.Items))
		}
	})

	t.Run("a push outlives the keyfleetd that began it", func(t *testing.T) {
		s := beginPushOn(t, b, app, "ivy")
		delivery := next(t, events, "push")
		b.Kill()
		if code, body := ivy.send(a, ivy.answer(delivery, s.number, pushkind.Approve)); code != 200 || !strings.Contains(body, `"approved"`) {
			t.Fatalf("the answer through A after B died: %d %s", code, body)
		}
		if code, res := s.finishOn(t, a, app, "5s"); code != 200 || !res.OK {
			t.Fatalf("the gateway, on A after B died: %d %+v", code, res)
		}
	})

	t.Run("a push outlives a restart, and a new stream lists it", func(t *testing.T) {
		s := beginPushOn(t, a, app, "ivy")
		next(t, events, "push")
		a.Kill()
		b2 := kftest.Serve(t, keyfleetd(), "k2-again", b.Dir)
		a2 := kftest.Serve(t, keyfleetd(), "k1-again", a.Dir)
		fresh := ivy.connect(b2) // the phone reconnects, to the other one
		listed := next(t, fresh, "push")
		if ready := next(t, fresh, "ready"); !strings.Contains(ready, `"pending":1`) {
			t.Fatalf("the new stream listed %s", ready)
		}
		if code, body := ivy.send(b2, ivy.answer(listed, s.number, pushkind.Approve)); code != 200 || !strings.Contains(body, `"approved"`) {
			t.Fatalf("the answer through B after the restarts: %d %s", code, body)
		}
		if code, res := s.finishOn(t, a2, app, "5s"); code != 200 || !res.OK {
			t.Fatalf("the gateway, on A restarted: %d %+v", code, res)
		}
	})
}

// TestARadiusPushWaitIsPolledOnAnotherKeyfleetd: a NAS that round-robins
// over two keyfleetd on one database. Jo signs in to the VPN: A sends the
// push and challenges; Jo presses Enter before approving, and B
// challenges again; Jo approves on the phone, connected to B, and
// presses Enter, which goes to A: accepted. A push denied is rejected,
// whichever keyfleetd polls.
func TestARadiusPushWaitIsPolledOnAnotherKeyfleetd(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "nas.secret")
	if err := os.WriteFile(secret, []byte(nasSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	nodes, admin, _ := pushNodes(t, 2, map[string]string{
		"radius.enabled": "true",
		"radius.listen":  "127.0.0.1:0",
		"radius.clients": fmt.Sprintf("[{name: vpn-gw1, networks: [127.0.0.1], secret_file: %s}]", strconv.Quote(secret)),
	})
	a, b := radiusAddr(t, nodes[0]), radiusAddr(t, nodes[1])
	jo := enrolPhone(t, nodes[0], admin, "jo")
	events := jo.connect(nodes[1])
	next(t, events, "ready")

	for _, tt := range []struct {
		decision, want string
	}{{pushkind.Approve, "Access-Accept"}, {pushkind.Deny, "Access-Reject"}} {
		r := radclient(t, a, "jo", "x")
		m := pickRE.FindStringSubmatch(r.attrs["Reply-Message"])
		if r.code != "Access-Challenge" || m == nil {
			t.Fatalf("A, jo's sign-in: %s %v\n%s", r.code, r.attrs, r.out)
		}
		delivery := next(t, events, "push")
		r = radclient(t, b, "jo", "x", "State = "+r.attrs["State"])
		if r.code != "Access-Challenge" || !strings.Contains(r.attrs["Reply-Message"], "pick "+m[1]) {
			t.Fatalf("B, Enter before the answer: %s %v\n%s", r.code, r.attrs, r.out)
		}
		number := m[1]
		if tt.decision != pushkind.Approve {
			number = ""
		}
		if code, body := jo.send(nodes[1], jo.answer(delivery, number, tt.decision)); code != 200 {
			t.Fatalf("the phone's answer through B: %d %s", code, body)
		}
		if got := radclient(t, a, "jo", "x", "State = "+r.attrs["State"]); got.code != tt.want {
			t.Fatalf("A, Enter after the %s: %s, want %s\n%s", tt.decision, got.code, tt.want, got.out)
		}
	}
}

var pickRE = regexp.MustCompile(`pick (\d\d)\.`)
