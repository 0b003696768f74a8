// Package failover runs three keyfleetd on one PostgreSQL and kills
// them with SIGKILL under load.
package failover

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/internal/pgtest"
)

var (
	keyfleetd string
	cluster   *pgtest.Cluster
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keyfleet-bin-")
	if err != nil {
		panic(err)
	}
	keyfleetd = filepath.Join(dir, "keyfleetd")
	build := exec.Command("go", "build", "-o", keyfleetd, "../../cmd/keyfleetd")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building keyfleetd:", err)
		os.Exit(1)
	}
	code := pgtest.Main(m, &cluster)
	os.RemoveAll(dir)
	os.Exit(code)
}

type node struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	url  string
	logs *bytes.Buffer
	mu   sync.Mutex
	done chan struct{}
}

func (n *node) log() string { n.mu.Lock(); defer n.mu.Unlock(); return n.logs.String() }

// serve starts keyfleetd on dir and waits for its address.
func serve(t *testing.T, name, dir string) *node {
	t.Helper()
	cmd := exec.Command(keyfleetd, "serve", "--data", dir, "--listen", "127.0.0.1:0", "--log-format", "json")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, name: name, cmd: cmd, logs: &bytes.Buffer{}, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			n.mu.Lock()
			n.logs.WriteString(sc.Text() + "\n")
			n.mu.Unlock()
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "keyfleetd serving" {
				addr <- rec.Addr
			}
		}
	}()
	go func() { cmd.Wait(); close(n.done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-n.done })
	select {
	case a := <-addr:
		n.url = "https://" + a
	case <-n.done:
		t.Fatalf("%s exited\n%s", name, n.log())
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not start\n%s", name, n.log())
	}
	return n
}

func (n *node) kill() { n.cmd.Process.Kill(); <-n.done }

