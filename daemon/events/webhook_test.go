package events_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/daemon/events"
)

const hookSecret = "test-secret-0123456789abcdef"

// Webhook receiver behaviours for one request.
type behaviour int

const (
	accept behaviour = iota
	fail500
	hang // never answers: the sender's timeout must fire
)

// webhookReceiver is an HTTPS server on loopback that checks every
// request's signature the way docs/events.md tells receivers to, and can go
// down and come back on the same address.
type webhookReceiver struct {
	t    testing.TB
	tls  *tls.Config
	addr string

	mu       sync.Mutex
	srv      *http.Server
	quit     chan struct{}
	requests int
	behave   func(n int) behaviour // n counts requests from 1
	seqs     []uint64              // seqs of accepted batches, in arrival order
	firsts   []uint64              // first seq of every request
	log      []string              // one line per request, shown when a test fails
}

func newWebhookReceiver(t testing.TB, tc *tls.Config) *webhookReceiver {
	r := &webhookReceiver{t: t, tls: tc, addr: "127.0.0.1:0", behave: func(int) behaviour { return accept }}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *webhookReceiver) url() string { return "https://" + r.addr + "/hooks/keyfleet" }

func (r *webhookReceiver) start() {
	ln, err := tls.Listen("tcp", r.addr, r.tls)
	if err != nil {
		r.t.Fatalf("webhook receiver: %v", err)
	}
	r.mu.Lock()
	r.addr = ln.Addr().String()
	r.quit = make(chan struct{})
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 5 * time.Second}
	srv := r.srv
	r.mu.Unlock()
	go srv.Serve(ln)
}

func (r *webhookReceiver) stop() {
	r.mu.Lock()
	srv, quit := r.srv, r.quit
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		close(quit)
		srv.Close()
	}
}

func (r *webhookReceiver) setBehaviour(f func(n int) behaviour) {
	r.mu.Lock()
	r.behave, r.requests = f, 0
	r.mu.Unlock()
}

