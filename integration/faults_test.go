package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/internal/cli"
)

// Faults are states, not crashes: a full disk, a damaged store, a store
// behind its audit checkpoint and a wrong sealing key, each against a
// running keyfleetd (docs/operations.md says what an operator sees).

// tmpfs mounts a tmpfs of size MiB and unmounts it after; it needs root
// and the test is skipped, saying so, without it.
func tmpfs(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: putting the data folder on a small tmpfs to fill needs root (run the tests as root to exercise a full disk)")
	}
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount -t tmpfs: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

func initAt(t *testing.T, dir string, config ...string) {
	t.Helper()
	if out, err := exec.Command(keyfleetd, "init", "--data", dir).CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	if len(config) == 0 {
		return
	}
	path := filepath.Join(dir, "keyfleetd.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i+1 < len(config); i += 2 {
		if !strings.Contains(s, config[i]) {
			t.Fatalf("the default config has no %q", config[i])
		}
		s = strings.Replace(s, config[i], config[i+1], 1)
	}
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// smallStore is the config of a store on a small disk: 2 MiB memtables,
// a 12 MiB reserve, free space measured every 20 ms.
var smallStore = []string{"  reserve_mb: 0 ", "  reserve_mb: 12 ", "  memtable_mb: 0 ", "  memtable_mb: 2 ", "  space_check: 1s ", "  space_check: 20ms "}

func freeOn(t *testing.T, dir string) uint64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Bavail * uint64(st.Bsize)
}

