// Package failover runs several keyfleetd on one PostgreSQL: three of
// them under a load of user creations and TOTP verifications, killed
// with SIGKILL one after the other, and two sharing the attempt limits.
package failover

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/integration/kftest"
	"github.com/keyfleet/keyfleet/internal/pgtest"
	"github.com/keyfleet/keyfleet/plugins/totp"
)

var (
	bins    map[string]string
	cluster *pgtest.Cluster
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keyfleet-bin-")
	if err != nil {
		panic(err)
	}
	bins, err = kftest.Build(dir, "../../cmd/keyfleetd", "../../cmd/keyfleet-plugin-totp", "../../cmd/keyfleet-plugin-push")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := pgtest.Main(m, &cluster)
	os.RemoveAll(dir)
	os.Exit(code)
}

func keyfleetd() string { return bins["keyfleetd"] }

// setup makes one data folder on a new database, with a file sink, the
// TOTP plugin (as docs/plugins.md configures it) and the test's client as
// a trusted proxy, and n-1 copies of it (same keys and token) for the
// other keyfleetd.
func setup(t *testing.T, n int) (dirs []string, sinkFile, token string) {
	dsn := cluster.Database(t)
	base := t.TempDir()
	d1 := filepath.Join(base, "k1")
	kftest.Init(t, keyfleetd(), d1, "--postgres", dsn)
	sinkFile = filepath.Join(base, "events.jsonl")
	pdir, pins := kftest.PluginDir(t, bins["keyfleet-plugin-totp"])
	kftest.EditConfig(t, d1, map[string]string{
		"events.poll_interval": "200ms",
		"events.sinks":         fmt.Sprintf("[{name: archive, type: file, batch_size: 20, file: {path: %s}}]", strconv.Quote(sinkFile)),
		"plugins.dir":          strconv.Quote(pdir),
		"plugins.plugins":      pins,
		"trusted_proxies":      "[127.0.0.1/32]",
	})
	dirs = []string{d1}
	for i := 2; i <= n; i++ {
		d := filepath.Join(base, fmt.Sprintf("k%d", i))
		if out, err := exec.Command("cp", "-a", d1, d).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
		dirs = append(dirs, d)
	}
	return dirs, sinkFile, kftest.AdminToken(t, d1)
}

func serveAll(t *testing.T, dirs []string) []*kftest.Daemon {
	var nodes []*kftest.Daemon
	for i, d := range dirs {
		nodes = append(nodes, kftest.Serve(t, keyfleetd(), fmt.Sprintf("k%d", i+1), d))
	}
	return nodes
}

