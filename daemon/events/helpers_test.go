package events_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/events"
	"github.com/keyfleet/keyfleet/daemon/seal"
	"github.com/keyfleet/keyfleet/daemon/store"
)

// testLog is a real audit log: an in-memory Badger store written through
// the domain service.
type testLog struct {
	st  *store.Store
	svc *core.Service
	mu  sync.Mutex
	n   int
	m   *events.Manager // notified after each write, if set
}

func newLog(t testing.TB) *testLog {
	t.Helper()
	st, err := store.Open(store.Options{InMemory: true, EncryptionKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sealer, err := seal.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := core.New(core.Config{Store: st, Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	return &testLog{st: st, svc: svc}
}

// add creates n users (one user.create event each) in the given groups.
func (l *testLog) add(t testing.TB, n int, groups ...string) {
	t.Helper()
	for range n {
		l.mu.Lock()
		l.n++
		name := fmt.Sprintf("user%05d", l.n)
		l.mu.Unlock()
		if _, _, err := l.svc.CreateUser(context.Background(), core.System, api.CreateUser{Username: name, Groups: groups}); err != nil {
			t.Fatal(err)
		}
		if l.m != nil {
			l.m.Notify()
		}
	}
}

func (l *testLog) head() uint64 { return l.st.AuditHead().Seq }

// run starts a manager and returns it with a function that stops it and
// waits for Run to return.
func run(t testing.TB, l *testLog, cfg events.Config, o events.Options) (*events.Manager, func()) {
	t.Helper()
	o.Source = l.st
	if o.Cursors == nil {
		o.Cursors = &events.MemCursors{}
	}
	if cfg.PollInterval.Duration == 0 {
		cfg.PollInterval.Duration = 20 * time.Millisecond
	}
	m, err := events.New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	l.m = m
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return m, stop
}

// fastRetry retries quickly so fault tests finish in well under a second.
var fastRetry = events.RetryConfig{
	Initial: events.Duration{Duration: 5 * time.Millisecond},
	Max:     events.Duration{Duration: 50 * time.Millisecond},
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func status(m *events.Manager, name string) events.SinkStatus {
	for _, s := range m.Status() {
		if s.Name == name {
			return s
		}
	}
	return events.SinkStatus{}
}

// checkComplete fails unless got holds every seq from 1 to head, in
// non-decreasing first-seen order (duplicates allowed: at-least-once).
func checkComplete(t testing.TB, got []uint64, head uint64) {
	t.Helper()
	seen := map[uint64]bool{}
	var firsts []uint64
	for _, s := range got {
		if !seen[s] {
			seen[s] = true
			firsts = append(firsts, s)
		}
	}
	for i, s := range firsts {
		if s != uint64(i+1) {
			t.Fatalf("events out of order or missing at position %d: got seq %d (first-seen order %v)", i, s, firsts)
		}
	}
	if uint64(len(firsts)) != head {
		t.Fatalf("got %d distinct events, want %d", len(firsts), head)
	}
}

// testCert is a self-signed certificate for 127.0.0.1 and the pool that
// trusts it.
type testCert struct {
	server *tls.Config
	client *tls.Config
}

func newTestCert(t testing.TB) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "keyfleet events test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return testCert{
		server: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12},
		client: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}
}

func newRegistry() *prometheus.Registry { return prometheus.NewRegistry() }

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// The Badger store is the daemon's Source.
var _ events.Source = (*store.Store)(nil)
