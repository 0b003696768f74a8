package integration

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
	"syscall"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/internal/cli"
)

var (
	keyfleetd     string // path of the built daemon
	keyfleetAgent string // path of the built workstation agent
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keyfleet-bin-")
	if err != nil {
		panic(err)
	}
	keyfleetd, keyfleetAgent = filepath.Join(dir, "keyfleetd"), filepath.Join(dir, "keyfleet-agent")
	for bin, pkg := range map[string]string{keyfleetd: "../cmd/keyfleetd", keyfleetAgent: "../cmd/keyfleet-agent"} {
		build := exec.Command("go", "build", "-o", bin, pkg)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			// keyfleet-agent needs cgo with Debian's libpcsclite-dev and
			// libfido2-dev (scripts/deps.sh installs them).
			fmt.Fprintf(os.Stderr, "building %s: %v\n", pkg, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	stopPG()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemon is a running keyfleetd.
type daemon struct {
	t    *testing.T
	dir  string
	cmd  *exec.Cmd
	url  string
	http *http.Client
	logs *bytes.Buffer
	mu   *sync.Mutex
	done chan struct{} // closed when the process exits
	err  error         // its exit error, once done is closed
}

// wait waits for the process to exit and returns its exit error.
func (d *daemon) wait() error {
	<-d.done
	return d.err
}

func initData(t *testing.T, flags ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	out, err := exec.Command(keyfleetd, append([]string{"init", "--data", dir}, flags...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	return dir
}

// start runs keyfleetd serve on a free loopback port and waits until
// /readyz answers.
func start(t *testing.T, dir string) *daemon {
	t.Helper()
	d := launch(t, dir)
	d.waitReady()
	return d
}

// launch runs keyfleetd serve on a free loopback port and waits until it
// serves, ready or not.
func launch(t *testing.T, dir string) *daemon {
	t.Helper()
	cmd := exec.Command(keyfleetd, "serve", "--data", dir, "--listen", "127.0.0.1:0", "--log-format", "json")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, dir: dir, cmd: cmd, logs: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan struct{})}
	addr := make(chan string, 1)
	logged := make(chan struct{})
	go func() { defer close(logged); d.readLogs(stderr, addr) }()
	// Wait closes the pipe: only once every line is read (the last ones
	// say how keyfleetd stopped).
	go func() { <-logged; d.err = cmd.Wait(); close(d.done) }()
	t.Cleanup(func() { cmd.Process.Kill(); d.wait() })
	select {
	case a := <-addr:
		d.url = "https://" + a
	case <-d.done:
		t.Fatalf("keyfleetd exited: %v\n%s", d.err, d.log())
	case <-time.After(20 * time.Second):
		t.Fatalf("keyfleetd did not report its address\n%s", d.log())
	}
	d.http = clientFor(t, dir)
	return d
}

func (d *daemon) readLogs(r io.Reader, addr chan<- string) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		d.mu.Lock()
		d.logs.WriteString(line + "\n")
		d.mu.Unlock()
		var rec struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "keyfleetd serving" {
			addr <- rec.Addr
		}
	}
}

func (d *daemon) log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.logs.String()
}

func clientFor(t *testing.T, dir string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(dir, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 32}}
}