// A hand-over takes about two seconds (leader.go: the elector's period
// and its check); the deadline leaves room for a loaded machine, and the
// time it took is logged.
func leaderOf(t *testing.T, nodes []*kftest.Daemon) *kftest.Daemon {
	t.Helper()
	start := time.Now()
	deadline := start.Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range nodes {
			if !n.Alive() {
				continue
			}
			resp, err := n.HTTP.Get(n.URL + "/metrics")
			if err != nil {
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), "\nkeyfleet_cluster_leader 1") {
				t.Logf("%s leads (found after %v)", n.Name, time.Since(start).Round(time.Millisecond))
				return n
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no keyfleetd became the leader")
	return nil
}

// holder is a person with a TOTP app: the seed is theirs.
type holder struct {
	user, factor, seed string
}

func (h holder) code(at time.Time) string {
	c, _ := totp.Code(h.seed, "SHA1", 6, 30, at)
	return c
}

// enrol has an admin open a TOTP enrolment for a new user, who redeems
// its code from their own desk (address from, through the trusted proxy)
// and completes it with the previous step's code.
func enrol(t *testing.T, d *kftest.Daemon, admin, user, from string) holder {
	t.Helper()
	d.MustCall(201, admin, "POST", "/v1/users", api.CreateUser{Username: user}, nil)
	return addTOTP(t, d, admin, user, from)
}

// addTOTP enrols one more TOTP factor for user, as enrol does.
func addTOTP(t *testing.T, d *kftest.Daemon, admin, user, from string) holder {
	t.Helper()
	var en api.Enrolment
	d.MustCall(201, admin, "POST", "/v1/enrolments", api.CreateEnrolment{User: user, Kind: "totp"}, &en)
	var red api.RedeemedEnrolment
	if code, err := kftest.CallFrom(d.HTTP, from, "", "POST", d.URL+"/v1/enrolments/redeem", api.RedeemEnrolmentCode{Code: en.Code}, &red); err != nil || code != 201 {
		t.Fatalf("redeeming %s's enrolment code: %d %v", user, code, err)
	}
	h := holder{user: user, seed: red.Enrolment.Display["secret"]}
	var f api.Factor
	for try := 0; ; try++ { // once more if a step ended on the way
		body := api.CompleteEnrolment{Payload: json.RawMessage(fmt.Sprintf(`{"code":%q}`, h.code(time.Now().Add(-30*time.Second))))}
		code, err := d.Call(red.Token, "POST", "/v1/enrolments/"+en.ID+"/complete", body, &f)
		if err == nil && code == 201 {
			break
		}
		if try == 1 {
			t.Fatalf("completing %s's enrolment: %d %v", user, code, err)
		}
	}
	h.factor = f.ID
	return h
}

// verification is one acknowledged TOTP verification.
type verification struct {
	h    holder
	code string
}

// load is the bounded load the test spreads over the keyfleetd.
type load struct {
	nodes   []*kftest.Daemon
	admin   string
	app     string
	holders []holder

	sent, created atomic.Int64
	users         sync.Map // usernames whose creation was acknowledged
	mu            sync.Mutex
	verified      []verification // acknowledged with ok: true
	refused       int            // acknowledged with ok: false (must not happen)
}

func (l *load) node(i int) *kftest.Daemon {
	for k := range len(l.nodes) {
		if n := l.nodes[(i+k)%len(l.nodes)]; n.Alive() {
			return n
		}
	}
	return nil
}

// creations: worker w creates up to 150 users, round robin over the
// keyfleetd that are alive.
func (l *load) creations(w int, done <-chan struct{}) {
	for i := 0; i < 150; i++ {
		select {
		case <-done:
			return
		default:
		}
		name := fmt.Sprintf("w%d-u%03d", w, i)
		l.sent.Add(1)
		code, err := l.node(w+i).Call(l.admin, "POST", "/v1/users", api.CreateUser{Username: name, Email: name + "@example.org"}, nil)
		if err == nil && code == http.StatusCreated {
			l.users.Store(name, true)
			l.created.Add(1)
		}
	}
}

// verifications: worker w checks its holders' current code, then their
// next one, in one call with the application's token, spread over the
// keyfleetd and over the load (verification k waits until k*pace users
// were created), so that some straddle each kill.
func (l *load) verifications(w, workers, pace int, done <-chan struct{}) {
	k := 0
	for round := range 2 {
		for j := w; j < len(l.holders); j += workers {
			for l.created.Load() < int64(k*pace) {
				select {
				case <-done:
					return
				case <-time.After(2 * time.Millisecond):
				}
			}
			k++
			h := l.holders[j]
			code := h.code(time.Now().Add(time.Duration(round) * 30 * time.Second))
			var res api.VerifyResult
			status, err := l.node(w+j+round).Call(l.app, "POST", "/v1/verify",
				api.CheckVerify{User: h.user, FactorID: h.factor, Response: json.RawMessage(fmt.Sprintf(`{"code":%q}`, code))}, &res)
			if err != nil || status != http.StatusOK {
				continue // not acknowledged: its outcome is unknown
			}
			l.mu.Lock()
			if res.OK {
				l.verified = append(l.verified, verification{h, code})
			} else {
				l.refused++
			}
			l.mu.Unlock()
		}
	}
}

// TestFailoverKeepsEveryAcknowledgedWriteAndDeliversEachEventOnce: three
// keyfleetd on one database take user creations and TOTP verifications
// (through the real keyfleet-plugin-totp) spread over them; a follower is
// killed with SIGKILL mid-load, then the leader. Every creation answered
// 201 is there; every verification answered ok is recorded (its code is
// refused when replayed, and its audit event is there); the audit chain
// verifies; and the file sink, written by whichever keyfleetd leads,
// holds every event exactly once, in order.
func TestFailoverKeepsEveryAcknowledgedWriteAndDeliversEachEventOnce(t *testing.T) {
	dirs, sinkFile, admin := setup(t, 3)
	nodes := serveAll(t, dirs)
	first := nodes[0]
	first.MustCall(201, admin, "POST", "/v1/users", api.CreateUser{Username: "login-app", Kind: api.KindService}, nil)
	var tok api.CreatedToken
	first.MustCall(201, admin, "POST", "/v1/tokens", api.CreateToken{User: "login-app", Name: "sso"}, &tok)
	l := &load{nodes: nodes, admin: admin, app: tok.Secret}
	for i := range 18 {
		l.holders = append(l.holders, enrol(t, nodes[i%3], admin, fmt.Sprintf("holder-%02d", i), fmt.Sprintf("10.1.0.%d", i+1)))
	}
	leader := leaderOf(t, nodes)
	var follower *kftest.Daemon
	for _, n := range nodes {
		if n != leader {
			follower = n
			break
		}
	}

	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() { l.creations(w, done) })
	}
	for w := range 3 {
		wg.Go(func() { l.verifications(w, 3, 600/(2*len(l.holders)), done) })
	}
	timeout := time.AfterFunc(60*time.Second, func() { close(done) })
	defer timeout.Stop()
	waitFor(t, "150 creations", func() bool { return l.created.Load() >= 150 })
	follower.Kill()
	waitFor(t, "400 creations", func() bool { return l.created.Load() >= 400 })
	leader.Kill()
	wg.Wait()

	var last *kftest.Daemon
	for _, n := range nodes {
		if n.Alive() {
			last = n
		}
	}
	if l := leaderOf(t, nodes); l != last {
		t.Fatal("the survivor did not take over")
	}
	t.Logf("sent %d creations, %d acknowledged; %d verifications acknowledged", l.sent.Load(), l.created.Load(), len(l.verified))
	if l.refused != 0 || len(l.verified) < len(l.holders) {
		t.Fatalf("%d fresh codes were refused, %d accepted: the load did not verify", l.refused, len(l.verified))
	}
	l.users.Range(func(k, _ any) bool {
		if code, err := last.Call(admin, "GET", "/v1/users/"+k.(string), nil, nil); err != nil || code != 200 {
			t.Errorf("acknowledged user %s is missing after the kills: %d %v", k, code, err)
		}
		return true
	})
	checkVerifications(t, last, admin, tok.Secret, l.verified)
	var v api.AuditVerification
	last.MustCall(200, admin, "GET", "/v1/audit/verify?full=true", nil, &v)
	if !v.OK || v.Checked != v.HeadSeq {
		t.Fatalf("audit verify after the kills: %+v", v)
	}
	checkSink(t, sinkFile, v.HeadSeq)
}

