package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// TestTheDaemonSaysWhichBuildIsRunning: the version keyfleetd prints is
// the one /healthz gives when asked for JSON and the one
// keyfleet_build_info carries, so a dashboard and a probe agree with the
// binary.
func TestTheDaemonSaysWhichBuildIsRunning(t *testing.T) {
	out, err := exec.Command(keyfleetd, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(out))
	if len(fields) < 2 || fields[0] != "keyfleetd" {
		t.Fatalf("keyfleetd version printed %q", out)
	}
	version := fields[1]
	d := start(t, initData(t))

	if body := d.probe(t, "/healthz", ""); body != "ok\n" {
		t.Fatalf("plain /healthz: %q", body)
	}
	for _, how := range []struct{ path, accept string }{{"/healthz?format=json", ""}, {"/healthz", "application/json"}} {
		body := d.probe(t, how.path, how.accept)
		var raw map[string]any
		if err := json.Unmarshal([]byte(body), &raw); err != nil {
			t.Fatalf("%s (Accept %q): not JSON: %q", how.path, how.accept, body)
		}
		if raw["status"] != "ok" || raw["version"] != version || raw["go_version"] != runtime.Version() {
			t.Fatalf("%s (Accept %q): %s, want version %s", how.path, how.accept, body, version)
		}
	}

	metrics := d.probe(t, "/metrics", "")
	re := regexp.MustCompile(`(?m)^keyfleet_build_info\{([^}]*)\} 1$`)
	m := re.FindAllStringSubmatch(metrics, -1)
	if len(m) != 1 || !strings.Contains(m[0][1], `version="`+version+`"`) || !strings.Contains(m[0][1], `goversion="`+runtime.Version()+`"`) {
		t.Fatalf("keyfleet_build_info: %v\n%s", m, grepLines(metrics, "build_info"))
	}
}

// probe GETs an unauthenticated path, accepting accept, and wants 200.
func (d *daemon) probe(t *testing.T, path, accept string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", d.url+path, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := d.http.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
