package host

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

// maxPluginLine caps one line of a plugin's stderr in the daemon's log.
const maxPluginLine = 4 << 10

// pluginStderr turns what a plugin process writes to stderr into log
// records under the plugin's name. Plugins built with sdk.Serve write
// hclog JSON lines ({"@level", "@message", "@timestamp", fields}); other
// lines are logged at debug level, or at error level from a Go panic on.
//
// go-plugin has a parser of its own for these lines, but it asserts the
// types of "@message" and "@level" and so panics the whole daemon on a
// line such as {"@message": 1}. The host therefore silences that parser
// (see slogAdapter.Named) and parses here, where no input can panic.
type pluginStderr struct {
	log *slog.Logger

	mu      sync.Mutex
	buf     []byte
	inPanic bool
}

func newPluginStderr(l *slog.Logger) *pluginStderr { return &pluginStderr{log: l} }

// Write buffers p and logs every complete line. go-plugin writes a line
// and its newline in separate calls, and long lines in pieces.
func (w *pluginStderr) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.line(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > maxPluginLine {
		// A line too long to keep: log what we have and drop the rest of
		// it as it arrives.
		w.line(w.buf)
		w.buf = w.buf[:0]
	}
	if len(w.buf) == 0 {
		w.buf = nil
	}
	return len(p), nil
}

func (w *pluginStderr) line(b []byte) {
	b = bytes.TrimRight(b, "\r")
	if len(bytes.TrimSpace(b)) == 0 {
		return
	}
	if len(b) > maxPluginLine {
		b = b[:maxPluginLine]
	}
	ctx := context.Background()
	if msg, level, attrs, ok := parseHCLogJSON(b); ok {
		w.log.Log(ctx, level, msg, attrs...)
		return
	}
	s := strings.ToValidUTF8(string(b), string(utf8.RuneError))
	switch {
	case strings.HasPrefix(s, "panic: "), strings.HasPrefix(s, "fatal error: "):
		w.inPanic = true
		w.log.Error(s)
	case w.inPanic:
		w.log.Error(s)
	default:
		w.log.Debug(s)
	}
}

// parseHCLogJSON reads one hclog JSON line. Fields of unexpected types
// are logged as they are rather than trusted; ok is false for anything
// that is not a JSON object.
func parseHCLogJSON(b []byte) (msg string, level slog.Level, attrs []any, ok bool) {
	if len(b) == 0 || b[0] != '{' {
		return "", 0, nil, false
	}
	var raw map[string]any
	if json.Unmarshal(b, &raw) != nil {
		return "", 0, nil, false
	}
	level = slog.LevelDebug
	if s, isStr := raw["@level"].(string); isStr {
		level = levelOf(s)
	}
	msg, isStr := raw["@message"].(string)
	if !isStr {
		msg = "plugin log line"
		if v, has := raw["@message"]; has {
			attrs = append(attrs, "message", v)
		}
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		switch k {
		case "@level", "@message", "@timestamp", "@module", "@caller":
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		attrs = append(attrs, k, raw[k])
	}
	return msg, level, renameKeys(attrs, reservedKeys), true
}

func levelOf(s string) slog.Level {
	switch strings.ToLower(s) {
	case "trace":
		return slog.LevelDebug - 4
	case "debug":
		return slog.LevelDebug
	case "info":
		return slog.LevelInfo
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelDebug
}