func (d *daemon) waitReady() {
	d.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := d.http.Get(d.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.t.Fatalf("keyfleetd never became ready\n%s", d.log())
}

func adminToken(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// call sends a JSON request with a token and decodes the answer into out.
func (d *daemon) call(token, method, path string, body, out any) int {
	d.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, d.url+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := d.http.Do(req)
	if err != nil {
		d.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// kf runs the keyfleet CLI in-process with its own config file.
type kf struct {
	t   *testing.T
	env map[string]string
}

func newCLI(t *testing.T) *kf {
	return &kf{t: t, env: map[string]string{"KEYFLEET_CONFIG": filepath.Join(t.TempDir(), "config.json")}}
}

func (k *kf) run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), args, strings.NewReader(""), &out, &errb, func(n string) string { return k.env[n] })
	return code, out.String(), errb.String()
}

func (k *kf) must(args ...string) string {
	k.t.Helper()
	code, out, errb := k.run(args...)
	if code != 0 {
		k.t.Fatalf("keyfleet %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errb)
	}
	return out
}

func (k *kf) login(d *daemon, tokenFile string) {
	k.t.Helper()
	k.must("login", "--server", d.url, "--token-file", tokenFile, "--ca", filepath.Join(d.dir, "tls", "cert.pem"))
}

func TestTheCLIDrivesTheDaemonThroughTheTwoPersonRule(t *testing.T) {
	d, _, root, bob := founders(t, "")
	root.must("users", "create", "alice", "--display-name", "Alice Example", "--email", "alice@example.org", "--group", "engineering")
	// A security officer's role waits for a second person, who grants it
	// with their own key.
	var grant api.Accepted
	json.Unmarshal([]byte(root.must("users", "create", "olga", "--role", "security_officer", "-o", "json")), &grant)
	if grant.Approval.State != api.ApprovalPending || grant.User == nil || grant.User.Roles[0] != "user" {
		t.Fatalf("creating a security officer answered %+v", grant)
	}
	bob.must("approvals", "approve", grant.Approval.ID, "--reason", "new officer, ticket 12")

	var users []api.User
	json.Unmarshal([]byte(root.must("users", "list", "-o", "json")), &users)
	if len(users) != 4 {
		t.Fatalf("users list -o json gave %d users", len(users))
	}
	var acc api.Accepted
	json.Unmarshal([]byte(root.must("users", "disable", "alice", "--reason", "left the company", "-o", "json")), &acc)
	if acc.Approval.State != api.ApprovalPending {
		t.Fatalf("disable answered %+v", acc)
	}
	if code, _, _ := root.run("approvals", "approve", acc.Approval.ID, "-m", "myself"); code != cli.ExitConflict {
		t.Fatalf("the requester approving their own request exited %d, want %d", code, cli.ExitConflict)
	}
	var alice api.User
	json.Unmarshal([]byte(root.must("users", "show", "alice", "-o", "json")), &alice)
	if alice.Status != api.UserActive {
		t.Fatal("alice was disabled before a second approver acted")
	}
	bob.must("approvals", "approve", acc.Approval.ID, "--reason", "confirmed with HR")
	json.Unmarshal([]byte(root.must("users", "show", "alice", "-o", "json")), &alice)
	if alice.Status != api.UserDisabled {
		t.Fatalf("alice is %s after approval", alice.Status)
	}
	if code, _, errb := bob.run("approvals", "approve", acc.Approval.ID, "-m", "again"); code != cli.ExitConflict || !strings.Contains(errb, "approved") {
		t.Fatalf("a double approval exited %d: %s", code, errb)
	}
	if code, _, _ := root.run("users", "show", "nobody"); code != cli.ExitNotFound {
		t.Fatalf("showing an unknown user exited %d", code)
	}
	out := root.must("audit", "list", "-o", "json")
	for _, action := range []string{"approval.request", "approval.approve", "user.disable", "approval.refused", "proof_factor_id"} {
		if !strings.Contains(out, action) {
			t.Errorf("the audit log has no %s", action)
		}
	}
	if out := root.must("audit", "verify"); !strings.Contains(out, "intact") {
		t.Fatalf("audit verify said %q", out)
	}
	if strings.Contains(d.log(), holderPIN) {
		t.Fatal("the daemon logged a PIN")
	}
}

// TestAcknowledgedWritesSurviveSIGKILL: sixteen writers create users as
// fast as keyfleetd takes them, and keyfleetd is killed with SIGKILL in
// the middle of it, once thousands were acknowledged (3,000, or whatever
// 15 seconds gave). After a restart every acknowledged user is there, and
// the audit chain is intact from its first record and ends between the
// acknowledged writes and those plus the ones in flight at the kill
// (committed, but their answer never arrived).
func TestAcknowledgedWritesSurviveSIGKILL(t *testing.T) {
	dir := initData(t)
	d := start(t, dir)
	token := adminToken(t, dir)
	var before api.AuditHead
	d.call(token, "GET", "/v1/audit/head", nil, &before)
	const workers, target = 16, 3000
	acked := writeUntilKilled(t, d, token, workers, target, 15*time.Second)
	t.Logf("%d writes acknowledged before SIGKILL", len(acked))
	if len(acked) < 1000 {
		t.Fatalf("only %d writes were acknowledged in 15 seconds: too few to show anything", len(acked))
	}
	d2 := start(t, dir)
	checkUsersPresent(t, d2, token, acked)
	var v api.AuditVerification
	d2.call(token, "GET", "/v1/audit/verify?full=true", nil, &v)
	var cps struct{ Items []api.AuditEvent } // the checkpoints' own events, one per 1,000
	d2.call(token, "GET", fmt.Sprintf("/v1/audit?action=audit.checkpoint&after=%d&limit=100", before.Seq), nil, &cps)
	low := before.Seq + uint64(len(acked)+len(cps.Items))
	if high := low + workers; !v.OK || v.Checked != v.HeadSeq || v.HeadSeq < low || v.HeadSeq > high {
		t.Fatalf("after SIGKILL the audit chain is %+v, want intact, checked in full, with %d to %d events", v, low, high)
	}
}

// writeUntilKilled runs workers creating users until target were
// acknowledged or within passed, kills keyfleetd with SIGKILL while they
// still write, and returns the acknowledged usernames.
func writeUntilKilled(t *testing.T, d *daemon, token string, workers, target int, within time.Duration) []string {
	t.Helper()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		acked []string
	)
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				name := fmt.Sprintf("k%d-%d", w, i)
				b, _ := json.Marshal(api.CreateUser{Username: name})
				req, _ := http.NewRequest("POST", d.url+"/v1/users", bytes.NewReader(b))
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := d.http.Do(req)
				if err != nil {
					return // killed: this write's outcome is unknown
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					return
				}
				mu.Lock()
				acked = append(acked, name)
				mu.Unlock()
			}
		})
	}
	deadline := time.Now().Add(within)
	for count() < target && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	d.cmd.Process.Signal(syscall.SIGKILL)
	d.wait()
	wg.Wait()
	return acked
}

