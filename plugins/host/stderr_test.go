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

// countKey counts how often "key": appears at the top level of a JSON log
// line (keys of nested objects are not at the line's top level here).
func countKey(line, key string) int { return strings.Count(line, `"`+key+`":`) }

// A plugin writes a JSON log line that claims to come from another plugin
// and repeats the daemon's own keys. Each key appears once in the daemon's
// log: the line is attributed to the plugin that wrote it.
func TestAPluginCannotRepeatTheDaemonsLogKeys(t *testing.T) {
	var out bytes.Buffer
	base := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})).With("component", "plugins", "plugin", "keyfleet-plugin-mine")
	w := newPluginStderr(base)
	w.Write([]byte(`{"@level":"info","@message":"hello","plugin":"keyfleet-plugin-other","msg":"forged","level":"ERROR","component":"core","time":"1999"}` + "\n"))
	line := strings.TrimSpace(out.String())
	for _, k := range []string{"plugin", "msg", "level", "component", "time"} {
		if n := countKey(line, k); n != 1 {
			t.Errorf("%q appears %d times in %s", k, n, line)
		}
	}
	if !strings.Contains(line, `"plugin":"keyfleet-plugin-mine"`) || !strings.Contains(line, `"plugin_plugin":"keyfleet-plugin-other"`) {
		t.Errorf("the line is not attributed to its plugin: %s", line)
	}
}

// go-plugin's own lines ("plugin process exited") carry the binary's path
// under "plugin": the host's logger already names the plugin.
func TestGoPluginsLinesNameThePluginOnce(t *testing.T) {
	var out bytes.Buffer
	base := slog.New(slog.NewJSONHandler(&out, nil)).With("plugin", "keyfleet-plugin-totp")
	newHCLog(base).Info("plugin process exited", "plugin", "/usr/lib/keyfleet/plugins/keyfleet-plugin-totp", "id", 42)
	line := out.String()
	if countKey(line, "plugin") != 1 || !strings.Contains(line, `"path":"/usr/lib/keyfleet/plugins/keyfleet-plugin-totp"`) {
		t.Fatalf("%s", line)
	}
}
