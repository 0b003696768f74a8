package sdk

import (
	"io"
	"log/slog"
	"os"
	"strings"
)

// Logger returns a logger for a plugin's own diagnostics. Its lines go to
// the plugin's stderr in the JSON form the host reads, and reach the
// daemon's log under the plugin's name at the same level.
//
// Never log state, responses, sessions, seeds or codes: the host keeps
// those out of its log, and a plugin must too.
func Logger() *slog.Logger { return newLogger(stderr) }

// stderr is the process's stderr as it was at start-up: go-plugin's Serve
// later points os.Stderr at a pipe the host discards, while the original
// is the one the host reads log lines from.
var stderr = os.Stderr

// hclogTime is the timestamp layout the host's log reader expects.
const hclogTime = "2006-01-02T15:04:05.000000Z07:00"

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				return slog.String("@timestamp", a.Value.Time().Format(hclogTime))
			case slog.LevelKey:
				return slog.String("@level", strings.ToLower(a.Value.Any().(slog.Level).String()))
			case slog.MessageKey:
				return slog.String("@message", a.Value.String())
			}
			return a
		},
	}))
}