// checkVerifications: each acknowledged verification's code is refused
// when tried again, and each factor has at least as many successful
// verification events as were acknowledged.
func checkVerifications(t *testing.T, d *kftest.Daemon, admin, app string, acked []verification) {
	t.Helper()
	perFactor := map[string]int{}
	for _, v := range acked {
		perFactor[v.h.factor]++
		var res api.VerifyResult
		d.MustCall(200, app, "POST", "/v1/verify", api.CheckVerify{User: v.h.user, FactorID: v.h.factor, Response: json.RawMessage(fmt.Sprintf(`{"code":%q}`, v.code))}, &res)
		if res.OK {
			t.Errorf("%s's code %s, accepted before the kills, was accepted again after them", v.h.user, v.code)
		}
	}
	for factor, n := range perFactor {
		var page struct{ Items []api.AuditEvent }
		d.MustCall(200, admin, "GET", "/v1/audit?action=factor.verify&target="+factor+"&limit=100", nil, &page)
		if len(page.Items) < n {
			t.Errorf("factor %s has %d verification events, %d verifications were acknowledged", factor, len(page.Items), n)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !eventually(60*time.Second, cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// eventually polls cond until it holds (true) or d has passed (false).
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// checkSink waits until the file sink holds every event up to head and
// checks it holds each exactly once, in order, in one epoch.
func checkSink(t *testing.T, path string, head uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		lines := readSink(t, path)
		if uint64(len(lines)) >= head || time.Now().After(deadline) {
			for i, l := range lines {
				if l.Seq != uint64(i+1) {
					t.Fatalf("line %d of the sink is seq %d (id %s): every event exactly once, in order, was expected (the sink holds %d lines for %d events)", i+1, l.Seq, l.ID, len(lines), head)
				}
				if l.ID != fmt.Sprintf("%s-%d", l.Epoch, l.Seq) || l.Epoch != lines[0].Epoch {
					t.Fatalf("event id %q does not name the one epoch and its seq", l.ID)
				}
			}
			if uint64(len(lines)) != head {
				t.Fatalf("the sink holds %d events, the chain %d", len(lines), head)
			}
			t.Logf("sink: %d events, each exactly once, in order", len(lines))
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type sinkLine struct {
	ID    string `json:"id"`
	Epoch string `json:"epoch"`
	Seq   uint64 `json:"seq"`
}

// readSink reads the sink's events; a line a killed keyfleetd cut short
// is not one.
func readSink(t *testing.T, path string) []sinkLine {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []sinkLine
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l sinkLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			if !strings.HasPrefix(sc.Text(), `{"schema"`) {
				t.Fatalf("sink line %q: %v", sc.Text(), err)
			}
			continue
		}
		out = append(out, l)
	}
	return out
}
