package integration

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	pushkind "github.com/keyfleet/keyfleet/plugins/push"
)

var (
	pushPluginOnce sync.Once
	pushPluginDir  string
	pushPluginSum  string
	pushPluginErr  error
)

// pushPlugin builds keyfleet-plugin-push once into a folder of its own
// and returns the folder and the binary's SHA-256.
func pushPlugin(t *testing.T) (string, string) {
	t.Helper()
	pushPluginOnce.Do(func() {
		pushPluginDir, pushPluginErr = os.MkdirTemp("", "keyfleet-push-plugin-")
		if pushPluginErr != nil {
			return
		}
		bin := filepath.Join(pushPluginDir, "keyfleet-plugin-push")
		if out, err := exec.Command("go", "build", "-o", bin, "../cmd/keyfleet-plugin-push").CombinedOutput(); err != nil {
			pushPluginErr = fmt.Errorf("building keyfleet-plugin-push: %v\n%s", err, out)
			return
		}
		b, _ := os.ReadFile(bin)
		sum := sha256.Sum256(b)
		pushPluginSum = hex.EncodeToString(sum[:])
	})
	if pushPluginErr != nil {
		t.Fatal(pushPluginErr)
	}
	return pushPluginDir, pushPluginSum
}

// pushConfig is keyfleetd.yaml's part that loads the push plugin.
func pushConfig(t *testing.T) string {
	dir, sum := pushPlugin(t)
	return fmt.Sprintf("plugins:\n  dir: %s\n  plugins:\n    - name: keyfleet-plugin-push\n      sha256: %s\npush:\n  max_per_user: 30\n", dir, sum)
}

// relayProxy stands between the companion and keyfleetd, as a network
// would: it forwards everything (TLS with keyfleetd's own certificate),
// records the companion's answers, and can hold one back.
type relayProxy struct {
	url     string
	target  atomic.Pointer[url.URL]
	mu      sync.Mutex
	answers []recordedAnswer
	hold    chan struct{} // the next answer waits for it to close
}

type recordedAnswer struct {
	header string
	body   []byte
}

func startRelayProxy(t *testing.T, d *daemon) *relayProxy {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(d.dir, "tls", "cert.pem"), filepath.Join(d.dir, "tls", "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	p := &relayProxy{url: "https://" + ln.Addr().String()}
	p.retarget(d)
	rp := &httputil.ReverseProxy{FlushInterval: -1, Transport: d.http.Transport, ErrorLog: log.New(io.Discard, "", 0),
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(p.target.Load()) }}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/push/answer" {
			body, _ := io.ReadAll(r.Body)
			p.mu.Lock()
			p.answers = append(p.answers, recordedAnswer{r.Header.Get(pushkind.DeviceHeader), body})
			hold := p.hold
			p.hold = nil
			p.mu.Unlock()
			if hold != nil {
				<-hold
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		rp.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return p
}

func (p *relayProxy) retarget(d *daemon) {
	u, _ := url.Parse(d.url)
	p.target.Store(u)
}

// holdNext holds the next answer until release is called.
func (p *relayProxy) holdNext() (release func()) {
	ch := make(chan struct{})
	p.mu.Lock()
	p.hold = ch
	p.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

func (p *relayProxy) last() recordedAnswer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.answers[len(p.answers)-1]
}

// companionProc is keyfleet-agent push listen, with its standard input
// and the lines it prints.
type companionProc struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	mu    sync.Mutex
	seen  []string
}

func listen(t *testing.T, env []string, args ...string) *companionProc {
	t.Helper()
	cmd := exec.Command(keyfleetAgent, append([]string{"push", "listen"}, args...)...)
	cmd.Env = env
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &companionProc{t: t, cmd: cmd, stdin: stdin, lines: make(chan string, 256)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("keyfleet-agent push listen printed:\n%s\nand on stderr:\n%s", strings.Join(c.printed(), "\n"), stderr.String())
		}
	})
	return c
}

func (c *companionProc) printed() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.seen...)
}

// waitFor returns the next line the companion prints that holds want.
func (c *companionProc) waitFor(want string) string {
	c.t.Helper()
	deadline := time.After(40 * time.Second)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				c.t.Fatalf("the companion exited before printing %q", want)
			}
			c.mu.Lock()
			c.seen = append(c.seen, line)
			c.mu.Unlock()
			if strings.Contains(line, want) {
				return line
			}
		case <-deadline:
			c.t.Fatalf("the companion never printed %q", want)
		}
	}
}

