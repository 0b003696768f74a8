package stores

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/integration/kftest"
)

// sinkLine is one event as the file sink wrote it.
type sinkLine struct {
	ID    string `json:"id"`
	Epoch string `json:"epoch"`
	Seq   uint64 `json:"seq"`
}

func readSink(t *testing.T, path string) []sinkLine {
	t.Helper()
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
			t.Fatalf("sink line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

// waitSink waits until the sink file holds an event of epoch with seq at
// least seq.
func waitSink(t *testing.T, path, epoch string, seq uint64) []sinkLine {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		lines := readSink(t, path)
		for _, l := range lines {
			if l.Seq >= seq && (epoch == "" || l.Epoch == epoch) {
				return lines
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sink never delivered seq %d of epoch %q (it holds %d lines)", seq, epoch, len(lines))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func head(t *testing.T, d *kftest.Daemon, token string) api.AuditHead {
	t.Helper()
	var h api.AuditHead
	d.MustCall(200, token, "GET", "/v1/audit/head", nil, &h)
	return h
}

// TestAnOnlineBackupRestoredStartsANewEpochAndTheSinkStopsInsteadOfReusingSeqs:
// keyfleetd on Badger serves writes while keyfleetd backup takes a copy
// through its backup socket. More writes follow, then the store is
// restored from the copy: keyfleetd refuses to serve a store behind its
// audit checkpoint until the operator accepts the loss; then it serves
// the restored state (everything acknowledged before the backup, nothing
// after it) with an intact chain in a new store epoch, and the file sink
// stops with an operator message rather than deliver new events under
// sequence numbers it already used, until it is replayed; every event it
// ever delivered has an id of its own.
func TestAnOnlineBackupRestoredStartsANewEpochAndTheSinkStopsInsteadOfReusingSeqs(t *testing.T) {
	dir := newData(t)
	sink := filepath.Join(t.TempDir(), "events.jsonl")
	kftest.EditConfig(t, dir, map[string]string{"events.poll_interval": "100ms",
		"events.sinks": fmt.Sprintf("[{name: archive, type: file, file: {path: %s}}]", strconv.Quote(sink))})
	d := kftest.Serve(t, keyfleetd(), "before", dir)
	admin := kftest.AdminToken(t, dir)
	for i := range 5 {
		d.MustCall(201, admin, "POST", "/v1/users", api.CreateUser{Username: fmt.Sprintf("early-%d", i)}, nil)
	}
	lines := waitSink(t, sink, "", head(t, d, admin).Seq)
	oldEpoch := lines[0].Epoch

	// Writers keep going while the backup is taken.
	var before sync.Map // acknowledged before the backup started
	var backupStarted atomic.Bool
	var written atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("during-%d-%d", w, i)
				started := !backupStarted.Load()
				if code, err := d.Call(admin, "POST", "/v1/users", api.CreateUser{Username: name}, nil); err == nil && code == 201 {
					written.Add(1)
					if started {
						before.Store(name, true)
					}
				}
			}
		})
	}
	for written.Load() < 30 { // the writers are going
		time.Sleep(5 * time.Millisecond)
	}
	backupFile := filepath.Join(t.TempDir(), "store.backup")
	backupStarted.Store(true)
	out := kftest.Run(t, keyfleetd(), "backup", "--data", dir, "--out", backupFile)
	close(stop)
	wg.Wait()
	if !strings.Contains(out, "backup written to "+backupFile) {
		t.Fatalf("keyfleetd backup said:\n%s", out)
	}
	if err := d.WaitLog("online backup written", 5*time.Second); err != nil {
		t.Fatal(err) // the backup went through the running daemon's socket
	}
	if st, err := os.Stat(backupFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the backup file: %v %v, want mode 0600", st, err)
	}
	d.MustCall(201, admin, "POST", "/v1/users", api.CreateUser{Username: "after-backup"}, nil)
	lost := head(t, d, admin)
	waitSink(t, sink, oldEpoch, lost.Seq)
	if err := d.Stop(); err != nil {
		t.Fatalf("stopping keyfleetd: %v\n%s", err, d.Log())
	}

	// Restore: the store must be moved aside first.
	if b, err := exec.Command(keyfleetd(), "restore", "--data", dir, "--from", backupFile).CombinedOutput(); err == nil || !strings.Contains(string(b), "move it aside") {
		t.Fatalf("restore over an existing store: %v\n%s", err, b)
	}
	if err := os.Rename(filepath.Join(dir, "store"), filepath.Join(dir, "store.old")); err != nil {
		t.Fatal(err)
	}
	out = kftest.Run(t, keyfleetd(), "restore", "--data", dir, "--from", backupFile)
	m := regexp.MustCompile(`restored; audit head (\d+); new store epoch (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("keyfleetd restore said:\n%s", out)
	}
	restored, _ := strconv.ParseUint(m[1], 10, 64)
	newEpoch := m[2]
	if restored >= lost.Seq || newEpoch == oldEpoch {
		t.Fatalf("restored head %d (the lost one was %d), epoch %s (old %s)", restored, lost.Seq, newEpoch, oldEpoch)
	}

	// The restored store is behind the audit checkpoint written at the
	// shutdown: keyfleetd refuses it until the loss is accepted.
	r := kftest.Launch(t, keyfleetd(), "refused", dir)
	if err := r.Wait(); err == nil || !strings.Contains(r.Log(), "accept-loss") {
		t.Fatalf("serving a restored store behind its checkpoint: %v\n%s", err, r.Log())
	}
	kftest.Run(t, keyfleetd(), "recover", "--data", dir, "--accept-loss", "--reason", "restored last night's backup (test)")

	a := kftest.Serve(t, keyfleetd(), "after", dir)
	before.Range(func(k, _ any) bool {
		if code, err := a.Call(admin, "GET", "/v1/users/"+k.(string), nil, nil); err != nil || code != 200 {
			t.Errorf("%s, acknowledged before the backup started, is missing after the restore: %d %v", k, code, err)
		}
		return true
	})
	if code, _ := a.Call(admin, "GET", "/v1/users/after-backup", nil, nil); code != 404 {
		t.Fatalf("a user made after the backup: %d after the restore, want 404", code)
	}
	a.MustCall(201, admin, "POST", "/v1/users", api.CreateUser{Username: "after-restore"}, nil)
	now := head(t, a, admin)
	if v := verifyAudit(t, a, admin); v.HeadSeq != now.Seq {
		t.Fatalf("audit verify after the restore: %+v", v)
	}

	// The sink's cursor is of the old epoch: it stops and says why.
	sinkStopped(t, a, admin, "restored from a backup", "keyfleet events replay archive")
	for _, l := range readSink(t, sink) {
		if l.Epoch != oldEpoch {
			t.Fatalf("the sink delivered %s before the operator replayed it", l.ID)
		}
	}
	// The operator checks what the receiver holds and replays from the
	// restore point: the new events arrive under new ids.
	a.MustCall(202, admin, "POST", "/v1/events/sinks/archive/replay", map[string]uint64{"from": restored + 1}, nil)
	lines = waitSink(t, sink, newEpoch, now.Seq)
	ids := map[string]bool{}
	reused := 0
	for _, l := range lines {
		if ids[l.ID] {
			t.Fatalf("the sink delivered id %s twice", l.ID)
		}
		ids[l.ID] = true
		if l.ID != l.Epoch+"-"+strconv.FormatUint(l.Seq, 10) {
			t.Fatalf("event id %s does not name its epoch and seq", l.ID)
		}
		if l.Epoch == newEpoch && l.Seq <= restored {
			t.Fatalf("event %d before the restore point was delivered in the new epoch", l.Seq)
		}
		if l.Epoch == newEpoch && ids[oldEpoch+"-"+strconv.FormatUint(l.Seq, 10)] {
			reused++
		}
	}
	if reused == 0 {
		t.Fatal("no seq was delivered in both epochs: the test did not exercise a rewound head")
	}
	t.Logf("restored to seq %d (lost up to %d); %d seqs delivered in both epochs, each under its own id", restored, lost.Seq, reused)
}

// sinkStopped waits until the archive sink reports an error holding
// every part of want.
func sinkStopped(t *testing.T, d *kftest.Daemon, token string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var st struct{ Items []api.SinkStatus }
		d.MustCall(200, token, "GET", "/v1/events/sinks", nil, &st)
		for _, s := range st.Items {
			ok := s.Name == "archive"
			for _, w := range want {
				ok = ok && strings.Contains(s.LastError, w)
			}
			if ok {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sink never stopped with %q: %+v\n%s", want, st.Items, d.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
