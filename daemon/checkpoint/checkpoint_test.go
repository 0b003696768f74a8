package checkpoint

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/seal"
)

// memChain is an audit log in memory.
type memChain struct {
	mu   sync.Mutex
	recs []audit.Record
	head audit.Head
}

func (m *memChain) append(n int) { m.appendBy("u1", n) }

func (m *memChain) appendBy(actor string, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := audit.Chain{Head: m.head}
	for range n {
		r, _ := c.Next(&audit.Event{Action: "user.create", Time: time.Unix(1700000000, 0), Actor: api.Actor{ID: actor},
			Before: map[string]any{"n": 12345678901234567}, Extra: map[string]string{"k": "<v&>"}})
		m.recs = append(m.recs, r)
	}
	m.head = c.Head
}

func (m *memChain) AuditHead() audit.Head { m.mu.Lock(); defer m.mu.Unlock(); return m.head }

func (m *memChain) AuditScan(ctx context.Context, after uint64, fn func(uint64, audit.Record) (bool, error)) error {
	m.mu.Lock()
	recs := append([]audit.Record(nil), m.recs...)
	m.mu.Unlock()
	for _, r := range recs {
		if r.Seq <= after {
			continue
		}
		if ok, err := fn(r.Seq, r); err != nil || !ok {
			return err
		}
	}
	return nil
}

func sealer(t *testing.T, b byte) *seal.Sealer {
	t.Helper()
	s, err := seal.New(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func signer(t *testing.T) *Signer {
	t.Helper()
	s, err := LoadSigner(filepath.Join(t.TempDir(), "checkpoint.key"), sealer(t, 1), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestACheckpointVerifiesOnlyAsSignedAndUnderItsKey(t *testing.T) {
	s, other := signer(t), signer(t)
	c := s.Sign(audit.Head{Seq: 42, Hash: [32]byte{1, 2, 3}}, time.Unix(1700000000, 5))
	if err := c.Verify(s.Public()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		alter func(*Checkpoint)
		key   []byte
	}{
		{"its sequence number raised", func(c *Checkpoint) { c.Seq = 4200 }, s.Public()},
		{"its hash replaced", func(c *Checkpoint) { c.Hash = strings.Repeat("ab", 32) }, s.Public()},
		{"its time moved", func(c *Checkpoint) { c.Time = c.Time.Add(time.Hour) }, s.Public()},
		{"signed by another key", func(*Checkpoint) {}, other.Public()},
		{"a key that is not one", func(c *Checkpoint) { c.Key = "bm90IGEga2V5" }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := c
			tc.alter(&bad)
			if err := bad.Verify(tc.key); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("Verify answered %v", err)
			}
		})
	}
}

func TestTheSigningKeyIsSealedAndOpensOnlyUnderItsSealingKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "checkpoint.key")
	a, err := LoadSigner(path, sealer(t, 1), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadSigner(path, sealer(t, 1), rand.Reader)
	if err != nil || !a.Public().Equal(b.Public()) {
		t.Fatalf("the key changed between loads: %v", err)
	}
	raw, _ := os.ReadFile(path)
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("the key file is mode %o", st.Mode().Perm())
	}
	if bytes.Contains(raw, a.priv.Seed()) {
		t.Error("the key file holds the seed in the clear")
	}
	if _, err := LoadSigner(path, sealer(t, 2), rand.Reader); err == nil || !strings.Contains(err.Error(), "sealing key") {
		t.Fatalf("a wrong sealing key opened the checkpoint key: %v", err)
	}
}

