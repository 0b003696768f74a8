// Package kftest runs the real keyfleet binaries for end-to-end tests:
// it builds them, starts keyfleetd on a loopback port with a data folder
// of the test's own, waits until it serves (by its log, never a fixed
// sleep), talks to it over HTTPS, and stops it (SIGTERM, or SIGKILL for
// crash tests) when asked or when the test ends.
package kftest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build builds each command package (a path like ../../cmd/keyfleetd)
// into dir and returns the binaries by command name.
func Build(dir string, pkgs ...string) (map[string]string, error) {
	bins := map[string]string{}
	for _, pkg := range pkgs {
		name := filepath.Base(pkg)
		out := filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("building %s: %w", pkg, err)
		}
		bins[name] = out
	}
	return bins, nil
}

// Daemon is a running keyfleetd.
type Daemon struct {
	Name string
	Dir  string
	URL  string
	HTTP *http.Client

	t    testing.TB
	cmd  *exec.Cmd
	addr chan string
	mu   sync.Mutex
	logs bytes.Buffer
	done chan struct{}
	err  error
}

// Serve starts keyfleetd serve on dir on a free loopback port and waits
// until it logs that it serves. extra are more flags.
func Serve(t testing.TB, bin, name, dir string, extra ...string) *Daemon {
	t.Helper()
	d := Launch(t, bin, name, dir, extra...)
	if err := d.WaitServing(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	return d
}

// Launch starts keyfleetd serve without waiting (for a start that is
// expected to fail: see Wait and Log).
func Launch(t testing.TB, bin, name, dir string, extra ...string) *Daemon {
	t.Helper()
	args := append([]string{"serve", "--data", dir, "--listen", "127.0.0.1:0", "--log-format", "json"}, extra...)
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &Daemon{Name: name, Dir: dir, t: t, cmd: cmd, done: make(chan struct{})}
	d.addr = make(chan string, 1)
	logged := make(chan struct{})
	go func() { defer close(logged); d.readLogs(stderr) }()
	// Wait closes the pipe: only once every line is read (the last ones
	// say how keyfleetd stopped).
	go func() { <-logged; d.err = cmd.Wait(); close(d.done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-d.done })
	return d
}

// WaitServing waits for the "keyfleetd serving" line and sets URL and
// HTTP.
func (d *Daemon) WaitServing(within time.Duration) error {
	select {
	case a := <-d.addr:
		d.URL = "https://" + a
	case <-d.done:
		return fmt.Errorf("%s exited: %v\n%s", d.Name, d.err, d.Log())
	case <-time.After(within):
		return fmt.Errorf("%s did not start within %s\n%s", d.Name, within, d.Log())
	}
	hc, err := Client(d.Dir)
	d.HTTP = hc
	return err
}

func (d *Daemon) readLogs(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		d.mu.Lock()
		d.logs.Write(sc.Bytes())
		d.logs.WriteByte('\n')
		d.mu.Unlock()
		var rec struct{ Msg, Addr string }
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "keyfleetd serving" {
			select {
			case d.addr <- rec.Addr:
			default:
			}
		}
	}
}

// Log is everything the daemon logged so far.
func (d *Daemon) Log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.logs.String()
}

