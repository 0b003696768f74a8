package host

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/hashicorp/go-plugin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// Events receives what the daemon records in its audit log. Calls come
// from the host's goroutines and must not block for long.
type Events interface {
	// PluginRefused: the binary name was not started (unpinned, missing,
	// modified, incompatible, or its kind clashes with another).
	PluginRefused(name, reason string)
	// PluginRestarted: the plugin crashed or hung and runs again.
	PluginRestarted(name string)
}

// Options are the host's dependencies. The zero value works: no log, no
// events, no metrics.
type Options struct {
	Logger     *slog.Logger          // nil discards
	Events     Events                // nil drops events
	Registerer prometheus.Registerer // nil: metrics are not registered
}

// Host starts and supervises the configured plugins.
type Host struct {
	cfg     Config
	log     *slog.Logger
	events  Events
	metrics *metrics

	mu      sync.Mutex
	plugins []*managed
	closed  bool
	wg      sync.WaitGroup // restarts in the background
}

// New checks cfg (see Config.Validate) and registers the host's metrics.
// It starts nothing; Load does.
func New(cfg Config, opts Options) (*Host, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	h := &Host{cfg: cfg, log: opts.Logger, events: opts.Events, metrics: m}
	if h.log == nil {
		h.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if h.events == nil {
		h.events = noEvents{}
	}
	return h, nil
}

type noEvents struct{}

func (noEvents) PluginRefused(string, string) {}
func (noEvents) PluginRestarted(string)       {}

// Load discovers the plugins in the configured folder, starts every pinned
// one whose checksum matches, and returns them as factor kinds for
// core.Config.Kinds. A plugin that cannot be loaded is refused (logged,
// reported to Events) and left out; Load itself fails only when the folder
// cannot be read. Call it once.
func (h *Host) Load(ctx context.Context) ([]sdk.Factor, error) {
	if h.cfg.Dir == "" {
		return nil, nil
	}
	found, err := discover(h.cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("plugins: reading %s: %w", h.cfg.Dir, err)
	}
	pinned := map[string]PluginConfig{}
	for _, p := range h.cfg.Plugins {
		pinned[p.Name] = p
	}
	for _, name := range found {
		if _, ok := pinned[name]; !ok {
			h.refuse(name, fmt.Sprintf("not pinned: add it to plugins.plugins with its sha256 (%s)", fileSum(filepath.Join(h.cfg.Dir, name))))
		}
	}
	var out []sdk.Factor
	kinds := map[string]string{}
	for _, p := range h.cfg.Plugins {
		// Every pinned plugin has its series from the start, so alerts on
		// increase() see the first restart or refusal.
		h.metrics.restarts.WithLabelValues(p.Name)
		h.metrics.refused.WithLabelValues(p.Name)
		m, err := h.load(ctx, p)
		if err != nil {
			h.refuse(p.Name, err.Error())
			continue
		}
		if other, dup := kinds[m.info.Kind]; dup {
			m.close()
			h.refuse(p.Name, fmt.Sprintf("its kind %q is already served by %s", m.info.Kind, other))
			continue
		}
		kinds[m.info.Kind] = p.Name
		out = append(out, m)
	}
	return out, nil
}

// load checks one pinned binary, starts it and asks what it is.
func (h *Host) load(ctx context.Context, p PluginConfig) (*managed, error) {
	path := filepath.Join(h.cfg.Dir, p.Name)
	want, _ := parseSum(p.SHA256)
	got, err := sumFile(path)
	if err != nil {
		return nil, fmt.Errorf("pinned but not readable: %w", err)
	}
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return nil, fmt.Errorf("checksum mismatch: the binary's sha256 is %x, the config pins %x (modified or replaced?)", got, want)
	}
	m := &managed{h: h, name: p.Name, path: path, sum: want, timeout: p.timeout(), procs: p.procs(),
		log: h.log.With("plugin", p.Name)}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, errors.New("the host is closed")
	}
	h.plugins = append(h.plugins, m)
	h.mu.Unlock()
	if err := m.describe(ctx); err != nil {
		m.close()
		return nil, err
	}
	m.log.Info("plugin loaded", "kind", m.info.Kind, "version", m.info.Version, "sha256", hex.EncodeToString(want))
	return m, nil
}

// refuse logs and reports a binary that will not run.
func (h *Host) refuse(name, reason string) {
	h.log.Error("plugin refused", "plugin", name, "reason", reason)
	h.metrics.refused.WithLabelValues(name).Inc()
	h.events.PluginRefused(name, reason)
}

// Close stops every plugin process and waits for restarts in progress.
func (h *Host) Close() error {
	h.mu.Lock()
	h.closed = true
	plugins := h.plugins
	h.mu.Unlock()
	for _, m := range plugins {
		m.close()
	}
	h.wg.Wait()
	return nil
}

// goBackground runs fn unless the host is closed.
func (h *Host) goBackground(fn func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.wg.Add(1)
	go func() { defer h.wg.Done(); fn() }()
}

// kill stops a plugin process in the background (go-plugin's Kill waits
// up to 2 s for a graceful exit), or at once when the host is closing.
func (h *Host) kill(c *plugin.Client) {
	h.mu.Lock()
	closed := h.closed
	if !closed {
		h.wg.Add(1)
	}
	h.mu.Unlock()
	if closed {
		c.Kill()
		return
	}
	go func() { defer h.wg.Done(); c.Kill() }()
}

// discover lists the plugin binaries in dir: regular files named
// keyfleet-plugin-*, sorted.
func discover(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), Prefix) || e.IsDir() {
			continue
		}
		names = append(names, e.Name())
	}
	return names, nil
}

func sumFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// fileSum is a checksum for a log line: hex, or why there is none.
func fileSum(path string) string {
	b, err := sumFile(path)
	if err != nil {
		return "unreadable: " + err.Error()
	}
	return "sha256 " + hex.EncodeToString(b)
}