// fillTo grows a filler file on dir's file system until leave bytes are
// free, and returns its path.
func fillTo(t *testing.T, dir string, leave uint64) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	if free := freeOn(t, dir); free > leave {
		if err := unix.Fallocate(int(f.Fd()), 0, st.Size(), int64(free-leave)); err != nil {
			t.Fatalf("filling the disk: %v", err)
		}
	}
	return path
}

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// raw sends a request and returns the whole response, body read.
func (d *daemon) raw(token, method, path string, body any) (*http.Response, []byte) {
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
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func (d *daemon) readyz() (int, string) {
	resp, b := d.raw("", "GET", "/readyz", nil)
	return resp.StatusCode, string(b)
}

// writeUntilRefused creates users from 8 writers until keyfleetd answers
// 503 storage-full; it checks that refusal and returns the acknowledged.
func writeUntilRefused(t *testing.T, d *daemon, token string) []string {
	var (
		mu      sync.Mutex
		acked   []string
		refused atomic.Bool
		wg      sync.WaitGroup
	)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !refused.Load(); i++ {
				name := fmt.Sprintf("f%d-%d", w, i)
				resp, body := d.raw(token, "POST", "/v1/users", api.CreateUser{Username: name, DisplayName: strings.Repeat("n", 120)})
				switch resp.StatusCode {
				case http.StatusCreated:
					mu.Lock()
					acked = append(acked, name)
					mu.Unlock()
				case http.StatusServiceUnavailable:
					var p api.Problem
					json.Unmarshal(body, &p)
					if p.Type != "/problems/storage-full" || resp.Header.Get("Retry-After") == "" || !strings.Contains(p.Detail, "free space") {
						t.Errorf("a write on a full disk answered %s, Retry-After %q: %s", p.Type, resp.Header.Get("Retry-After"), body)
					}
					refused.Store(true)
				default:
					t.Errorf("a write answered %d: %s", resp.StatusCode, body)
					refused.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	return acked
}

func TestAFullDiskAnswers503KeepsReadsAndResumesWithNothingAcknowledgedLost(t *testing.T) {
	mnt := tmpfs(t, 64)
	dir := filepath.Join(mnt, "data")
	initAt(t, dir, smallStore...)
	d := start(t, dir)
	token := adminToken(t, dir)
	fill := fillTo(t, mnt, 15<<20)

	acked := writeUntilRefused(t, d, token)
	if len(acked) == 0 || t.Failed() {
		t.Fatalf("%d writes acknowledged before the refusal", len(acked))
	}
	// Hold the disk full (a compaction may give space back) and look.
	poll(t, "the disk settles", settled(t, mnt))
	fillTo(t, mnt, 6<<20)
	poll(t, "/readyz turns", func() bool { code, _ := d.readyz(); return code == 503 })
	if code, body := d.readyz(); !strings.Contains(body, "storage full") {
		t.Errorf("/readyz answered %d %q", code, body)
	}
	if _, m := d.raw("", "GET", "/metrics", nil); !bytes.Contains(m, []byte("keyfleet_store_storage_full 1")) {
		t.Error("the storage_full metric is not 1")
	}
	if !strings.Contains(d.log(), `"level":"ERROR","msg":"STORAGE FULL`) {
		t.Errorf("no high-severity log line says the storage is full:\n%s", d.log())
	}
	if code := d.call(token, "GET", "/v1/users/"+acked[len(acked)-1], nil, nil); code != 200 {
		t.Errorf("a read on a full disk answered %d", code)
	}
	var v api.AuditVerification
	if d.call(token, "GET", "/v1/audit/verify", nil, &v); !v.OK {
		t.Errorf("audit verify on a full disk: %+v", v)
	}

	os.Remove(fill)
	back := time.Now()
	poll(t, "writes resume", func() bool { code, _ := d.readyz(); return code == 200 })
	t.Logf("%d writes acknowledged before the refusal; writes resumed %s after space returned", len(acked), time.Since(back).Round(time.Millisecond))
	if code := d.call(token, "POST", "/v1/users", api.CreateUser{Username: "after-the-disk-filled"}, nil); code != 201 {
		t.Fatalf("a write after space returned answered %d", code)
	}
	d.cmd.Process.Signal(syscall.SIGKILL)
	d.wait()
	d2 := start(t, dir)
	for _, name := range append(acked, "after-the-disk-filled") {
		if code := d2.call(token, "GET", "/v1/users/"+name, nil, nil); code != 200 {
			t.Fatalf("acknowledged user %s is gone (%d)", name, code)
		}
	}
	if d2.call(token, "GET", "/v1/audit/verify", nil, &v); !v.OK || v.Checkpoint == nil || !v.Checkpoint.OK {
		t.Fatalf("after the full disk and a SIGKILL, audit verify says %+v %+v", v, v.Checkpoint)
	}
}

// settled reports true once dir's free space stayed the same for 300 ms.
func settled(t *testing.T, dir string) func() bool {
	last, same := freeOn(t, dir), 0
	return func() bool {
		if free := freeOn(t, dir); free == last {
			same++
		} else {
			last, same = free, 0
		}
		return same >= 30
	}
}

func TestStartingOnAFullDiskServesReadsSaysWhyAndResumes(t *testing.T) {
	mnt := tmpfs(t, 64)
	dir := filepath.Join(mnt, "data")
	initAt(t, dir, smallStore...)
	d := start(t, dir)
	token := adminToken(t, dir)
	for i := range 50 {
		if code := d.call(token, "POST", "/v1/users", api.CreateUser{Username: fmt.Sprintf("s%d", i)}, nil); code != 201 {
			t.Fatalf("create answered %d", code)
		}
	}
	d.cmd.Process.Signal(syscall.SIGKILL)
	d.wait()
	fill := fillTo(t, mnt, 4<<20)

	d2 := launch(t, dir)
	if code, body := d2.readyz(); code != 503 || !strings.Contains(body, "storage full") {
		t.Fatalf("/readyz of a keyfleetd started on a full disk answered %d %q", code, body)
	}
	if !strings.Contains(d2.log(), "READ-ONLY") {
		t.Errorf("the log does not say the store is read-only:\n%s", d2.log())
	}
	if code := d2.call(token, "GET", "/v1/users/s49", nil, nil); code != 200 {
		t.Fatalf("a read answered %d", code)
	}
	resp, body := d2.raw(token, "POST", "/v1/users", api.CreateUser{Username: "refused"})
	if resp.StatusCode != 503 || !bytes.Contains(body, []byte("/problems/storage-full")) {
		t.Fatalf("a write answered %d %s", resp.StatusCode, body)
	}
	os.Remove(fill)
	back := time.Now()
	poll(t, "writes resume", func() bool { code, _ := d2.readyz(); return code == 200 })
	t.Logf("the read-only store reopened for writing %s after space returned", time.Since(back).Round(time.Millisecond))
	if code := d2.call(token, "POST", "/v1/users", api.CreateUser{Username: "after"}, nil); code != 201 {
		t.Fatalf("a write after space returned answered %d", code)
	}
}

// serveRefused runs keyfleetd serve, expects it to refuse to start, and
// returns what it said.
func serveRefused(t *testing.T, dir string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, keyfleetd, "serve", "--data", dir, "--listen", "127.0.0.1:0").CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("keyfleetd served (%v):\n%s", err, out)
	}
	return string(out)
}

func keyfleetdRun(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(keyfleetd, args...).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// loadUsers creates n users from 8 writers.
func loadUsers(t *testing.T, d *daemon, token, prefix string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				if code := d.call(token, "POST", "/v1/users", api.CreateUser{Username: fmt.Sprintf("%s%d", prefix, i)}, nil); code != 201 {
					t.Errorf("create answered %d", code)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// newestLog is the store's newest write-ahead log holding entries, and
// how many bytes of it are used.
func newestLog(t *testing.T, store string) (string, int) {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(store, "*.mem"))
	sort.Sort(sort.Reverse(sort.StringSlice(logs)))
	for _, p := range logs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		n := len(b)
		for n > 0 && b[n-1] == 0 {
			n--
		}
		if n > 4096 {
			return p, n
		}
	}
	t.Fatal("no write-ahead log holds entries")
	return "", 0
}

func flipBytes(t *testing.T, path string, at, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	f.ReadAt(b, int64(at))
	for i := range b {
		b[i] ^= 0x5a
	}
	if _, err := f.WriteAt(b, int64(at)); err != nil {
		t.Fatal(err)
	}
}

func lossEvents(t *testing.T, d *daemon, token string) []api.AuditEvent {
	t.Helper()
	var page api.Page[api.AuditEvent]
	d.call(token, "GET", "/v1/audit?action=store.loss_accepted", nil, &page)
	return page.Items
}

func TestBytesFlippedInTheLogAreRefusedNamingTheFileAndTheAcceptedLossIsAudited(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	initAt(t, dir, "    every: 1000 ", "    every: 50 ")
	d := start(t, dir)
	token := adminToken(t, dir)
	loadUsers(t, d, token, "w", 1200)
	var head api.AuditHead
	d.call(token, "GET", "/v1/audit/head", nil, &head)
	poll(t, "a checkpoint near the head", func() bool {
		b, _ := os.ReadFile(dir + ".checkpoint")
		var c struct{ Seq uint64 }
		json.Unmarshal(b, &c)
		return c.Seq+60 >= head.Seq
	})
	d.cmd.Process.Signal(syscall.SIGKILL)
	d.wait()

	log, used := newestLog(t, filepath.Join(dir, "store"))
	flipBytes(t, log, used/2, 32)
	out := serveRefused(t, dir)
	for _, want := range []string{log, "last intact audit event", "recover --accept-loss", "backup"} {
		if !strings.Contains(out, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, out)
		}
	}
	if out, code := keyfleetdRun(t, "recover", "--data", dir); code != 1 || !strings.Contains(out, log) {
		t.Fatalf("recover without --accept-loss exited %d:\n%s", code, out)
	}
	out, code := keyfleetdRun(t, "recover", "--data", dir, "--accept-loss", "--reason", "test: flipped bytes")
	if code != 0 || !strings.Contains(out, "recorded as audit event") || !strings.Contains(out, "newest audit checkpoint") {
		t.Fatalf("recover --accept-loss exited %d:\n%s", code, out)
	}

	d2 := start(t, dir)
	evs := lossEvents(t, d2, token)
	if len(evs) != 1 {
		t.Fatalf("%d store.loss_accepted events", len(evs))
	}
	x := evs[0].Extra
	if !strings.Contains(x["damaged"], filepath.Base(log)) || x["missing_events"] == "" || x["checkpoint_problem"] == "" || x["reason"] != "test: flipped bytes" {
		t.Errorf("the loss event does not say what was lost: %v", x)
	}
	var v api.AuditVerification
	if d2.call(token, "GET", "/v1/audit/verify", nil, &v); !v.OK || v.Checkpoint == nil || !v.Checkpoint.OK {
		t.Errorf("after the accepted loss audit verify says %+v %+v", v, v.Checkpoint)
	}
	t.Logf("head %d before the damage; %s events lost, recorded at seq %d", head.Seq, x["missing_events"], evs[0].Seq)
}

func TestADamagedTableIsRefusedNamingItNotACrash(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	initAt(t, dir, "  memtable_mb: 0 ", "  memtable_mb: 1 ")
	d := start(t, dir)
	token := adminToken(t, dir)
	loadUsers(t, d, token, "t", 1200)
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.wait(); err != nil {
		t.Fatal(err)
	}
	tables, _ := filepath.Glob(filepath.Join(dir, "store", "*.sst"))
	if len(tables) < 2 {
		t.Fatalf("%d tables after a clean stop", len(tables))
	}
	newest := tables[len(tables)-1] // the users made last, not the admin's token
	st, _ := os.Stat(newest)
	if err := os.Truncate(newest, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	out := serveRefused(t, dir)
	if !strings.Contains(out, newest) || !strings.Contains(out, "table damaged") || strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
		t.Fatalf("a truncated table was not refused cleanly:\n%s", out)
	}
	if out, code := keyfleetdRun(t, "recover", "--data", dir, "--accept-loss"); code != 0 {
		t.Fatalf("recover --accept-loss exited %d:\n%s", code, out)
	}
	d2 := start(t, dir)
	if evs := lossEvents(t, d2, token); len(evs) != 1 || !strings.Contains(evs[0].Extra["damaged"], filepath.Base(newest)) {
		t.Fatalf("the loss event: %+v", evs)
	}
}

func TestAStoreCopiedBackUnderANewerCheckpointIsDetected(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	initAt(t, dir)
	token := adminToken(t, dir)
	d := start(t, dir)
	loadUsers(t, d, token, "a", 20)
	stop(t, d)
	backup := filepath.Join(t.TempDir(), "store.old")
	if out, err := exec.Command("cp", "-a", filepath.Join(dir, "store"), backup).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	d = start(t, dir)
	loadUsers(t, d, token, "b", 20)
	exportFile := filepath.Join(t.TempDir(), "audit.jsonl")
	_, export := d.raw(token, "GET", "/v1/audit/export", nil)
	os.WriteFile(exportFile, export, 0o600)
	stop(t, d) // the last checkpoint is signed at shutdown
	os.RemoveAll(filepath.Join(dir, "store"))
	if err := os.Rename(backup, filepath.Join(dir, "store")); err != nil {
		t.Fatal(err)
	}

	out := serveRefused(t, dir)
	if !strings.Contains(out, "events are missing") || !strings.Contains(out, "recover --accept-loss") {
		t.Fatalf("a store put back under a newer checkpoint was not refused clearly:\n%s", out)
	}
	k := newCLI(t)
	if code, out, errb := k.run("audit", "verify", "--checkpoint", dir+".checkpoint", "--export", exportFile); code != 0 {
		t.Fatalf("the export taken before the rollback does not verify offline (%d):\n%s%s", code, out, errb)
	}

	// Served anyway when so configured: audit verify says what is wrong.
	cfg := filepath.Join(dir, "keyfleetd.yaml")
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(b), "    on_mismatch: refuse ", "    on_mismatch: warn ", 1)), 0o600)
	d = start(t, dir)
	var v api.AuditVerification
	if d.call(token, "GET", "/v1/audit/verify", nil, &v); v.OK || v.Checkpoint == nil || v.Checkpoint.OK || !strings.Contains(v.Checkpoint.Problem, "missing") {
		t.Fatalf("audit verify of a rolled-back store: %+v %+v", v, v.Checkpoint)
	}
	if !strings.Contains(d.log(), "AUDIT CHECKPOINT MISMATCH") {
		t.Error("no loud log line says the store is behind its checkpoint")
	}
	_, export = d.raw(token, "GET", "/v1/audit/export", nil)
	os.WriteFile(exportFile+".old", export, 0o600)
	if code, _, errb := k.run("audit", "verify", "--checkpoint", dir+".checkpoint", "--export", exportFile+".old"); code != cli.ExitAuditBroken || !strings.Contains(errb, "missing") {
		t.Fatalf("offline verify of the rolled-back log exited %d: %s", code, errb)
	}
}