// checkUsersPresent reads every user in names back, eight at a time.
func checkUsersPresent(t *testing.T, d *daemon, token string, names []string) {
	t.Helper()
	var wg sync.WaitGroup
	missing := make(chan string, len(names))
	next := make(chan string)
	for range 8 {
		wg.Go(func() {
			for name := range next {
				if status := d.call(token, "GET", "/v1/users/"+name, nil, nil); status != http.StatusOK {
					missing <- fmt.Sprintf("%s (%d)", name, status)
				}
			}
		})
	}
	for _, n := range names {
		next <- n
	}
	close(next)
	wg.Wait()
	close(missing)
	for m := range missing {
		t.Errorf("acknowledged user %s is gone after SIGKILL", m)
	}
}

func TestSIGTERMFinishesInFlightRequestsAndClosesTheStore(t *testing.T) {
	dir := initData(t)
	d := start(t, dir)
	token := adminToken(t, dir)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var acked []string
	stop := make(chan struct{})
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("t%d-%d", w, i)
				b, _ := json.Marshal(api.CreateUser{Username: name})
				req, _ := http.NewRequest("POST", d.url+"/v1/users", bytes.NewReader(b))
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := d.http.Do(req)
				if err != nil {
					return // the daemon stopped accepting: fine
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated {
					mu.Lock()
					acked = append(acked, name)
					mu.Unlock()
				}
			}
		}()
	}
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 40 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	err := d.wait()
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("keyfleetd exited with %v after SIGTERM\n%s", err, d.log())
	}
	if !strings.Contains(d.log(), "keyfleetd stopped") {
		t.Fatalf("no clean stop in the log\n%s", d.log())
	}
	d2 := start(t, dir)
	var v api.AuditVerification
	d2.call(token, "GET", "/v1/audit/verify", nil, &v)
	if !v.OK {
		t.Fatalf("audit chain after SIGTERM: %+v", v)
	}
	for _, name := range acked {
		if status := d2.call(token, "GET", "/v1/users/"+name, nil, nil); status != http.StatusOK {
			t.Fatalf("acknowledged user %s missing after a graceful stop", name)
		}
	}
}