// say types a line, as the person at the desktop.
func (c *companionProc) say(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.stdin, s+"\n"); err != nil {
		c.t.Fatal(err)
	}
}

// choices reads the numbers the companion offers from its question.
func choices(line string) []string {
	_, after, _ := strings.Cut(line, "show? ")
	list, _, _ := strings.Cut(after, " (")
	return strings.Split(list, " / ")
}

// signIn is an application asking for a push and what it shows.
type signIn struct {
	d      *daemon
	app    string
	v      api.Verification
	prompt pushkind.Prompt
}

func beginPush(t *testing.T, d *daemon, app, user string) (*signIn, int, []byte) {
	t.Helper()
	resp, body := d.raw(app, "POST", "/v1/verify/begin", api.BeginVerify{User: user, Kinds: []string{"push"}, Application: "VPN", Address: "203.0.113.7"})
	s := &signIn{d: d, app: app}
	if resp.StatusCode == http.StatusCreated {
		json.Unmarshal(body, &s.v)
		json.Unmarshal(s.v.Factors[0].Prompt, &s.prompt)
	}
	return s, resp.StatusCode, body
}

func (s *signIn) finish(wait string) (int, api.VerifyResult) {
	var res api.VerifyResult
	code := s.d.call(s.app, "POST", "/v1/verify/finish", api.FinishVerify{ID: s.v.ID, FactorID: s.v.Factors[0].FactorID, Wait: wait}, &res)
	return code, res
}

func serviceToken(t *testing.T, d *daemon, admin string) string {
	t.Helper()
	d.call(admin, "POST", "/v1/users", api.CreateUser{Username: "vpn-gateway", Kind: api.KindService}, nil)
	var tok api.CreatedToken
	if code := d.call(admin, "POST", "/v1/tokens", api.CreateToken{User: "vpn-gateway", Name: "vpn"}, &tok); code != http.StatusCreated {
		t.Fatalf("service token: %d", code)
	}
	return tok.Secret
}