func (r *webhookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	if err := checkSignature(req.Header.Get("X-Keyfleet-Signature"), body); err != "" {
		r.t.Errorf("webhook receiver: %s", err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var batch events.WebhookBatch
	if err := json.Unmarshal(body, &batch); err != nil || len(batch.Events) == 0 || batch.Schema != events.Schema {
		r.t.Errorf("webhook receiver: bad batch (%v): %.200s", err, body)
		return
	}
	if want := batch.Sink + ":" + strconv.FormatUint(batch.Events[0].Seq, 10) + "-" + strconv.FormatUint(batch.Events[len(batch.Events)-1].Seq, 10); req.Header.Get(events.HeaderDelivery) != want || batch.Delivery != want {
		r.t.Errorf("delivery id %q (body %q), want %q", req.Header.Get(events.HeaderDelivery), batch.Delivery, want)
	}
	r.mu.Lock()
	r.requests++
	b, quit := r.behave(r.requests), r.quit
	r.firsts = append(r.firsts, batch.Events[0].Seq)
	r.log = append(r.log, fmt.Sprintf("request %d: events %d…%d, behaviour %d", r.requests, batch.Events[0].Seq, batch.Events[len(batch.Events)-1].Seq, b))
	r.mu.Unlock()
	switch b {
	case fail500:
		http.Error(w, "try later", http.StatusInternalServerError)
	case hang:
		select {
		case <-req.Context().Done():
		case <-quit:
		}
		// Never answer a batch that was not recorded: returning normally
		// would send an implicit 200 if the connection is still there.
		panic(http.ErrAbortHandler)
	default:
		r.mu.Lock()
		for _, ev := range batch.Events {
			r.seqs = append(r.seqs, ev.Seq)
		}
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}
}

// checkSignature verifies a signature header with nothing but the standard
// library, as docs/events.md describes, and returns what is wrong ("" if
// nothing).
func checkSignature(header string, body []byte) string {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		if v, ok := strings.CutPrefix(part, "t="); ok {
			ts = v
		}
		if v, ok := strings.CutPrefix(part, "v1="); ok {
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return "malformed signature header " + strconv.Quote(header)
	}
	if d := time.Since(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return "stale signature"
	}
	mac := hmac.New(sha256.New, []byte(hookSecret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	got, _ := hex.DecodeString(sig)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return "signature does not match"
	}
	if err := events.VerifySignature([]byte(hookSecret), header, body, time.Now(), 5*time.Minute); err != nil {
		return "events.VerifySignature disagrees: " + err.Error()
	}
	return ""
}

func (r *webhookReceiver) got() ([]uint64, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]uint64(nil), r.seqs...), r.requests
}

func hookSink(r *webhookReceiver, cert testCert, attempts int) events.SinkConfig {
	retry := fastRetry
	retry.MaxAttempts = attempts
	return events.SinkConfig{Name: "hook", Type: "webhook", BatchSize: 5, Retry: retry,
		Webhook: &events.WebhookConfig{URL: r.url(), Secret: hookSecret, TLS: cert.client,
			Timeout: events.Duration{Duration: 200 * time.Millisecond}}}
}

func TestWebhookDeliversSignedBatchesInOrder(t *testing.T) {
	cert := newTestCert(t)
	l := newLog(t)
	rcv := newWebhookReceiver(t, cert.server)
	l.add(t, 12)
	m, _ := run(t, l, events.Config{Sinks: []events.SinkConfig{hookSink(rcv, cert, 0)}}, events.Options{})
	l.add(t, 8)
	waitFor(t, "every event", func() bool { return status(m, "hook").Lag == 0 })
	seqs, _ := rcv.got()
	checkComplete(t, seqs, l.head())
}

func TestWebhookSurvives500sTimeoutsAndAnOutage(t *testing.T) {
	cert := newTestCert(t)
	l := newLog(t)
	rcv := newWebhookReceiver(t, cert.server)
	// Two 500s, then two requests that time out, then success.
	rcv.setBehaviour(func(n int) behaviour {
		switch {
		case n <= 2:
			return fail500
		case n <= 4:
			return hang
		}
		return accept
	})
	reg := newRegistry()
	m, _ := run(t, l, events.Config{Sinks: []events.SinkConfig{hookSink(rcv, cert, 0)}}, events.Options{Registerer: reg})
	l.add(t, 7)
	waitFor(t, "delivery after the 500s and timeouts", func() bool { return status(m, "hook").Lag == 0 })
	st := status(m, "hook")
	if st.Failures < 4 || !strings.Contains(st.LastError, "Timeout") && !strings.Contains(st.LastError, "deadline") {
		t.Errorf("after 500s and timeouts: status %+v", st)
	}
	if strings.Contains(st.LastError, hookSecret) {
		t.Error("LastError shows the webhook secret")
	}

	rcv.stop()
	l.add(t, 6)
	waitFor(t, "failures while the receiver is down", func() bool { return status(m, "hook").Failures >= st.Failures+2 })
	rcv.start()
	l.add(t, 3)
	waitFor(t, "delivery after the outage", func() bool { return status(m, "hook").Lag == 0 })
	seqs, _ := rcv.got()
	if len(seqs) == 0 || seqs[0] != 1 {
		t.Log(strings.Join(rcv.log, "\n"))
	}
	checkComplete(t, seqs, l.head())
	if got := gather(t, reg, "keyfleet_events_failures_total"); got < 6 {
		t.Errorf("failures_total = %v, want at least 6", got)
	}
}

// deadLetters records what the manager reports.
type deadLetters struct {
	mu  sync.Mutex
	got []events.DeadLetter
}

func (d *deadLetters) ReportDeadLetter(_ context.Context, dl events.DeadLetter) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.got = append(d.got, dl)
	return nil
}

func (d *deadLetters) list() []events.DeadLetter {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]events.DeadLetter(nil), d.got...)
}

