package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/web"
	pushkind "github.com/keyfleet/keyfleet/plugins/push"
)

const pushSignInPolicy = "version: 1\nself_service:\n  app_sign_in: [recovery_code]\n  push_sign_in: [recovery_code]\nrules: []\n"

// startPushPages is the push test keyfleetd (pushEnv.startPush) without
// a browser, with the policy given applied.
func startPushPages(t *testing.T, doc string) *pushEnv {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &pushEnv{env: &env{url: fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)}}
	hs := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: e.startPush(t)}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	e.applyPolicy(t, doc)
	return e
}

// applyPolicy makes doc the policy. A weakening (turning a sign-in
// without a key on) waits for a second person: a break-glass session,
// which needs no key, approves it here.
func (e *env) applyPolicy(t *testing.T, doc string) {
	t.Helper()
	ctx := context.Background()
	out, err := e.svc.ApplyPolicy(ctx, core.System, api.PolicyDocument{Document: doc, Comment: "push sign-in test"})
	if err != nil {
		t.Fatal(err)
	}
	if out.Approval != nil {
		second := core.Principal{UserID: "breakglass", Username: "break-glass", Roles: []string{api.RoleAdmin}, Auth: "breakglass"}
		if _, err := e.svc.Approve(ctx, second, out.Approval.ID, "the test's second person"); err != nil {
			t.Fatal(err)
		}
	}
}

// goCompanion is a push companion written in Go, as keyfleet-agent push
// is: it reads its pushes from keyfleetd's API and answers them, every
// request signed with its device key.
type goCompanion struct {
	t   *testing.T
	e   *pushEnv
	dev *pushkind.Device
}

// pushOnlyPerson makes a person whose only factor is a push companion,
// enrolled with an enrolment code as keyfleet-agent push enroll --code
// does, and returns it with the recovery codes the enrolment gave them.
func (e *pushEnv) pushOnlyPerson(t *testing.T, name string, roles []string) (core.User, *goCompanion, []string) {
	t.Helper()
	ctx := context.Background()
	u := e.createUser(t, name, nil, roles)
	en, _, err := e.svc.CreateEnrolment(ctx, core.System, api.CreateEnrolment{User: u.ID, Kind: pushkind.Kind})
	if err != nil {
		t.Fatal(err)
	}
	var params map[string]string
	json.Unmarshal(en.Params, &params)
	dev, _ := pushkind.NewDevice(nil)
	r, _ := dev.Enrol(en.ID, params["nonce"], "Pixel of "+name, "file")
	b, _ := json.Marshal(r)
	holder := core.Principal{UserID: u.ID, Roles: []string{api.RoleUser}, Auth: "enrolment_code"}
	f, err := e.svc.CompleteEnrolment(ctx, holder, en.ID, api.CompleteEnrolment{Label: "phone", Payload: b})
	if err != nil || len(f.RecoveryCodes) == 0 {
		t.Fatalf("enrolling the companion: %v (%d recovery codes)", err, len(f.RecoveryCodes))
	}
	dev.FactorID = f.ID
	return u, &goCompanion{t: t, e: e, dev: dev}, f.RecoveryCodes
}

func (c *goCompanion) do(method, path string, body []byte) *http.Response {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.e.url+path, bytes.NewReader(body))
	auth, _ := c.dev.Authorization(method, req.URL.Path, c.e.daemonNow())
	req.Header.Set(pushkind.DeviceHeader, auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp
}

// pending is the pushes waiting on the companion, after waiting up to
// wait for one.
func (c *goCompanion) pending(wait time.Duration) []pushkind.Delivery {
	c.t.Helper()
	resp := c.do("GET", "/v1/push/pending?wait="+wait.String(), nil)
	defer resp.Body.Close()
	var out struct{ Items []pushkind.Delivery }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		c.t.Fatalf("pending: %d %v", resp.StatusCode, err)
	}
	return out.Items
}

// answer signs a decision on d (number: the one picked) and sends it.
func (c *goCompanion) answer(d pushkind.Delivery, number, decision string) {
	c.t.Helper()
	a, _ := c.dev.Answer(d, number, decision, c.e.daemonNow())
	b, _ := json.Marshal(a)
	resp := c.do("POST", "/v1/push/answer", b)
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(resp.Body)
		c.t.Fatalf("answer: %d %s", resp.StatusCode, msg)
	}
}

// pushChoices is the begin answer: the number the page shows for each
// companion.
type pushChoices struct {
	Choices []struct{ Device, Number string }
	Error   string
}

