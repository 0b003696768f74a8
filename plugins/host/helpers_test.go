package host_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/plugins/host"
	"github.com/keyfleet/keyfleet/plugins/sdk"
	"github.com/keyfleet/keyfleet/plugins/sdk/sdktest"
)

const testPlugin = "github.com/keyfleet/keyfleet/plugins/host/internal/testplugin"

// secretState stands for a factor's sealed state: it must never reach a log.
var secretState = []byte("SEALED-STATE-DO-NOT-LOG")

// buildInto builds the test plugin as dir/keyfleet-plugin-<name> with the
// given kind and protocol version and returns its checksum.
func buildInto(t *testing.T, dir, name, kind, protocol string) string {
	t.Helper()
	bin := sdktest.Build(t, testPlugin, name, "-ldflags", "-X main.kind="+kind+" -X main.protocol="+protocol)
	copyFile(t, bin, filepath.Join(dir, host.Prefix+name))
	return sdktest.Sum(t, bin)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// events records what the host reports.
type events struct {
	mu        sync.Mutex
	refused   map[string]string
	restarted []string
}

func (e *events) PluginRefused(name, reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.refused == nil {
		e.refused = map[string]string{}
	}
	e.refused[name] = reason
}

func (e *events) PluginRestarted(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.restarted = append(e.restarted, name)
}

func (e *events) refusal(name string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.refused[name]
}

func (e *events) restarts() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.restarted)
}

// logBuf is a slog destination tests can read.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// rig is a host under test with its log, events and metrics.
type rig struct {
	host   *host.Host
	kinds  []sdk.Factor
	log    *logBuf
	events *events
	reg    *prometheus.Registry
}

func start(t *testing.T, cfg host.Config) *rig {
	t.Helper()
	r := &rig{log: &logBuf{}, events: &events{}, reg: prometheus.NewRegistry()}
	logger := slog.New(slog.NewJSONHandler(io.MultiWriter(r.log), &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, err := host.New(cfg, host.Options{Logger: logger, Events: r.events, Registerer: r.reg})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	r.host = h
	t.Cleanup(func() {
		_ = h.Close()
		if strings.Contains(r.log.String(), string(secretState)) {
			t.Error("the factor's state reached the log")
		}
	})
	if r.kinds, err = h.Load(context.Background()); err != nil {
		t.Fatalf("Load: %v", err)
	}
	return r
}

func (r *rig) kind(t *testing.T, name string) sdk.Factor {
	t.Helper()
	for _, k := range r.kinds {
		if info, _ := k.Describe(context.Background()); info.Kind == name {
			return k
		}
	}
	t.Fatalf("kind %q not loaded; log:\n%s", name, r.log)
	return nil
}

func (r *rig) counter(name, plugin string) float64 {
	mfs, _ := r.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == plugin {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func verify(f sdk.Factor, response string) (sdk.FinishVerifyResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return f.FinishVerify(ctx, sdk.FinishVerifyRequest{State: secretState, Response: []byte(response), Now: time.Now()})
}