func TestVerifyFromChecksTheStoreAgainstACheckpoint(t *testing.T) {
	s := signer(t)
	for _, tc := range []struct {
		name   string
		setup  func(m *memChain) Checkpoint
		behind bool
		fail   bool
	}{
		{"a log that went on past the checkpoint", func(m *memChain) Checkpoint {
			m.append(10)
			c := s.Sign(m.AuditHead(), time.Now())
			m.append(5)
			return c
		}, false, false},
		{"a log at the checkpoint", func(m *memChain) Checkpoint { m.append(3); return s.Sign(m.AuditHead(), time.Now()) }, false, false},
		{"an empty log under an empty checkpoint", func(m *memChain) Checkpoint { return s.Sign(audit.Head{}, time.Now()) }, false, false},
		{"a log cut short with its head (put back from an older copy)", func(m *memChain) Checkpoint {
			m.append(10)
			c := s.Sign(m.AuditHead(), time.Now())
			m.recs, m.head = m.recs[:6], audit.Head{Seq: 6, Hash: m.recs[5].Hash}
			return c
		}, true, true},
		{"a log rewritten before the checkpoint", func(m *memChain) Checkpoint {
			m.append(10)
			c := s.Sign(m.AuditHead(), time.Now())
			other := &memChain{}
			other.appendBy("someone else", 12)
			*m = memChain{recs: other.recs, head: other.head}
			return c
		}, false, true},
		{"a record edited after the checkpoint", func(m *memChain) Checkpoint {
			m.append(5)
			c := s.Sign(m.AuditHead(), time.Now())
			m.append(5)
			m.recs[7].Body = []byte(`{"action":"forged"}`)
			return c
		}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &memChain{}
			c := tc.setup(m)
			_, err := VerifyFrom(context.Background(), m, c)
			var me *MismatchError
			switch {
			case !tc.fail && err != nil:
				t.Fatalf("VerifyFrom: %v", err)
			case tc.fail && !errors.As(err, &me):
				t.Fatalf("VerifyFrom answered %v, want a mismatch", err)
			case tc.fail && me.Behind != tc.behind:
				t.Fatalf("mismatch %+v: behind %v, want %v", me, me.Behind, tc.behind)
			}
		})
	}
}

func TestNewestIsTheLatestSignedOneAndAlteredOnesAreReported(t *testing.T) {
	s := signer(t)
	dir := t.TempDir()
	old := File{Path: filepath.Join(dir, "old.json")}
	newer := File{Path: filepath.Join(dir, "new.json")}
	forged := File{Path: filepath.Join(dir, "forged.json")}
	missing := File{Path: filepath.Join(dir, "none.json")}
	ctx := context.Background()
	old.Put(ctx, s.Sign(audit.Head{Seq: 900}, time.Unix(1000, 0)))
	newer.Put(ctx, s.Sign(audit.Head{Seq: 800}, time.Unix(2000, 0))) // after an accepted loss: lower seq, later time
	f := s.Sign(audit.Head{Seq: 5}, time.Unix(3000, 0))
	f.Seq = 5000
	forged.Put(ctx, f)
	c, ok, bad, errs := Newest(ctx, s.Public(), old, missing, newer, forged)
	if !ok || c.Seq != 800 || c.Source != newer.Path || len(bad) != 1 || len(errs) != 0 {
		t.Fatalf("Newest = %v %v bad %v errs %v", c, ok, bad, errs)
	}
}

// witness is a test witness: it keeps the newest checkpoint and refuses
// one that goes back.
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
	c, err := Parse(b)
	if err != nil || c.Verify(nil) != nil {
		http.Error(rw, "not a signed checkpoint", http.StatusBadRequest)
		return
	}
	if c.Seq < w.seq {
		http.Error(rw, fmt.Sprintf("goes back from %d", w.seq), http.StatusConflict)
		return
	}
	w.last, w.seq = b, c.Seq
}

func TestAWitnessKeepsTheNewestAndRefusesToGoBack(t *testing.T) {
	srv := httptest.NewServer(&witness{})
	defer srv.Close()
	w := Witness{URL: srv.URL}
	s := signer(t)
	ctx := context.Background()
	if _, ok, err := w.Latest(ctx); ok || err != nil {
		t.Fatalf("an empty witness answered %v %v", ok, err)
	}
	if err := w.Put(ctx, s.Sign(audit.Head{Seq: 10}, time.Now())); err != nil {
		t.Fatal(err)
	}
	if err := w.Put(ctx, s.Sign(audit.Head{Seq: 9}, time.Now())); err == nil || !strings.Contains(err.Error(), "409") {
		t.Fatalf("a witness took a checkpoint that goes back: %v", err)
	}
	c, ok, err := w.Latest(ctx)
	if err != nil || !ok || c.Seq != 10 || c.Verify(s.Public()) != nil {
		t.Fatalf("the witness gave back %v %v %v", c, ok, err)
	}
}