func (n *node) alive() bool {
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

func client(t *testing.T, dir string) *http.Client {
	pem, err := os.ReadFile(filepath.Join(dir, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
}

func call(hc *http.Client, token, method, url string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode, nil
}

// setup makes one data folder on the database, with a file sink, and two
// copies of it (same keys and token) for the other keyfleetd.
func setup(t *testing.T) (dirs []string, sinkFile, token string) {
	dsn := cluster.Database(t)
	base := t.TempDir()
	d1 := filepath.Join(base, "k1")
	if out, err := exec.Command(keyfleetd, "init", "--data", d1, "--postgres", dsn).CombinedOutput(); err != nil {
		t.Fatalf("init --postgres: %v\n%s", err, out)
	}
	sinkFile = filepath.Join(base, "events.jsonl")
	cfg, _ := os.ReadFile(filepath.Join(d1, "keyfleetd.yaml"))
	text := strings.Replace(string(cfg), "  poll_interval: 1s ", "  poll_interval: 200ms ", 1)
	text = strings.Replace(text, "  sinks: []", fmt.Sprintf("  sinks:\n    - name: archive\n      type: file\n      batch_size: 20\n      file:\n        path: %s\n  #", sinkFile), 1)
	os.WriteFile(filepath.Join(d1, "keyfleetd.yaml"), []byte(text), 0o600)
	dirs = []string{d1}
	for _, name := range []string{"k2", "k3"} {
		d := filepath.Join(base, name)
		if out, err := exec.Command("cp", "-a", d1, d).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
		dirs = append(dirs, d)
	}
	tok, _ := os.ReadFile(filepath.Join(d1, "admin.token"))
	return dirs, sinkFile, strings.TrimSpace(string(tok))
}

func leaderOf(t *testing.T, hc *http.Client, nodes []*node) *node {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range nodes {
			if !n.alive() {
				continue
			}
			resp, err := hc.Get(n.url + "/metrics")
			if err != nil {
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), "\nkeyfleet_cluster_leader 1") {
				return n
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no keyfleetd became the leader")
	return nil
}

// TestFailoverKeepsEveryAcknowledgedWrite: three keyfleetd on one
// database take user creations spread over them; one is killed with
// SIGKILL mid-load, then the leader. Every creation that was answered
// 201 is there, the audit chain verifies, and the file sink (written by
// whichever keyfleetd leads) holds every event, each once by id, in
// order.
func TestFailoverKeepsEveryAcknowledgedWrite(t *testing.T) {
	dirs, sinkFile, token := setup(t)
	hc := client(t, dirs[0])
	var nodes []*node
	for i, d := range dirs {
		nodes = append(nodes, serve(t, fmt.Sprintf("k%d", i+1), d))
	}
	leader := leaderOf(t, hc, nodes)
	var follower *node
	for _, n := range nodes {
		if n != leader {
			follower = n
			break
		}
	}
	var acked sync.Map
	var sent, okN atomic.Int64
	ctx, stop := context.WithTimeout(context.Background(), 20*time.Second)
	defer stop()
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil && i < 150; i++ {
				n := nodes[(w+i)%len(nodes)]
				if !n.alive() {
					continue
				}
				name := fmt.Sprintf("w%d-u%03d", w, i)
				sent.Add(1)
				code, err := call(hc, token, "POST", n.url+"/v1/users", api.CreateUser{Username: name, Email: name + "@example.org"}, nil)
				if err == nil && code == http.StatusCreated {
					acked.Store(name, true)
					okN.Add(1)
				}
			}
		})
	}
	for okN.Load() < 150 {
		time.Sleep(5 * time.Millisecond)
	}
	follower.kill()
	for okN.Load() < 400 {
		time.Sleep(5 * time.Millisecond)
	}
	leader.kill()
	wg.Wait()
	var survivors []*node
	for _, n := range nodes {
		if n.alive() {
			survivors = append(survivors, n)
		}
	}
	if len(survivors) != 1 {
		t.Fatalf("%d keyfleetd alive, want 1", len(survivors))
	}
	last := survivors[0]
	if l := leaderOf(t, hc, survivors); l != last {
		t.Fatal("the survivor did not take over")
	}
	t.Logf("sent %d creations, %d acknowledged", sent.Load(), okN.Load())
	acked.Range(func(k, _ any) bool {
		if code, err := call(hc, token, "GET", last.url+"/v1/users/"+k.(string), nil, nil); err != nil || code != 200 {
			t.Errorf("acknowledged user %s is missing after the kills: %d %v", k, code, err)
		}
		return true
	})
	var v api.AuditVerification
	if code, err := call(hc, token, "GET", last.url+"/v1/audit/verify", nil, &v); err != nil || code != 200 || !v.OK {
		t.Fatalf("audit verify after the kills: %d %v %+v", code, err, v)
	}
	checkSink(t, sinkFile, v.HeadSeq)
}

// checkSink waits until the file sink holds every event up to head and
// checks each appears once by id, first deliveries in order; a batch
// delivered again after a leader died (at least once) is allowed, and
// counted.
func checkSink(t *testing.T, path string, head uint64) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		seen, order, dups, epochs := readSink(t, path)
		if uint64(len(seen)) >= head || time.Now().After(deadline) {
			for seq := uint64(1); seq <= head; seq++ {
				if !seen[seq] {
					t.Fatalf("the sink never received seq %d (it has %d of %d)", seq, len(seen), head)
				}
			}
			for i := 1; i < len(order); i++ {
				if order[i] != order[i-1]+1 {
					t.Fatalf("first deliveries out of order: %d after %d", order[i], order[i-1])
				}
			}
			if epochs != 1 {
				t.Fatalf("events carry %d epochs, want 1", epochs)
			}
			t.Logf("sink: %d events, each once by id; %d delivered again after a leader died", len(seen), dups)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func readSink(t *testing.T, path string) (map[uint64]bool, []uint64, int, int) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, 0, 0
	}
	defer f.Close()
	seen, ids, eps := map[uint64]bool{}, map[string]bool{}, map[string]bool{}
	var order []uint64
	dups := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev struct {
			ID    string `json:"id"`
			Epoch string `json:"epoch"`
			Seq   uint64 `json:"seq"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("sink line %q: %v", sc.Text(), err)
		}
		if ev.ID != fmt.Sprintf("%s-%d", ev.Epoch, ev.Seq) || ev.Epoch == "" {
			t.Fatalf("event id %q does not name its epoch and seq", ev.ID)
		}
		eps[ev.Epoch] = true
		if ids[ev.ID] {
			dups++
			continue
		}
		ids[ev.ID], seen[ev.Seq] = true, true
		order = append(order, ev.Seq)
	}
	return seen, order, dups, len(eps)
}