func TestWebhookDeadLettersAfterMaxAttemptsAndReplays(t *testing.T) {
	cert := newTestCert(t)
	l := newLog(t)
	rcv := newWebhookReceiver(t, cert.server)
	rcv.setBehaviour(func(int) behaviour { return fail500 })
	cursors := &events.MemCursors{}
	dls := &deadLetters{}
	reg := newRegistry()
	l.add(t, 3)
	m, _ := run(t, l, events.Config{Sinks: []events.SinkConfig{hookSink(rcv, cert, 3)}},
		events.Options{Cursors: cursors, DeadLetters: dls, Registerer: reg})
	waitFor(t, "a dead letter", func() bool { return status(m, "hook").DeadLetters == 1 && status(m, "hook").Lag == 0 })
	_, requests := rcv.got()
	if requests > 3 { // fewer if an attempt timed out before reaching the handler
		t.Errorf("the receiver saw %d attempts, want at most 3", requests)
	}
	reported := dls.list()
	stored, _ := cursors.DeadLetters(context.Background(), "hook")
	if len(reported) != 1 || len(stored) != 1 {
		t.Fatalf("reported %d, stored %d dead letters; want 1 each", len(reported), len(stored))
	}
	d := stored[0]
	if d.FromSeq != 1 || d.ToSeq != 3 || len(d.Seqs) != 3 || d.Attempts != 3 || !strings.Contains(d.Error, "500") {
		t.Errorf("dead letter = %+v", d)
	}
	if got := gather(t, reg, "keyfleet_events_dead_letters_total"); got != 1 {
		t.Errorf("dead_letters_total = %v, want 1", got)
	}

	rcv.setBehaviour(func(int) behaviour { return accept })
	if err := m.Replay(context.Background(), "hook", d.FromSeq); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replayed events", func() bool { seqs, _ := rcv.got(); return len(seqs) == 3 })
	seqs, _ := rcv.got()
	checkComplete(t, seqs, l.head())
}

func TestStoppedMidDeliveryResumesFromTheCursor(t *testing.T) {
	cert := newTestCert(t)
	l := newLog(t)
	rcv := newWebhookReceiver(t, cert.server)
	// The third request hangs until the manager is stopped.
	rcv.setBehaviour(func(n int) behaviour {
		if n == 3 {
			return hang
		}
		return accept
	})
	path := filepath.Join(t.TempDir(), "cursors.json")
	cursors, err := events.OpenFileCursors(path)
	if err != nil {
		t.Fatal(err)
	}
	sink := hookSink(rcv, cert, 0)
	sink.Webhook.Timeout = events.Duration{Duration: time.Minute}
	l.add(t, 23)
	m, stop := run(t, l, events.Config{Sinks: []events.SinkConfig{sink}}, events.Options{Cursors: cursors})
	waitFor(t, "the third request", func() bool { _, n := rcv.got(); return n >= 3 })
	stop()
	cursor := status(m, "hook").LastDelivered
	if cursor != 10 {
		t.Fatalf("cursor after stopping mid-batch = %d, want 10 (two batches of 5)", cursor)
	}

	reopened, err := events.OpenFileCursors(path)
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := run(t, l, events.Config{Sinks: []events.SinkConfig{sink}}, events.Options{Cursors: reopened})
	waitFor(t, "delivery after the restart", func() bool { return status(m2, "hook").Lag == 0 })
	seqs, _ := rcv.got()
	checkComplete(t, seqs, l.head())
	rcv.mu.Lock()
	resumedAt := rcv.firsts[3]
	rcv.mu.Unlock()
	if resumedAt != cursor+1 {
		t.Errorf("the restarted manager began at %d, want %d (the cursor + 1)", resumedAt, cursor+1)
	}
}

func TestWebhookSecretFile(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, content, wantErr string
	}{
		{"a secret file with a trailing newline works", hookSecret + "\n", ""},
		{"a short secret file is refused", "short\n", "fewer than 16"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, "secret")
			writeFile(t, p, tt.content)
			l := newLog(t)
			cfg := events.Config{Sinks: []events.SinkConfig{{Name: "h", Type: "webhook",
				Webhook: &events.WebhookConfig{URL: "https://127.0.0.1:1/", SecretFile: p}}}}
			_, err := events.New(cfg, events.Options{Source: l.st, Cursors: &events.MemCursors{}})
			if (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