func (p *visitor) beginPush(user, code string) (int, pushChoices) {
	p.t.Helper()
	status, raw := p.postRaw("/signin/push/begin", `{"username":`+quote(user)+`,"recovery_code":`+quote(code)+`}`)
	var out pushChoices
	json.Unmarshal(raw, &out)
	return status, out
}

func (p *visitor) finishPush(code string) (int, string) {
	p.t.Helper()
	return p.post("/signin/push/finish", `{"recovery_code":`+quote(code)+`}`)
}

// finishPushDecided asks as the page's script does, again after each
// "still waiting" (202), until the sign-in is decided or 10 s pass: an
// answer the phone sent is decided a moment later, which on a loaded
// machine can be after one short wait.
func (p *visitor) finishPushDecided(code string) (int, string) {
	p.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		status, msg := p.finishPush(code)
		if status != http.StatusAccepted || time.Now().After(deadline) {
			return status, msg
		}
	}
}

func (p *visitor) get(path string) (int, string) {
	p.t.Helper()
	resp, err := p.c.Get(p.e.url + path)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

// deliveryFor is the push of verification-less sign-in that shows
// application and number among its choices: the one the person looks at.
func deliveryFor(t *testing.T, ds []pushkind.Delivery, number string) pushkind.Delivery {
	t.Helper()
	for _, d := range ds {
		for _, c := range d.Choices {
			if c == number && d.Application == core.PushSignInApplication {
				return d
			}
		}
	}
	t.Fatalf("no push offers %s: %+v", number, ds)
	return pushkind.Delivery{}
}

// Pat has no security key, only a companion on her phone. The policy
// lets such people in to their own pages with a push and a recovery
// code. She types her name and a recovery code, the page shows a number,
// she picks it on the phone and is on her page, once; the recovery code
// is used up. Her session reaches neither the dashboard (she is helpdesk
// staff) nor anything that needs a proof.
func TestAPersonWithOnlyAPushCompanionSignsInToTheirOwnPage(t *testing.T) {
	e := startPushPages(t, pushSignInPolicy)
	_, phone, codes := e.pushOnlyPerson(t, "pat", []string{api.RoleHelpdesk})
	p := e.visit(t, "/signin/push")
	if _, page := p.get("/signin/push"); !strings.Contains(page, "Send a push") {
		t.Fatal("the push sign-in page offers no form")
	}
	status, begun := p.beginPush("pat", codes[0])
	if status != 200 || len(begun.Choices) != 1 || begun.Choices[0].Number == "" || begun.Choices[0].Device != "Pixel of pat" {
		t.Fatalf("begin: %d %+v", status, begun)
	}
	d := deliveryFor(t, phone.pending(10*time.Second), begun.Choices[0].Number)
	if d.Address != "127.0.0.1" || d.User != "pat" {
		t.Fatalf("the push does not say who signs in from where: %+v", d)
	}
	phone.answer(d, begun.Choices[0].Number, pushkind.Approve)
	if status, msg := p.finishPush(codes[0]); status != 200 {
		t.Fatalf("finish: %d %q", status, msg)
	}
	if status, page := p.get("/me"); status != 200 || !strings.Contains(page, "signed in with a push") || !strings.Contains(page, "9 recovery codes") {
		t.Fatalf("/me after a push sign-in: %d", status)
	}
	if status, page := p.get("/admin"); status != http.StatusForbidden || !strings.Contains(page, "takes security keys only") {
		t.Fatalf("the dashboard let a push session in: %d", status)
	}
	if status, msg := p.post("/proof/begin", `{"action":"recovery_codes.regenerate","subject":"`+d.User+`","request":{}}`); status < 400 {
		t.Fatalf("a push session began a proof: %d %q", status, msg)
	}
	if recs, _ := e.svc.ListAudit(context.Background(), core.System, core.AuditFilter{Action: "user.push_sign_in"}, 10); len(recs) != 1 ||
		!strings.Contains(string(recs[0].Body), `"recovery_codes_left":9`) {
		t.Fatalf("the push sign-in is not in the audit trail: %+v", recs)
	}
	// The recovery code is used up: the same one does not work again.
	q := e.visit(t, "/signin/push")
	if status, begun := q.beginPush("pat", codes[0]); status != http.StatusUnauthorized || len(phone.pending(0)) != 0 {
		t.Fatalf("a used recovery code sent a push: %d %+v", status, begun)
	}
}

// Mallory knows pat's username and has one of her recovery codes. She
// starts a push sign-in as pat at the moment pat starts her own. Pat's
// phone shows two pushes; pat picks the number her own screen shows.
// Mallory's browser is not signed in by that approval: it waits for its
// own push, cannot name pat's instead, and is refused once pat reports it.
func TestAPushApprovedForAnotherSignInDoesNotSignThisBrowserIn(t *testing.T) {
	old := web.SetPushWait(200 * time.Millisecond)
	t.Cleanup(func() { web.SetPushWait(old) })
	e := startPushPages(t, pushSignInPolicy)
	_, phone, codes := e.pushOnlyPerson(t, "pat", nil)
	mallory, pat := e.visit(t, "/signin/push"), e.visit(t, "/signin/push")
	_, hers := mallory.beginPush("pat", codes[1])
	_, own := pat.beginPush("pat", codes[0])
	if len(hers.Choices) != 1 || len(own.Choices) != 1 {
		t.Fatalf("begins: %+v %+v", hers, own)
	}
	ds := phone.pending(10 * time.Second)
	for deadline := time.Now().Add(10 * time.Second); len(ds) < 2 && time.Now().Before(deadline); {
		ds = phone.pending(time.Second)
	}
	ownPush := deliveryFor(t, ds, own.Choices[0].Number)
	phone.answer(ownPush, own.Choices[0].Number, pushkind.Approve)
	if status, msg := pat.finishPushDecided(codes[0]); status != 200 {
		t.Fatalf("pat's own sign-in: %d %q", status, msg)
	}
	if status, msg := mallory.finishPush(codes[1]); status != http.StatusAccepted {
		t.Fatalf("mallory's browser, after pat approved her own push: %d %q", status, msg)
	}
	body := fmt.Sprintf(`{"recovery_code":%s,"verification_id":%s}`, quote(codes[1]), quote(ownPush.VerificationID))
	if status, msg := mallory.post("/signin/push/finish", body); status != http.StatusBadRequest || !strings.Contains(msg, "verification_id") {
		t.Fatalf("naming pat's verification: %d %q", status, msg)
	}
	var mallorysPush pushkind.Delivery
	for _, d := range phone.pending(0) {
		if d.VerificationID != ownPush.VerificationID {
			mallorysPush = d
		}
	}
	phone.answer(mallorysPush, "", pushkind.Report)
	if status, msg := mallory.finishPushDecided(codes[1]); status != http.StatusUnauthorized || !strings.Contains(msg, "was not accepted") {
		t.Fatalf("mallory's sign-in after pat reported it: %d %q", status, msg)
	}
	if status, _ := mallory.get("/me"); status != http.StatusSeeOther {
		t.Fatalf("mallory's browser reached pat's page: %d", status)
	}
}

// A push sign-in that the policy does not allow, with a wrong recovery
// code or for nobody is refused in the same words, and no push goes out:
// knowing a username is not enough to send its person pushes.
func TestARefusedPushSignInSendsNoPush(t *testing.T) {
	for _, tc := range []struct{ name, policy, user, code string }{
		{"push sign-in off (app sign-in on)", "version: 1\nself_service:\n  app_sign_in: [recovery_code]\nrules: []\n", "pat", ""},
		{"a wrong recovery code", pushSignInPolicy, "pat", "00000-00000"},
		{"a user nobody has", pushSignInPolicy, "nobody", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startPushPages(t, tc.policy)
			_, phone, codes := e.pushOnlyPerson(t, "pat", nil)
			if tc.code == "" {
				tc.code = codes[0]
			}
			p := e.visit(t, "/signin/push")
			status, out := p.beginPush(tc.user, tc.code)
			if status != http.StatusUnauthorized || !strings.Contains(out.Error, "That sign-in was not accepted") {
				t.Fatalf("%d %+v", status, out)
			}
			if ds := phone.pending(300 * time.Millisecond); len(ds) != 0 {
				t.Fatalf("a push went out: %+v", ds)
			}
			if status, msg := p.finishPush(tc.code); status != http.StatusConflict {
				t.Fatalf("a refused begin left something to finish: %d %q", status, msg)
			}
			recs, _ := e.svc.ListAudit(context.Background(), core.System, core.AuditFilter{Action: "user.push_sign_in_refused"}, 10)
			if (tc.user == "pat") != (len(recs) == 1) {
				t.Fatalf("refusals audited: %d", len(recs))
			}
		})
	}
}
