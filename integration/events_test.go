package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
)

// sinkSeqs reads the sequence numbers a JSON-lines sink wrote.
func sinkSeqs(t *testing.T, file string) []uint64 {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []uint64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev struct {
			Seq    uint64 `json:"seq"`
			Schema string `json:"schema"`
		}
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Schema == "keyfleet.audit/v1" {
			out = append(out, ev.Seq)
		}
	}
	return out
}

// waitForSeq polls the sink file until it holds seq.
func waitForSeq(t *testing.T, file string, seq uint64) []uint64 {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		seqs := sinkSeqs(t, file)
		for _, s := range seqs {
			if s == seq {
				return seqs
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sink never delivered seq %d; it has %d events", seq, len(seqs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTheFileSinkDeliversEveryEventAcrossASIGKILL(t *testing.T) {
	dir := initData(t)
	sink := filepath.Join(t.TempDir(), "siem.jsonl")
	cfg := fmt.Sprintf("events:\n  sinks:\n    - name: siem\n      type: file\n      file:\n        path: %s\n", sink)
	os.WriteFile(filepath.Join(dir, "keyfleetd.yaml"), []byte(cfg), 0o600)
	d := start(t, dir)
	token := adminToken(t, dir)
	for i := range 30 {
		d.call(token, "POST", "/v1/users", api.CreateUser{Username: fmt.Sprintf("s%d", i)}, nil)
	}
	var head api.AuditHead
	d.call(token, "GET", "/v1/audit/head", nil, &head)
	d.cmd.Process.Signal(syscall.SIGKILL)
	d.wait()
	d2 := start(t, dir)
	for i := range 10 {
		d2.call(token, "POST", "/v1/users", api.CreateUser{Username: fmt.Sprintf("after%d", i)}, nil)
	}
	d2.call(token, "GET", "/v1/audit/head", nil, &head)
	seqs := waitForSeq(t, sink, head.Seq)
	seen := map[uint64]bool{}
	last := uint64(0)
	for _, s := range seqs {
		if s < last && !seen[s] {
			t.Fatalf("seq %d arrived after %d for the first time: out of order", s, last)
		}
		seen[s], last = true, max(last, s)
	}
	for s := uint64(1); s <= head.Seq; s++ {
		if !seen[s] {
			t.Fatalf("event %d was lost across the SIGKILL", s)
		}
	}
	want := fmt.Sprintf(`"last_delivered":%d`, head.Seq)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		status := d2.get(token, "/v1/events/sinks")
		if strings.Contains(status, `"name":"siem"`) && strings.Contains(status, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sink status never reached the head: %s", status)
		}
	}
}
