package daemon_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon"
)

// edgeDaemon is a real keyfleetd (HTTPS, Badger on disk, the pages on)
// whose test client on 127.0.0.1 is a trusted proxy.
type edgeDaemon struct {
	t     *testing.T
	dir   string
	url   string
	hc    *http.Client
	admin string
}

func newEdgeDaemon(t *testing.T) *edgeDaemon {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := daemon.Init(context.Background(), daemon.InitOptions{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	cfg := daemon.Config{DataDir: dir}
	cfg.TrustedProxies = []daemon.Prefix{mustPrefix(t, "127.0.0.1")}
	url, hc, stop, err := serve(dir, cfg, daemon.Options{LogOut: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	tok, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	return &edgeDaemon{t: t, dir: dir, url: url, hc: hc, admin: strings.TrimSpace(string(tok))}
}

func mustPrefix(t *testing.T, s string) daemon.Prefix {
	t.Helper()
	var c daemon.Config
	if err := c.LoadEnv(func(k string) string {
		if k == "KEYFLEET_TRUSTED_PROXIES" {
			return s
		}
		return ""
	}); err != nil {
		t.Fatal(err)
	}
	return c.TrustedProxies[0]
}

// send makes a request with headers (name, value pairs) and returns the
// status, body and answer headers.
func (d *edgeDaemon) send(method, path, body string, headers ...string) (int, string, http.Header) {
	d.t.Helper()
	req, _ := http.NewRequest(method, d.url+path, strings.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf" content="([^"]+)">`)

func TestTheAPIAndThePagesShareOneLimitPerClientBehindATrustedProxy(t *testing.T) {
	d := newEdgeDaemon(t)
	const client = "198.51.100.23"
	status, page, hdr := d.send("GET", "/welcome", "", "X-Forwarded-For", client)
	m := csrfMeta.FindStringSubmatch(page)
	cookie := strings.Split(hdr.Get("Set-Cookie"), ";")[0]
	if status != http.StatusOK || m == nil || cookie == "" {
		t.Fatalf("GET /welcome: %d, csrf %v, cookie %q", status, m, cookie)
	}
	pass := `{"code":"kfp-aaaaa-bbbbb-ccccc-ddddd"}`
	for i := 1; i <= 5; i++ {
		if status, body, _ := d.send("POST", "/v1/passes/redeem", pass, "X-Forwarded-For", client); status != http.StatusUnauthorized {
			t.Fatalf("API attempt %d: %d %s", i, status, body)
		}
		status, body, _ := d.send("POST", "/welcome/begin", pass, "X-Forwarded-For", client,
			"Cookie", cookie, "X-CSRF-Token", m[1], "Content-Type", "application/json")
		if status == http.StatusTooManyRequests || status < 400 {
			t.Fatalf("page attempt %d: %d %s", i, status, body)
		}
	}
	status, body, hdr := d.send("POST", "/welcome/begin", pass, "X-Forwarded-For", client,
		"Cookie", cookie, "X-CSRF-Token", m[1], "Content-Type", "application/json")
	if status != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
		t.Fatalf("the 11th attempt, on the page after five on each: %d %s", status, body)
	}
	if status, body, _ := d.send("POST", "/v1/passes/redeem", pass, "X-Forwarded-For", client); status != http.StatusTooManyRequests {
		t.Fatalf("the API after the page refused: %d %s", status, body)
	}
	if status, body, _ := d.send("POST", "/v1/passes/redeem", pass, "X-Forwarded-For", "198.51.100.24"); status != http.StatusUnauthorized {
		t.Fatalf("another client behind the proxy was refused: %d %s", status, body)
	}
	status, body, _ = d.send("GET", "/v1/audit?action=pass.redeem_refused", "", "Authorization", "Bearer "+d.admin)
	var pg api.Page[api.AuditEvent]
	if err := json.Unmarshal([]byte(body), &pg); err != nil || status != http.StatusOK {
		t.Fatalf("reading the audit: %d %s", status, body)
	}
	from := map[string]int{}
	for _, ev := range pg.Items {
		from[ev.Source]++
	}
	if from[client] != 10 || from["198.51.100.24"] != 1 || len(from) != 2 {
		t.Fatalf("refusals audited from %v, want 10 from %s (five by the API, five by the page) and 1 from the other", from, client)
	}
}
