package failover

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/integration/kftest"
)

// witness keeps the newest checkpoint it is given, refuses one that goes
// back (409), and remembers the sequence number of every one it was sent.
type witness struct {
	mu   sync.Mutex
	last []byte
	seq  uint64
	sent []uint64
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
	if json.Unmarshal(b, &c) != nil {
		http.Error(rw, "not a checkpoint", http.StatusBadRequest)
		return
	}
	w.sent = append(w.sent, c.Seq)
	if c.Seq < w.seq {
		http.Error(rw, "refused: it goes back", http.StatusConflict)
		return
	}
	w.last, w.seq = b, c.Seq
}

func (w *witness) newest() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seq
}

// covers reports whether the witness holds a checkpoint of head, or of
// the event before it when head is a checkpoint's own audit.checkpoint
// event (which calls for no checkpoint of its own).
func (w *witness) covers(t *testing.T, d *kftest.Daemon, admin string, head uint64) bool {
	t.Helper()
	newest := w.newest()
	if newest >= head {
		return true
	}
	if newest+1 != head {
		return false
	}
	var page struct{ Items []api.AuditEvent }
	d.MustCall(200, admin, "GET", fmt.Sprintf("/v1/audit?after=%d&limit=1", head-1), nil, &page)
	return len(page.Items) == 1 && page.Items[0].Seq == head && page.Items[0].Action == "audit.checkpoint"
}

// writtenOnce fails unless every checkpoint the witness was sent is past
// the one before: two writers would send the same heads, or go back.
func (w *witness) writtenOnce(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := 1; i < len(w.sent); i++ {
		if w.sent[i] <= w.sent[i-1] {
			t.Fatalf("the witness was sent checkpoints %v: seq %d came after %d, as from a second writer", w.sent, w.sent[i], w.sent[i-1])
		}
	}
	if len(w.sent) < 2 {
		t.Fatalf("the witness was sent %v: too few checkpoints to tell", w.sent)
	}
}

