package host

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestPluginStderrParsesWhatever(t *testing.T) {
	var out bytes.Buffer
	w := newPluginStderr(slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug - 4})))
	lines := []string{
		`{"@level":"info","@message":"plain","@timestamp":"2026-11-27T10:00:00.000000Z","count":3}`,
		`{"@message":1,"@level":"error"}`,
		`{"@level":[],"@message":{"x":1}}`,
		`{"@timestamp":false}`,
		`not json at all`,
		"\xff\xfe invalid utf-8",
		`[1,2,3]`,
		`panic: boom`,
		`goroutine 1 [running]:`,
	}
	for _, l := range lines {
		// go-plugin writes a line, then its newline, in two calls.
		w.Write([]byte(l))
		w.Write([]byte("\n"))
	}
	w.Write([]byte(strings.Repeat("x", 3*maxPluginLine)))
	got := out.String()
	for _, want := range []string{
		`"level":"INFO","msg":"plain","count":3`,
		`"level":"ERROR","msg":"plugin log line","message":1`,
		`"level":"DEBUG","msg":"plugin log line","message":{"x":1}`,
		`"msg":"not json at all"`,
		`"level":"ERROR","msg":"panic: boom"`,
		`"level":"ERROR","msg":"goroutine 1 [running]:"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %s in:\n%s", want, got)
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(got), "\n") {
		if len(l) > maxPluginLine+200 {
			t.Errorf("a log record of %d bytes; lines are capped at %d", len(l), maxPluginLine)
		}
	}
}

func FuzzPluginStderr(f *testing.F) {
	f.Add([]byte(`{"@message":1}` + "\n"))
	f.Add([]byte("{\"@level\":\"warn\",\"@message\":\"m\",\"k\":[1,{}]}\npartial"))
	f.Fuzz(func(t *testing.T, b []byte) {
		w := newPluginStderr(slog.New(slog.DiscardHandler))
		w.Write(b)
		w.Write([]byte("\n"))
	})
}