// TestTheTerminalCompanionApprovesOnlyTheRightNumberInTime: bob, a
// founding administrator with a security key, adds this desktop as a push
// companion (a fresh proof with his key), then answers sign-ins at the
// terminal while the network between his desktop and keyfleetd is
// watched by someone who records everything.
func TestTheTerminalCompanionApprovesOnlyTheRightNumberInTime(t *testing.T) {
	d, dir, _, bob := founders(t, pushConfig(t))
	adminTok := adminToken(t, dir)
	app := serviceToken(t, d, adminTok)
	ca := filepath.Join(d.dir, "tls", "cert.pem")
	keyFile := filepath.Join(t.TempDir(), "push.json")
	env := append(os.Environ(), "KEYFLEET_CONFIG="+bob.env["KEYFLEET_CONFIG"])

	// Enrolment: bob's token alone is not enough; his key proves it.
	enrol := exec.Command(keyfleetAgent, "push", "enroll", "--key", keyFile, "--name", "bob's desktop", "--timeout", "15",
		"--soft-fido2", bob.key, "--pin-file", bob.pin)
	enrol.Env = env
	out, err := enrol.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `push companion "bob's desktop" registered for bob`) {
		t.Fatalf("push enroll: %v\n%s", err, out)
	}
	if st, _ := os.Stat(keyFile); st.Mode().Perm() != 0o600 {
		t.Fatalf("the key file's mode is %o", st.Mode().Perm())
	}
	if !strings.Contains(d.get(adminTok, "/v1/audit/export"), `"proof_kind":"fido2"`) {
		t.Fatal("the push enrolment was not proved with bob's key")
	}

	proxy := startRelayProxy(t, d)
	c := listen(t, env, "--key", keyFile, "--server", proxy.url, "--ca", ca)
	c.waitFor("Listening for sign-ins of bob")

	t.Run("the right number is verified", func(t *testing.T) {
		s, code, body := beginPush(t, d, app, "bob")
		if code != http.StatusCreated || len(s.prompt.Number) != 2 {
			t.Fatalf("begin: %d %s", code, body)
		}
		if line := c.waitFor("Sign-in request of bob to VPN from 203.0.113.7"); line == "" {
			t.Fatal()
		}
		q := c.waitFor("Which number does the sign-in screen show?")
		if got := choices(q); len(got) != 3 || !contains(got, s.prompt.Number) {
			t.Fatalf("choices %v, the screen shows %s", got, s.prompt.Number)
		}
		c.say(s.prompt.Number)
		c.waitFor("Approved: the sign-in goes ahead.")
		if code, res := s.finish(""); code != http.StatusOK || !res.OK {
			t.Fatalf("finish: %d %+v", code, res)
		}
	})
	approved := proxy.last()

	t.Run("a replayed answer is refused", func(t *testing.T) {
		s, _, _ := beginPush(t, d, app, "bob")
		c.waitFor("Which number does the sign-in screen show?")
		// The eavesdropper sends the recorded answer again, as it was.
		resp, body := replay(t, d, approved)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "used already") {
			t.Fatalf("the replayed answer: %d %s", resp.StatusCode, body)
		}
		if code, res := s.finish("0s"); code != http.StatusAccepted || !res.Pending {
			t.Fatalf("the new push after the replay: %d %+v", code, res)
		}
		c.say("d") // bob denies the one he did not start
		c.waitFor("Refused: the user denied the sign-in.")
		if _, res := s.finish(""); res.OK {
			t.Fatal("a denied push was verified")
		}
	})

	t.Run("a wrong number is refused", func(t *testing.T) {
		s, _, _ := beginPush(t, d, app, "bob")
		q := c.waitFor("Which number does the sign-in screen show?")
		c.say(other(choices(q), s.prompt.Number))
		c.waitFor("Refused: the user picked the wrong number.")
		if code, res := s.finish(""); code != http.StatusOK || res.OK {
			t.Fatalf("finish: %d %+v", code, res)
		}
	})

	t.Run("an answer that arrives after the deadline is refused", func(t *testing.T) {
		s, _, _ := beginPush(t, d, app, "bob")
		c.waitFor("Which number does the sign-in screen show?")
		release := proxy.holdNext() // the network holds bob's answer back
		defer release()
		c.say(s.prompt.Number)
		poll(t, "the push runs out", func() bool { _, res := s.finish("0s"); return !res.Pending })
		release()
		c.waitFor("Too late: this push no longer waits")
		if !strings.Contains(d.get(adminTok, "/v1/audit/export"), `"push.unanswered"`) {
			t.Fatal("the push that ran out is not audited")
		}
	})

	t.Run("this wasn't me locks pushes, and is audited and counted", func(t *testing.T) {
		s, _, _ := beginPush(t, d, app, "bob")
		c.waitFor("Which number does the sign-in screen show?")
		c.say("r")
		c.waitFor("Reported: the sign-in was refused")
		if _, res := s.finish(""); res.OK {
			t.Fatal("a reported push was verified")
		}
		_, code, body := beginPush(t, d, app, "bob")
		if code != http.StatusTooManyRequests || !strings.Contains(string(body), "/problems/locked") || !strings.Contains(string(body), "reported a push") {
			t.Fatalf("a push after the report: %d %s", code, body)
		}
		var events []api.AuditEvent
		for _, line := range strings.Split(strings.TrimSpace(d.get(adminTok, "/v1/audit/export")), "\n") {
			var ev api.AuditEvent
			if json.Unmarshal([]byte(line), &ev) == nil && ev.Action == "push.reported" {
				events = append(events, ev)
			}
		}
		if len(events) != 1 || events[0].Extra["application"] != "VPN" || events[0].Extra["address"] != "203.0.113.7" {
			t.Fatalf("push.reported events: %+v", events)
		}
		if v := metricValue(t, d.get("", "/metrics"), "keyfleet_push_reported_total"); v != 1 {
			t.Fatalf("keyfleet_push_reported_total = %v", v)
		}
		var u api.User
		d.call(adminTok, "GET", "/v1/users/bob", nil, &u)
		if u.PushesLockedAt == nil {
			t.Fatal("bob's record does not say his pushes are locked")
		}
	})

	for where, text := range map[string]string{"the daemon log": d.log(), "the audit export": d.get(adminTok, "/v1/audit/export")} {
		if strings.Contains(text, approved.header) || strings.Contains(text, string(approved.body)) {
			t.Errorf("%s holds a signed answer or header", where)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func other(list []string, not string) string {
	for _, x := range list {
		if x != not {
			return x
		}
	}
	return ""
}

// replay sends a recorded answer to keyfleetd directly.
func replay(t *testing.T, d *daemon, a recordedAnswer) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", d.url+"/v1/push/answer", bytes.NewReader(a.body))
	req.Header.Set(pushkind.DeviceHeader, a.header)
	resp, err := d.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestARestartWhileAPushWaitsFailsItCleanly: pat's administrator opened a
// push enrolment for her and handed her the code; she enrols her desktop
// with it. A sign-in waits for her answer when keyfleetd restarts.
func TestARestartWhileAPushWaitsFailsItCleanly(t *testing.T) {
	dir := initData(t)
	if err := os.WriteFile(filepath.Join(dir, "keyfleetd.yaml"), []byte(pushConfig(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	d := start(t, dir)
	admin := adminToken(t, dir)
	app := serviceToken(t, d, admin)
	d.call(admin, "POST", "/v1/users", api.CreateUser{Username: "pat"}, nil)
	var en api.Enrolment
	if code := d.call(admin, "POST", "/v1/enrolments", api.CreateEnrolment{User: "pat", Kind: "push", Options: map[string]string{"timeout": "60"}}, &en); code != http.StatusCreated || en.Code == "" {
		t.Fatalf("push enrolment: %d %+v", code, en)
	}
	ca := filepath.Join(dir, "tls", "cert.pem")
	keyFile := filepath.Join(t.TempDir(), "push.json")
	env := append(os.Environ(), "KEYFLEET_CONFIG="+filepath.Join(t.TempDir(), "none.json"))
	enrol := exec.Command(keyfleetAgent, "push", "enroll", "--code", en.Code, "--server", d.url, "--ca", ca, "--key", keyFile, "--name", "pat's desktop")
	enrol.Env = env
	if out, err := enrol.CombinedOutput(); err != nil || strings.Contains(string(out), en.Code) {
		t.Fatalf("push enroll --code: %v\n%s", err, out)
	}
	proxy := startRelayProxy(t, d)
	c := listen(t, env, "--key", keyFile, "--server", proxy.url, "--ca", ca)
	c.waitFor("Listening for sign-ins of pat")

	s, code, body := beginPush(t, d, app, "pat")
	if code != http.StatusCreated {
		t.Fatalf("begin: %d %s", code, body)
	}
	c.waitFor("Which number does the sign-in screen show?")
	waiting := make(chan int, 1)
	go func() { code, _ := s.finish(""); waiting <- code }()
	time.Sleep(50 * time.Millisecond) // the application is waiting; the restart interrupts it either way
	pushEvents := func(d *daemon) int {
		return strings.Count(d.get(admin, "/v1/audit/export"), `"push.`) + strings.Count(d.get(admin, "/v1/audit/export"), `"kind":"push"`)
	}
	before := pushEvents(d)

	stop(t, d)
	if code := <-waiting; code != http.StatusServiceUnavailable && code != 0 {
		t.Fatalf("the application waiting across the restart got %d", code)
	}
	if !strings.Contains(d.log(), "keyfleetd stopped") {
		t.Fatalf("keyfleetd did not stop cleanly:\n%s", d.log())
	}
	d2 := start(t, dir)
	proxy.retarget(d2)
	s.d = d2
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("second keyfleetd:\n%s", d2.log())
		}
	})
	c.waitFor("no longer waits") // the companion reconnects and drops it
	if code, res := s.finish("0s"); code != http.StatusGone || res.OK {
		t.Fatalf("finish after the restart: %d %+v", code, res)
	}
	c.say(s.prompt.Number) // pat answers the prompt she saw anyway
	c.waitFor("Nothing waits for an answer.")
	if n := metricValue(t, d2.get("", "/metrics"), "keyfleet_push_pending"); n != 0 {
		t.Fatalf("%v pushes pending after the restart", n)
	}
	if after := pushEvents(d2); after != before {
		t.Fatalf("the lost push left %d audit events", after-before)
	}
	// A new sign-in works at once.
	s2, _, _ := beginPush(t, d2, app, "pat")
	c.waitFor("Which number does the sign-in screen show?")
	c.say(s2.prompt.Number)
	c.waitFor("Approved")
	if _, res := s2.finish(""); !res.OK {
		t.Fatal("a push after the restart was not verified")
	}
}
