package host

import (
	"context"
	"io"
	"log"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// slogAdapter is an hclog.Logger that writes to a slog.Logger. go-plugin
// logs through hclog, and so does a plugin process: the lines it writes to
// stderr are parsed by go-plugin and reach this adapter with the level and
// fields the plugin gave them.
type slogAdapter struct {
	l     *slog.Logger
	name  string
	args  []any
	level hclog.Level
}

var _ hclog.Logger = (*slogAdapter)(nil)

// newHCLog returns an hclog.Logger over l whose level follows what l's
// handler accepts.
func newHCLog(l *slog.Logger) hclog.Logger {
	a := &slogAdapter{l: l, level: hclog.Off}
	for _, lv := range []hclog.Level{hclog.Error, hclog.Warn, hclog.Info, hclog.Debug, hclog.Trace} {
		if l.Enabled(context.Background(), toSlog(lv)) {
			a.level = lv
		}
	}
	return a
}

func toSlog(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	}
	return slog.LevelInfo
}

func (a *slogAdapter) Log(level hclog.Level, msg string, args ...any) {
	if a.level == hclog.Off {
		return // a silenced logger (see Named) writes nothing, whatever go-plugin asks
	}
	if level == hclog.Off || level == hclog.NoLevel {
		level = hclog.Info
	}
	l := a.l
	if a.name != "" {
		l = l.With("logger", a.name)
	}
	all := append(a.args[:len(a.args):len(a.args)], args...)
	l.Log(context.Background(), toSlog(level), msg, renameKeys(all, goPluginKeys)...)
}

// goPluginKeys are keys go-plugin logs with that the host's logger already
// carries: its "plugin" is the binary's path ("plugin process exited").
var goPluginKeys = map[string]string{"plugin": "path"}

// reservedKeys are keys the daemon's log lines carry themselves: a plugin's
// own attributes may not repeat them (a JSON line with two "plugin" keys
// is read differently by different tools, and a plugin could claim to be
// another). They are renamed with a plugin_ prefix.
var reservedKeys = map[string]string{
	"time": "plugin_time", "level": "plugin_level", "msg": "plugin_msg", "source": "plugin_source",
	"plugin": "plugin_plugin", "component": "plugin_component", "logger": "plugin_logger",
}

// renameKeys returns the key/value list args with the keys in rename
// replaced.
func renameKeys(args []any, rename map[string]string) []any {
	out := make([]any, len(args))
	copy(out, args)
	for i := 0; i+1 < len(out); i += 2 {
		if k, ok := out[i].(string); ok {
			if to, hit := rename[k]; hit {
				out[i] = to
			}
		}
	}
	return out
}

func (a *slogAdapter) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }
func (a *slogAdapter) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }
func (a *slogAdapter) Info(msg string, args ...any)  { a.Log(hclog.Info, msg, args...) }
func (a *slogAdapter) Warn(msg string, args ...any)  { a.Log(hclog.Warn, msg, args...) }
func (a *slogAdapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }

func (a *slogAdapter) IsTrace() bool { return a.level <= hclog.Trace }
func (a *slogAdapter) IsDebug() bool { return a.level <= hclog.Debug }
func (a *slogAdapter) IsInfo() bool  { return a.level <= hclog.Info }
func (a *slogAdapter) IsWarn() bool  { return a.level <= hclog.Warn }
func (a *slogAdapter) IsError() bool { return a.level <= hclog.Error }

func (a *slogAdapter) ImpliedArgs() []any { return a.args }

func (a *slogAdapter) With(args ...any) hclog.Logger {
	c := *a
	c.args = append(a.args[:len(a.args):len(a.args)], args...)
	return &c
}

func (a *slogAdapter) Name() string { return a.name }

// Named is how go-plugin gets the logger for a plugin's stderr lines (and
// for its stdio relay, which keyfleet does not use). The named logger is
// off, so that go-plugin's own line parser (which panics on some input)
// never runs and nothing reaches the log twice; the lines reach
// pluginStderr instead, through ClientConfig.Stderr.
func (a *slogAdapter) Named(name string) hclog.Logger {
	c := *a
	if c.name != "" {
		name = c.name + "." + name
	}
	c.name, c.level = name, hclog.Off
	return &c
}

func (a *slogAdapter) ResetNamed(name string) hclog.Logger {
	c := *a
	c.name = name
	return &c
}

// SetLevel is ignored: the slog handler decides.
func (a *slogAdapter) SetLevel(hclog.Level) {}

func (a *slogAdapter) GetLevel() hclog.Level { return a.level }

func (a *slogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

func (a *slogAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		a.Info(string(p))
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