func stop(t *testing.T, d *daemon) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.wait(); err != nil {
		t.Fatalf("keyfleetd exited with %v\n%s", err, d.log())
	}
}

func TestAWrongSealingKeyIsRefusedAtStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	initAt(t, dir)
	key := make([]byte, 32)
	rand.Read(key)
	if err := os.WriteFile(filepath.Join(dir, "keys", "seal.key"), []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := serveRefused(t, dir)
	if !strings.Contains(out, "sealing key") || !strings.Contains(out, "KEYFLEET_SEAL_KEY") {
		t.Fatalf("a wrong sealing key was not refused clearly:\n%s", out)
	}
}

// TestAWrongSealingKeyIsRefusedAtStartOnPostgreSQL: the database keeps
// the sealing key's check value (written by init --postgres), so a
// keyfleetd given another sealing key, such as a second node set up with
// a key of its own, refuses to start instead of answering verifications
// with 500 and sealing new secrets under a key the others cannot open. A
// database made before check values gets one at its first start.
func TestAWrongSealingKeyIsRefusedAtStartOnPostgreSQL(t *testing.T) {
	dsn := pgDatabase(t)
	dir := filepath.Join(t.TempDir(), "data")
	if out, err := exec.Command(keyfleetd, "init", "--data", dir, "--postgres", dsn).CombinedOutput(); err != nil {
		t.Fatalf("init --postgres: %v\n%s", err, out)
	}
	if pgValue(t, dsn, "SELECT v FROM meta WHERE k = 'seal_check'") == "" {
		t.Fatal("init --postgres recorded no check value of the sealing key in the database")
	}
	right, err := os.ReadFile(filepath.Join(dir, "keys", "seal.key"))
	if err != nil {
		t.Fatal(err)
	}
	wrong := func() {
		key := make([]byte, 32)
		rand.Read(key)
		if err := os.WriteFile(filepath.Join(dir, "keys", "seal.key"), []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	wrong()
	out := serveRefused(t, dir)
	if !strings.Contains(out, "sealing key") || !strings.Contains(out, "KEYFLEET_SEAL_KEY") || !strings.Contains(out, "PostgreSQL") {
		t.Fatalf("a wrong sealing key on PostgreSQL was not refused clearly:\n%s", out)
	}

	// A database from before check values: the first start records one.
	pgExec(t, dsn, "DELETE FROM meta WHERE k = 'seal_check'")
	os.WriteFile(filepath.Join(dir, "keys", "seal.key"), right, 0o600)
	stop(t, start(t, dir))
	if pgValue(t, dsn, "SELECT v FROM meta WHERE k = 'seal_check'") == "" {
		t.Fatal("the first start recorded no check value of the sealing key")
	}
	wrong()
	if out := serveRefused(t, dir); !strings.Contains(out, "sealing key is not the one") {
		t.Fatalf("after the first start recorded it, a wrong sealing key was not refused:\n%s", out)
	}
}

// witness keeps the newest checkpoint it is given, as a transparency
// witness would, and refuses one that goes back.
type witness struct {
	mu   sync.Mutex
	last []byte
	seq  uint64
}

func (w *witness) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if r.Method == http.MethodGet {
		if w.last == nil {
			http.NotFound(rw, r)
			return
		}
		rw.Write(w.last)
		return
	}
	b, _ := io.ReadAll(r.Body)
	var c struct{ Seq uint64 }
	if json.Unmarshal(b, &c) != nil || c.Seq < w.seq {
		http.Error(rw, "refused: it goes back", http.StatusConflict)
		return
	}
	w.last, w.seq = b, c.Seq
}

func TestARollbackThatBringsItsOldCheckpointFileIsCaughtByTheWitness(t *testing.T) {
	w := httptest.NewServer(&witness{})
	defer w.Close()
	dir := filepath.Join(t.TempDir(), "data")
	initAt(t, dir, "    witness_url: \"\" ", "    witness_url: "+w.URL+" ")
	token := adminToken(t, dir)
	d := start(t, dir)
	loadUsers(t, d, token, "a", 20)
	stop(t, d)
	// The attacker's copy: the store and the checkpoint file of that time.
	old := t.TempDir()
	for _, p := range []string{filepath.Join(dir, "store"), dir + ".checkpoint"} {
		if out, err := exec.Command("cp", "-a", p, old).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, out)
		}
	}
	d = start(t, dir)
	loadUsers(t, d, token, "b", 20) // say, a factor revoked: what the rollback would undo
	stop(t, d)
	os.RemoveAll(filepath.Join(dir, "store"))
	for from, to := range map[string]string{"store": filepath.Join(dir, "store"), "data.checkpoint": dir + ".checkpoint"} {
		if out, err := exec.Command("cp", "-a", filepath.Join(old, from), to).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, out)
		}
	}
	out := serveRefused(t, dir)
	if !strings.Contains(out, "events are missing") || !strings.Contains(out, w.URL) {
		t.Fatalf("the rollback was not caught by the witness's newer checkpoint:\n%s", out)
	}
}