// headOf is the audit head's sequence number, as d sees it.
func headOf(t *testing.T, d *kftest.Daemon, admin string) uint64 {
	var h api.AuditHead
	d.MustCall(200, admin, "GET", "/v1/audit/head", nil, &h)
	return h.Seq
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// TestAuditCheckpointsAreWrittenByTheLeaderAloneAndVerifiedByEither: two
// keyfleetd on one database, set up as docs/operations.md says (the
// second one's data folder a copy of the first's, so that they share the
// checkpoint key init --postgres made), with one witness. Only the leader
// writes checkpoints: the witness receives each head once and in order,
// the audit log has one audit.checkpoint event per checkpoint, and the
// follower's checkpoint file is never written. The follower verifies the
// log against the leader's newest checkpoint; after the leader is killed
// the survivor continues writing them, and the killed keyfleetd, started
// again, checks the store against the survivor's newest at start.
func TestAuditCheckpointsAreWrittenByTheLeaderAloneAndVerifiedByEither(t *testing.T) {
	w := &witness{}
	ws := httptest.NewServer(w)
	defer ws.Close()
	dirs, _, admin := setup(t, 2)
	for _, d := range dirs {
		kftest.EditConfig(t, d, map[string]string{
			"audit.checkpoint.witness_url": strconv.Quote(ws.URL),
			"audit.checkpoint.every":       "10",
			"audit.checkpoint.interval":    "1s",
		})
	}
	nodes := serveAll(t, dirs)
	leader := leaderOf(t, nodes)
	follower := nodes[0]
	if follower == leader {
		follower = nodes[1]
	}
	followerFile := follower.Dir + ".checkpoint"
	before := readFile(followerFile)

	for i := range 40 {
		nodes[i%2].MustCall(201, admin, "POST", "/v1/users", api.CreateUser{Username: fmt.Sprintf("cp-%02d", i)}, nil)
	}
	head := headOf(t, leader, admin)
	waitFor(t, "a checkpoint of the head after the load", func() bool { return w.covers(t, leader, admin, head) })
	head = min(head, w.newest()) // the checkpoint's own event needs none
	if readFile(followerFile) != before {
		t.Fatalf("the follower %s wrote its checkpoint file %s", follower.Name, followerFile)
	}
	if !strings.Contains(readFile(leader.Dir+".checkpoint"), `"seq"`) {
		t.Fatalf("the leader %s wrote no checkpoint file", leader.Name)
	}
	checkOneEventPerCheckpoint(t, leader, admin)
	var v api.AuditVerification
	follower.MustCall(200, admin, "GET", "/v1/audit/verify", nil, &v)
	if !v.OK || v.Checkpoint == nil || !v.Checkpoint.OK || v.Checkpoint.Seq < head {
		t.Fatalf("the follower's audit verify against the leader's checkpoint: %+v %+v", v, v.Checkpoint)
	}

	leader.Kill()
	survivor := leaderOf(t, nodes)
	for i := range 30 {
		survivor.MustCall(201, admin, "POST", "/v1/users", api.CreateUser{Username: fmt.Sprintf("cp-after-%02d", i)}, nil)
	}
	head = headOf(t, survivor, admin)
	if !eventually(60*time.Second, func() bool { return w.covers(t, survivor, admin, head) }) {
		t.Fatalf("timed out waiting for the new leader's checkpoint of the head %d (the witness's newest: %d); %s's log:\n%s", head, w.newest(), survivor.Name, survivor.Log())
	}
	head = min(head, w.newest())
	w.writtenOnce(t)
	checkOneEventPerCheckpoint(t, survivor, admin)

	again := kftest.Serve(t, keyfleetd(), leader.Name+"-again", leader.Dir)
	seq := startupCheckpointSeq(t, again)
	if seq < head {
		t.Fatalf("the restarted keyfleetd compared the store with checkpoint %d, not the survivor's newest (at least %d)\n%s", seq, head, again.Log())
	}
}

// checkOneEventPerCheckpoint: the audit log's audit.checkpoint events
// each record another checkpoint (one writer).
func checkOneEventPerCheckpoint(t *testing.T, d *kftest.Daemon, admin string) {
	t.Helper()
	var page struct{ Items []api.AuditEvent }
	d.MustCall(200, admin, "GET", "/v1/audit?action=audit.checkpoint&limit=500", nil, &page)
	seen := map[string]bool{}
	for _, ev := range page.Items {
		if seen[ev.Extra["seq"]] {
			t.Fatalf("two audit.checkpoint events record a checkpoint at seq %s: two keyfleetd write checkpoints", ev.Extra["seq"])
		}
		seen[ev.Extra["seq"]] = true
	}
	if len(seen) < 2 {
		t.Fatalf("the audit log holds %d audit.checkpoint events", len(seen))
	}
}

// startupCheckpointSeq is the checkpoint d compared the store with at
// start ("the store matches the newest audit checkpoint").
func startupCheckpointSeq(t *testing.T, d *kftest.Daemon) uint64 {
	t.Helper()
	for _, line := range strings.Split(d.Log(), "\n") {
		var rec struct {
			Msg  string
			Seq  uint64 `json:"checkpoint_seq"`
			Head uint64 `json:"head_seq"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "the store matches the newest audit checkpoint" {
			return rec.Seq
		}
	}
	t.Fatalf("%s did not say that the store matches the newest checkpoint\n%s", d.Name, d.Log())
	return 0
}

// TestAKeyfleetdWithoutTheSharedCheckpointKeyIsRefused: the database
// keeps the public half of the checkpoint key init --postgres made, so a
// keyfleetd added without it (its data folder not a copy of the first's)
// is refused at start, saying what to copy, rather than signing
// checkpoints the others cannot verify.
func TestAKeyfleetdWithoutTheSharedCheckpointKeyIsRefused(t *testing.T) {
	dirs, _, _ := setup(t, 2)
	key := filepath.Join(dirs[1], "keys", "checkpoint.key")
	if err := os.Remove(key); err != nil {
		t.Fatal(err)
	}
	refused := func(want string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, keyfleetd(), "serve", "--data", dirs[1], "--listen", "127.0.0.1:0").CombinedOutput()
		if err == nil || !strings.Contains(string(out), want) || !strings.Contains(string(out), "Copy keys/checkpoint.key") {
			t.Fatalf("a keyfleetd without the shared checkpoint key: %v\n%s", err, out)
		}
	}
	refused("is missing")

	// Another checkpoint key, sealed under the same sealing key: made by
	// an init of its own.
	other := filepath.Join(t.TempDir(), "other")
	seal := strings.TrimSpace(readFile(filepath.Join(dirs[0], "keys", "seal.key")))
	cmd := exec.Command(keyfleetd(), "init", "--data", other)
	cmd.Env = append(os.Environ(), "KEYFLEET_SEAL_KEY="+seal)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(other, "keys", "checkpoint.key"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(key, b, 0o600)
	refused("signs checkpoints the others cannot verify")

	// With the first one's key, it serves.
	b, _ = os.ReadFile(filepath.Join(dirs[0], "keys", "checkpoint.key"))
	os.WriteFile(key, b, 0o600)
	kftest.Serve(t, keyfleetd(), "k2", dirs[1])
}