func TestInitRefusesToOverwriteAndTakesKeysFromTheEnvironment(t *testing.T) {
	dir := initData(t)
	out, err := exec.Command(keyfleetd, "init", "--data", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "never overwrites") {
		t.Fatalf("a second init gave %v: %s", err, out)
	}
	for _, f := range []string{"keys/store.key", "keys/seal.key", "admin.token", "tls/key.pem"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v mode %v, want 0600", f, err, st.Mode().Perm())
		}
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("data folder mode %v, want 0700", st.Mode().Perm())
	}
	envDir := filepath.Join(t.TempDir(), "env")
	cmd := exec.Command(keyfleetd, "init", "--data", envDir)
	cmd.Env = append(os.Environ(), "KEYFLEET_STORE_KEY="+strings.Repeat("ab", 32), "KEYFLEET_SEAL_KEY="+strings.Repeat("cd", 32))
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "from KEYFLEET_STORE_KEY") {
		t.Fatalf("init with env keys: %v %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(envDir, "keys", "store.key")); err == nil {
		t.Fatal("init wrote a key file although the key came from the environment")
	}
	serve := exec.Command(keyfleetd, "serve", "--data", envDir, "--listen", "127.0.0.1:0")
	if out, err := serve.CombinedOutput(); err == nil || !strings.Contains(string(out), "KEYFLEET_STORE_KEY is not set") {
		t.Fatalf("serve without the env key: %v %s", err, out)
	}
}

func TestUsersImportFromCSVThroughTheCLI(t *testing.T) {
	dir := initData(t)
	d := start(t, dir)
	k := newCLI(t)
	k.login(d, filepath.Join(dir, "admin.token"))
	csvFile := filepath.Join(t.TempDir(), "staff.csv")
	os.WriteFile(csvFile, []byte("username,display_name,email,groups,roles\nada,Ada L,ada@example.org,eng;oncall,user\nbea,,,sales,\n"), 0o600)
	if out := k.must("users", "import", csvFile, "--dry-run"); !strings.Contains(out, "2 created") {
		t.Fatalf("dry run: %s", out)
	}
	if code, _, _ := k.run("users", "show", "ada"); code != cli.ExitNotFound {
		t.Fatal("the dry run created ada")
	}
	k.must("users", "import", csvFile)
	var ada api.User
	json.Unmarshal([]byte(k.must("users", "show", "ada", "-o", "json")), &ada)
	if ada.DisplayName != "Ada L" || len(ada.Groups) != 2 {
		t.Fatalf("imported ada: %+v", ada)
	}
	if out := k.must("report", "adoption", "-o", "csv"); !strings.Contains(out, "SCOPE,USERS,ADOPTION") || !strings.Contains(out, "group eng,") {
		t.Fatalf("report adoption -o csv: %s", out)
	}
	if out := k.must("report", "vulnerable"); !strings.Contains(out, "USERNAME") {
		t.Fatalf("report vulnerable: %s", out)
	}
	bad := filepath.Join(t.TempDir(), "bad.csv")
	os.WriteFile(bad, []byte("username,email\ncyd,cyd@example.org\nNot OK,\n"), 0o600)
	code, _, errb := k.run("users", "import", bad)
	if code != cli.ExitError || !strings.Contains(errb, "row 2") {
		t.Fatalf("a bad file: exit %d %s", code, errb)
	}
	if code, _, _ := k.run("users", "show", "cyd"); code != cli.ExitNotFound {
		t.Fatal("a file with a bad row created its good rows")
	}
}

func TestPIVEnrolmentsAskForWhatThePolicyRequires(t *testing.T) {
	d, dir, k, _ := founders(t, "")
	doc := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(doc, []byte("version: 1\nrules:\n  - name: everyone\n    match: {everyone: true}\n    require:\n      piv:\n        pin_policies: [always]\n        touch_policies: [always]\n"), 0o600)
	k.must("policy", "apply", doc, "--yes")
	k.must("users", "create", "pia")
	var en api.Enrolment
	if code := d.call(adminToken(t, dir), "POST", "/v1/enrolments", api.CreateEnrolment{User: "pia", Kind: "piv"}, &en); code != 201 {
		t.Fatalf("PIV enrolment answered %d", code)
	}
	var params map[string]string
	json.Unmarshal(en.Params, &params)
	if params["pin_policy"] != "always" || params["touch_policy"] != "always" {
		t.Fatalf("the enrolment asks for %v, not what the policy requires", params)
	}
}
