package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"strings"
	"testing"
	"time"
)

// startPages is the test keyfleetd of the browser tests (env.start)
// without a browser, for tests that speak HTTP themselves.
func startPages(t *testing.T) *env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{url: fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)}
	hs := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: e.start(t, nil)}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return e
}

// visitor is one visitor of the pages: a cookie jar and the session's CSRF
// token, as the pages' scripts send them.
type visitor struct {
	t    *testing.T
	e    *env
	c    *http.Client
	csrf string
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf" content="([^"]+)">`)

func (e *env) visit(t *testing.T, path string) *visitor {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	// Redirects are answers to look at, not to follow.
	noFollow := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	p := &visitor{t: t, e: e, c: &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: noFollow}}
	resp, err := p.c.Get(e.url + path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfMeta.FindSubmatch(b)
	if m == nil {
		t.Fatalf("GET %s: %d, no CSRF token in the page", path, resp.StatusCode)
	}
	p.csrf = string(m[1])
	return p
}

// post sends body as a page's script does and returns the status and the
// answer's "error".
func (p *visitor) post(path, body string) (int, string) {
	p.t.Helper()
	status, raw := p.postRaw(path, body)
	var out struct {
		Error string `json:"error"`
	}
	json.Unmarshal(raw, &out)
	return status, out.Error
}

// postRaw is post with the whole answer.
func (p *visitor) postRaw(path, body string) (int, []byte) {
	p.t.Helper()
	req, _ := http.NewRequest("POST", p.e.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", p.csrf)
	req.Header.Set("Origin", p.e.url)
	resp, err := p.c.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// A proxy or a log in front of keyfleet reads {"code":"enr_wrong",
// "code":"enr_right"} as the first code, or {"Code":…} as no code at all,
// while a lenient decoder reads the last key, in any case. The first
// sign-in page's script request is read as strictly as the API's: each
// such body is refused, saying which key, and the code stays as it was.
func TestAScriptRequestThatCouldBeReadTwoWaysIsRefusedAndChangesNothing(t *testing.T) {
	e := startPages(t)
	alice := e.createUser(t, "alice", nil, nil)
	code := e.code(t, alice.ID)
	p := e.visit(t, "/welcome")
	before, err := e.svc.CheckEnrolmentCode(context.Background(), code)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, body, want string }{
		{"the code's key in another case", `{"Code":"` + code + `"}`, `names the key "Code", which keyfleet does not read: keys are case-sensitive (the key is "code")`},
		{"the code's key twice", `{"code":"enr_0000000000000000","code":"` + code + `"}`, `names the key "code" twice`},
		{"a second object after the first", `{"code":"` + code + `"} {"code":"x"}`, "was not understood"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, msg := p.post("/welcome/begin", tc.body)
			if status != http.StatusBadRequest || !strings.Contains(msg, tc.want) || !strings.Contains(msg, "Reload the page and try again") {
				t.Fatalf("%d %q; want 400 saying %q", status, msg, tc.want)
			}
			// Nothing was started: the session holds no registration to
			// finish, so finishing reads as having no code.
			if _, msg := p.post("/welcome/finish", `{"label":"key","credential":{}}`); !strings.Contains(msg, "That enrolment code is not valid") {
				t.Fatalf("a registration was left to finish: %q", msg)
			}
		})
	}
	after, err := e.svc.CheckEnrolmentCode(context.Background(), code)
	if err != nil || after.ID != before.ID || after.State != before.State {
		t.Fatalf("the code changed: %+v → %+v (%v)", before, after, err)
	}
	if status, msg := p.post("/welcome/begin", `{"code":"`+code+`"}`); status != http.StatusOK {
		t.Fatalf("the same code, sent once in its own case: %d %q", status, msg)
	}
}
