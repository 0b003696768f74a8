package host

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"

	"github.com/keyfleet/keyfleet/plugins/sdk"
)

const (
	// startTimeout bounds a plugin's start-up and handshake.
	startTimeout = 10 * time.Second
	// retryAfter is how long calls fail fast after a start failed, so a
	// plugin that dies at start-up is not restarted in a tight loop.
	retryAfter = time.Second
)

// managed is one plugin binary: the sdk.Factor the daemon holds, and the
// process behind it, which it starts again after a crash or a hang.
type managed struct {
	h       *Host
	name    string
	path    string
	sum     []byte
	timeout time.Duration
	procs   int // the process's GOMAXPROCS
	log     *slog.Logger
	info    sdk.Info

	mu       sync.Mutex
	cur      *proc     // nil: no process running
	broken   bool      // the last process failed; the next start is a restart
	refused  string    // non-empty: the binary changed; never start again
	failedAt time.Time // when a start last failed
	isClosed bool
}

// proc is one running plugin process.
type proc struct {
	client *plugin.Client
	f      sdk.Factor
}

var _ sdk.Factor = (*managed)(nil)

// describe starts the process and records what the plugin says it is.
func (m *managed) describe(ctx context.Context) error {
	p, err := m.get()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	info, err := p.f.Describe(ctx)
	if err != nil {
		return fmt.Errorf("describing itself: %w", err)
	}
	if !kindRE.MatchString(info.Kind) {
		return fmt.Errorf("its kind name %q is not 1-32 of a-z 0-9 _ -", info.Kind)
	}
	m.info = info
	return nil
}

// get returns the running process, starting one when there is none.
// Returns an error wrapping sdk.ErrUnavailable when it cannot.
func (m *managed) get() (*proc, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.isClosed:
		return nil, fmt.Errorf("%w: plugin %s: the plugin host is shut down", sdk.ErrUnavailable, m.name)
	case m.refused != "":
		return nil, fmt.Errorf("%w: plugin %s was refused: %s", sdk.ErrUnavailable, m.name, m.refused)
	case m.cur != nil && !m.cur.client.Exited():
		return m.cur, nil
	case m.cur != nil:
		m.log.Warn("plugin process exited; restarting it")
		m.retire(m.cur)
	case time.Since(m.failedAt) < retryAfter:
		return nil, fmt.Errorf("%w: plugin %s failed to start; retrying shortly", sdk.ErrUnavailable, m.name)
	}
	p, err := m.start()
	if err != nil {
		m.failedAt = time.Now()
		if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
			m.refused = "checksum mismatch: the binary changed since it was pinned"
			m.h.refuse(m.name, m.refused)
			return nil, fmt.Errorf("%w: plugin %s was refused: %s", sdk.ErrUnavailable, m.name, m.refused)
		}
		m.log.Error("plugin failed to start", "error", err)
		return nil, fmt.Errorf("%w: plugin %s: %v", sdk.ErrUnavailable, m.name, err)
	}
	if m.broken {
		m.broken = false
		m.h.metrics.restarts.WithLabelValues(m.name).Inc()
		m.log.Info("plugin restarted")
		m.h.events.PluginRestarted(m.name)
	}
	m.cur = p
	return p, nil
}

// start runs the binary once: checksum (SecureConfig), handshake, AutoMTLS.
func (m *managed) start() (*proc, error) {
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: sdk.PluginSets(nil),
		Cmd:              pluginCommand(m.path, m.procs),
		Stderr:           newPluginStderr(m.log),
		SecureConfig:     &plugin.SecureConfig{Checksum: m.sum, Hash: sha256.New()},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		GRPCDialOptions:  sdk.DialOptions(),
		SkipHostEnv:      true,
		StartTimeout:     startTimeout,
		Logger:           newHCLog(m.log),
	})
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, err
	}
	raw, err := rpc.Dispense(sdk.PluginName)
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("dispensing %q: %w", sdk.PluginName, err)
	}
	f, ok := raw.(sdk.Factor)
	if !ok {
		client.Kill()
		return nil, fmt.Errorf("dispensed %T, not an sdk.Factor", raw)
	}
	return &proc{client: client, f: f}, nil
}

// retire drops p and kills it in the background. m.mu must be held.
func (m *managed) retire(p *proc) {
	if m.cur == p {
		m.cur = nil
		m.broken = true
	}
	m.h.kill(p.client)
}

// fail handles a process that crashed or hung during a call: it is
// killed, and a new one is started in the background.
func (m *managed) fail(p *proc, reason string) {
	m.mu.Lock()
	if m.cur != p {
		m.mu.Unlock()
		return // another call saw it first
	}
	m.log.Warn("plugin failed; restarting it", "reason", reason)
	m.retire(p)
	m.mu.Unlock()
	m.h.goBackground(func() { _, _ = m.get() })
}

// close stops the process for good.
func (m *managed) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.isClosed = true
	if m.cur != nil {
		m.cur.client.Kill()
		m.cur = nil
	}
}

// call runs fn against the running process under the plugin's timeout and
// turns a crash or a hang into an error wrapping sdk.ErrUnavailable.
func call[T any](ctx context.Context, m *managed, op string, fn func(context.Context, sdk.Factor) (T, error)) (T, error) {
	var zero T
	p, err := m.get()
	if err != nil {
		return zero, err
	}
	cctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	out, err := fn(cctx, p.f)
	switch {
	case err == nil:
		return out, nil
	case ctx.Err() != nil:
		return zero, err // the caller gave up; the plugin is not at fault
	case hung(cctx, err):
		m.fail(p, fmt.Sprintf("%s did not answer within %s", op, m.timeout))
		return zero, fmt.Errorf("%w: plugin %s did not answer %s within %s and is being restarted: %w",
			sdk.ErrUnavailable, m.name, op, m.timeout, context.DeadlineExceeded)
	case crashed(p, err):
		m.fail(p, fmt.Sprintf("the process died during %s", op))
		return zero, fmt.Errorf("%w: plugin %s stopped during %s and is being restarted", sdk.ErrUnavailable, m.name, op)
	}
	return zero, err
}

// hung reports whether the call ran out of the plugin's own time. gRPC's
// deadline timer may fire a moment before the context's, so the error
// counts as well as the context.
func hung(cctx context.Context, err error) bool {
	return errors.Is(cctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)
}

// crashed tells a dead process from an error the plugin returned.
func crashed(p *proc, err error) bool {
	var re *sdk.RemoteError
	if errors.As(err, &re) && re.Code == codes.Unavailable {
		return true // the transport failed; a plugin's own ErrUnavailable travels as Aborted
	}
	return p.client.Exited()
}