type recorder struct {
	mu     sync.Mutex
	chain  *memChain
	events []map[string]string
}

func (r *recorder) RecordEvent(_ context.Context, action, _, _ string, extra map[string]string) error {
	r.mu.Lock()
	r.events = append(r.events, extra)
	r.mu.Unlock()
	r.chain.append(1)
	return nil
}

func TestTheManagerCheckpointsEveryNEventsAndOnceMoreAtShutdown(t *testing.T) {
	m := &memChain{}
	rec := &recorder{chain: m}
	file := File{Path: filepath.Join(t.TempDir(), "cp.json")}
	mgr, err := New(Config{Head: m, Signer: signer(t), Places: []Place{file, Events{Recorder: rec}}, Every: 10, Interval: time.Hour, Poll: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); mgr.Run(ctx) }()
	for round := 1; round <= 3; round++ {
		m.append(10)
		mgr.Notify()
		deadline := time.Now().Add(5 * time.Second)
		for {
			rec.mu.Lock()
			n := len(rec.events)
			rec.mu.Unlock()
			if n == round {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: %d checkpoints written", round, n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	m.append(3) // fewer than Every, within the interval: no checkpoint until shutdown
	cancel()
	<-done
	c, ok, err := file.Latest(context.Background())
	if err != nil || !ok || c.Seq != m.AuditHead().Seq {
		t.Fatalf("the file holds %v %v %v; want the head %d written at shutdown", c, ok, err, m.AuditHead().Seq)
	}
	if len(rec.events) != 3 || rec.events[2]["seq"] != "32" {
		t.Fatalf("audit.checkpoint events %v", rec.events)
	}
}

func export(t *testing.T, m *memChain, after uint64) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	for _, r := range m.recs {
		if r.Seq <= after {
			continue
		}
		ae, err := r.API()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(ae)
		buf.Write(append(b, '\n'))
	}
	return &buf
}

func TestAnExportIsCheckedOfflineAgainstACheckpoint(t *testing.T) {
	s := signer(t)
	m := &memChain{}
	m.append(20)
	c := s.Sign(m.recsHead(15), time.Now())
	for _, tc := range []struct {
		name  string
		input func() io.Reader
		want  string // "" for ok
	}{
		{"the whole log", func() io.Reader { return export(t, m, 0) }, ""},
		{"the log after seq 10", func() io.Reader { return export(t, m, 10) }, ""},
		{"an event edited in the export", func() io.Reader {
			return strings.NewReader(strings.Replace(export(t, m, 0).String(), `"user.create"`, `"user.delete"`, 1))
		}, "edited"},
		{"an export cut before the checkpoint", func() io.Reader {
			lines := strings.SplitAfter(export(t, m, 0).String(), "\n")
			return strings.NewReader(strings.Join(lines[:12], ""))
		}, "missing"},
		{"an export starting after the checkpoint", func() io.Reader { return export(t, m, 16) }, "--after 14"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := VerifyExport(tc.input(), c)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("VerifyExport answered %v, want %q", err, tc.want)
			}
		})
	}
	other := &memChain{}
	other.appendBy("someone else", 20)
	if _, err := VerifyExport(export(t, other, 0), c); !errors.Is(err, ErrMismatch) {
		t.Fatalf("another log verified against the checkpoint: %v", err)
	}
}

func (m *memChain) recsHead(seq uint64) audit.Head {
	r := m.recs[seq-1]
	return audit.Head{Seq: r.Seq, Hash: r.Hash}
}