// WaitLog waits until the log holds s.
func (d *Daemon) WaitLog(s string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for !strings.Contains(d.Log(), s) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s never logged %q\n%s", d.Name, s, d.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// Wait waits for the process to exit and returns its exit error.
func (d *Daemon) Wait() error { <-d.done; return d.err }

// Alive reports whether the process still runs.
func (d *Daemon) Alive() bool {
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// Kill ends the process with SIGKILL and waits for it.
func (d *Daemon) Kill() { d.cmd.Process.Kill(); <-d.done }

// Stop ends the process with SIGTERM (a graceful shutdown) and waits.
func (d *Daemon) Stop() error {
	d.cmd.Process.Signal(syscall.SIGTERM)
	return d.Wait()
}

// Call sends a JSON request with a bearer token (none if "") and decodes
// a JSON answer into out.
func (d *Daemon) Call(token, method, path string, body, out any) (int, error) {
	return Call(d.HTTP, token, method, d.URL+path, body, out)
}

// MustCall is Call that fails the test on a transport error or a status
// other than want.
func (d *Daemon) MustCall(want int, token, method, path string, body, out any) {
	d.t.Helper()
	var raw json.RawMessage
	code, err := d.Call(token, method, path, body, &raw)
	if err != nil || code != want {
		d.t.Fatalf("%s %s on %s: %d %v, want %d\n%s", method, path, d.Name, code, err, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			d.t.Fatalf("%s %s: decoding %s: %v", method, path, raw, err)
		}
	}
}

// Call is Daemon.Call on any URL.
func Call(hc *http.Client, token, method, url string, body, out any) (int, error) {
	return CallFrom(hc, "", token, method, url, body, out)
}

// CallFrom is Call from the client address from, as a trusted proxy
// names it (X-Forwarded-For); none when from is "".
func CallFrom(hc *http.Client, from, token, method, url string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if from != "" {
		req.Header.Set("X-Forwarded-For", from)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && len(b) > 0 {
		if raw, ok := out.(*json.RawMessage); ok {
			*raw = b
		} else if err := json.Unmarshal(b, out); err != nil && resp.StatusCode < 300 {
			return resp.StatusCode, fmt.Errorf("decoding %s: %w", b, err)
		}
	}
	return resp.StatusCode, nil
}

// Client trusts the self-signed certificate keyfleetd init made in dir.
func Client(dir string) (*http.Client, error) {
	pem, err := os.ReadFile(filepath.Join(dir, "tls", "cert.pem"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}, MaxIdleConnsPerHost: 32}}, nil
}

// Init runs keyfleetd init --data dir with more flags.
func Init(t testing.TB, bin, dir string, flags ...string) {
	t.Helper()
	out, err := exec.Command(bin, append([]string{"init", "--data", dir}, flags...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("keyfleetd init: %v\n%s", err, out)
	}
}

// Run runs bin with args and returns its combined output; a failure
// fails the test.
func Run(t testing.TB, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// AdminToken is the command-line token init wrote to dir.
func AdminToken(t testing.TB, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// EditConfig sets settings in dir's keyfleetd.yaml, as init wrote it
// (every setting on a line of its own, two spaces per level): each key is
// a dotted path ("store.postgres.dsn") whose line is replaced by the key
// and the YAML value. A setting init did not write fails the test.
func EditConfig(t testing.TB, dir string, set map[string]string) {
	t.Helper()
	path := filepath.Join(dir, "keyfleetd.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for key, value := range set {
		i := settingLine(lines, strings.Split(key, "."))
		if i < 0 {
			t.Fatalf("keyfleetd.yaml has no setting %s", key)
		}
		indent := lines[i][:len(lines[i])-len(strings.TrimLeft(lines[i], " "))]
		parts := strings.Split(key, ".")
		lines[i] = indent + parts[len(parts)-1] + ": " + value
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
}

// settingLine finds the line of the setting at path, or -1.
func settingLine(lines, path []string) int {
	from, to := 0, len(lines)
	for depth, part := range path {
		indent := strings.Repeat("  ", depth)
		found := -1
		for i := from; i < to; i++ {
			if strings.HasPrefix(lines[i], indent+part+":") {
				found = i
				break
			}
		}
		if found < 0 {
			return -1
		}
		from, to = found+1, len(lines)
		for j := found + 1; j < len(lines); j++ {
			l := lines[j]
			if strings.TrimSpace(l) != "" && !strings.HasPrefix(strings.TrimSpace(l), "#") && !strings.HasPrefix(l, indent+"  ") {
				to = j
				break
			}
		}
		if depth == len(path)-1 {
			return found
		}
	}
	return -1
}

// PluginDir copies the TOTP plugin binary into a folder of its own and
// returns the folder and the plugins setting that pins it, as
// docs/plugins.md configures it.
func PluginDir(t testing.TB, bin string) (dir, setting string) {
	t.Helper()
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, filepath.Base(bin)), b, 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return dir, fmt.Sprintf("[{name: %s, sha256: %s}]", filepath.Base(bin), hex.EncodeToString(sum[:]))
}
