package host_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/plugins/host"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

func TestConfigValidate(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	p := func(name, sha string, timeout time.Duration) host.PluginConfig {
		return host.PluginConfig{Name: name, SHA256: sha, Timeout: host.Duration{Duration: timeout}}
	}
	tests := []struct {
		name string
		cfg  host.Config
		want string // substring of the error; empty: valid
	}{
		{"the zero config is valid and loads nothing", host.Config{}, ""},
		{"a pinned plugin is valid", host.Config{Dir: "/p", Plugins: []host.PluginConfig{p("keyfleet-plugin-totp", sum, 0)}}, ""},
		{"an upper-case checksum is accepted", host.Config{Dir: "/p", Plugins: []host.PluginConfig{p("keyfleet-plugin-totp", strings.ToUpper(sum), 0)}}, ""},
		{"a relative dir is refused", host.Config{Dir: "plugins"}, "absolute"},
		{"plugins without a dir are refused", host.Config{Plugins: []host.PluginConfig{p("keyfleet-plugin-totp", sum, 0)}}, "dir is required"},
		{"a name without the prefix is refused", host.Config{Dir: "/p", Plugins: []host.PluginConfig{p("totp", sum, 0)}}, "name must be"},
		{"a name with a slash is refused", host.Config{Dir: "/p", Plugins: []host.PluginConfig{p("keyfleet-plugin-../x", sum, 0)}}, "name must be"},
		{"a short checksum is refused", host.Config{Dir: "/p", Plugins: []host.PluginConfig{p("keyfleet-plugin-totp", "abc", 0)}}, "64 hex digits"},
		{"a plugin listed twice is refused", host.Config{Dir: "/p", Plugins: []host.PluginConfig{p("keyfleet-plugin-a", sum, 0), p("keyfleet-plugin-a", sum, 0)}}, "listed twice"},
		{"a negative timeout is refused", host.Config{Dir: "/p", Plugins: []host.PluginConfig{p("keyfleet-plugin-a", sum, -time.Second)}}, "timeout"},
		{"an hour's timeout is refused", host.Config{Dir: "/p", Plugins: []host.PluginConfig{p("keyfleet-plugin-a", sum, time.Hour)}}, "timeout"},
		{"negative procs are refused", host.Config{Dir: "/p", Plugins: []host.PluginConfig{{Name: "keyfleet-plugin-a", SHA256: sum, Procs: -1}}}, "procs -1 must be"},
		{"a thousand procs are refused", host.Config{Dir: "/p", Plugins: []host.PluginConfig{{Name: "keyfleet-plugin-a", SHA256: sum, Procs: 1000}}}, "procs 1000 must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestBinariesThatMayNotRunAreRefused(t *testing.T) {
	dir := t.TempDir()
	good := buildInto(t, dir, "good", "flaky", current)
	twin := buildInto(t, dir, "twin", "flaky", current)                                                  // same kind as good
	old := buildInto(t, dir, "old", "old", "99")                                                         // a protocol version the host does not know
	legacy := buildInto(t, dir, "legacy", "legacy", "1")                                                 // built against an SDK that knew version 1 only
	copyFile(t, filepath.Join(dir, "keyfleet-plugin-good"), filepath.Join(dir, "keyfleet-plugin-stray")) // not pinned
	copyFile(t, filepath.Join(dir, "keyfleet-plugin-good"), filepath.Join(dir, "keyfleet-plugin-changed"))
	f, _ := os.OpenFile(filepath.Join(dir, "keyfleet-plugin-changed"), os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.Write([]byte("tampered"))
	_ = f.Close()
	r := start(t, host.Config{Dir: dir, Plugins: []host.PluginConfig{
		{Name: "keyfleet-plugin-good", SHA256: good}, {Name: "keyfleet-plugin-twin", SHA256: twin},
		{Name: "keyfleet-plugin-old", SHA256: old}, {Name: "keyfleet-plugin-changed", SHA256: good},
		{Name: "keyfleet-plugin-missing", SHA256: good}, {Name: "keyfleet-plugin-legacy", SHA256: legacy},
	}})
	tests := []struct{ name, plugin, reason string }{
		{"an unpinned binary is refused", "keyfleet-plugin-stray", "not pinned"},
		{"a modified binary is refused", "keyfleet-plugin-changed", "checksum mismatch"},
		{"a pinned binary that is missing is refused", "keyfleet-plugin-missing", "not readable"},
		{"a binary speaking another protocol version is refused", "keyfleet-plugin-old", "version"},
		{"a second plugin for the same kind is refused", "keyfleet-plugin-twin", "already served"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.events.refusal(tt.plugin); !strings.Contains(got, tt.reason) {
				t.Errorf("refusal reason %q, want it to mention %q", got, tt.reason)
			}
			if !strings.Contains(r.log.String(), `"msg":"plugin refused","plugin":"`+tt.plugin+`"`) {
				t.Errorf("no log line refusing %s:\n%s", tt.plugin, r.log)
			}
			if r.counter("keyfleet_plugin_refused_total", tt.plugin) != 1 {
				t.Error("keyfleet_plugin_refused_total not counted")
			}
		})
	}
	t.Run("the pinned plugins still load and work, in either protocol version", func(t *testing.T) {
		if len(r.kinds) != 2 {
			t.Fatalf("%d kinds loaded, want 2", len(r.kinds))
		}
		for _, k := range []string{"flaky", "legacy"} {
			if res, err := verify(r.kind(t, k), "ok"); err != nil || !res.OK {
				t.Fatalf("%s: OK=%v err=%v", k, res.OK, err)
			}
		}
	})
}

// current is the protocol version this SDK's plugins speak.
var current = strconv.Itoa(sdk.ProtocolVersion)

// onePlugin starts a host with the test plugin pinned under timeout,
// speaking protocol version v (default: the newest).
func onePlugin(t *testing.T, timeout time.Duration, v ...string) (*rig, sdk.Factor, string) {
	dir := t.TempDir()
	sum := buildInto(t, dir, "flaky", "flaky", append(v, current)[0])
	r := start(t, host.Config{Dir: dir, Plugins: []host.PluginConfig{
		{Name: "keyfleet-plugin-flaky", SHA256: sum, Timeout: host.Duration{Duration: timeout}}}})
	return r, r.kind(t, "flaky"), dir
}

func TestAPluginThatFailsMidCallIsRestarted(t *testing.T) {
	tests := []struct {
		name     string
		response string
		timeout  time.Duration
		also     error // what else the error wraps
	}{
		{"a plugin that crashes during verification is restarted", "crash", 5 * time.Second, nil},
		{"a plugin that hangs past its timeout is restarted", "hang", 500 * time.Millisecond, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		for _, v := range []string{"1", current} {
			t.Run("v"+v+"/"+tt.name, func(t *testing.T) { failMidCall(t, v, tt.response, tt.timeout, tt.also) })
		}
	}
}

// failMidCall makes a plugin speaking protocol version v fail during a
// verification (response "crash" or "hang") and checks that the call
// fails as unavailable, wrapping also, and that the next call reaches a
// restarted process.
func failMidCall(t *testing.T, v, response string, timeout time.Duration, also error) {
	r, f, _ := onePlugin(t, timeout, v)
	if res, err := verify(f, "ok"); err != nil || !res.OK || string(res.State) != string(secretState)+"+" {
		t.Fatalf("before: OK=%v err=%v", res.OK, err)
	}
	began := time.Now()
	_, err := verify(f, response)
	if !errors.Is(err, sdk.ErrUnavailable) || (also != nil && !errors.Is(err, also)) {
		t.Fatalf("the call in flight: err = %v, want sdk.ErrUnavailable", err)
	}
	if took := time.Since(began); took > timeout+2*time.Second {
		t.Errorf("the failed call took %s", took)
	}
	if res, err := verify(f, "ok"); err != nil || !res.OK || string(res.State) != string(secretState)+"+" {
		t.Fatalf("the next call: OK=%v err=%v", res.OK, err)
	}
	if r.events.restarts() != 1 || r.counter("keyfleet_plugin_restarts_total", "keyfleet-plugin-flaky") != 1 {
		t.Errorf("restarts: %d events, metric %v; want 1", r.events.restarts(), r.counter("keyfleet_plugin_restarts_total", "keyfleet-plugin-flaky"))
	}
}

func TestConcurrentCallsSurviveACrash(t *testing.T) {
	r, f, _ := onePlugin(t, 5*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp := "ok"
			if i == 10 {
				resp = "crash"
			}
			if _, err := verify(f, resp); err != nil && !errors.Is(err, sdk.ErrUnavailable) {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a call failed with %v, want success or sdk.ErrUnavailable", err)
	}
	if res, err := verify(f, "ok"); err != nil || !res.OK {
		t.Fatalf("after the crash: OK=%v err=%v", res.OK, err)
	}
	if r.events.restarts() < 1 {
		t.Error("no restart reported")
	}
}

func TestABinaryChangedAfterLoadingIsRefusedAtRestart(t *testing.T) {
	r, f, dir := onePlugin(t, 5*time.Second)
	path := filepath.Join(dir, "keyfleet-plugin-flaky")
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path+".new", append(b, "tampered"...), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
	if _, err := verify(f, "crash"); !errors.Is(err, sdk.ErrUnavailable) {
		t.Fatalf("crash: err = %v", err)
	}
	_, err := verify(f, "ok")
	if !errors.Is(err, sdk.ErrUnavailable) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("after the swap: err = %v, want a refusal", err)
	}
	if !strings.Contains(r.events.refusal("keyfleet-plugin-flaky"), "checksum") {
		t.Errorf("no checksum refusal reported: %v", r.events.refused)
	}
}

func TestPluginLogLinesReachTheDaemonLog(t *testing.T) {
	r, f, _ := onePlugin(t, 5*time.Second)
	if _, err := verify(f, "log"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(r.log.String(), "hello from the plugin") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, line := range strings.Split(r.log.String(), "\n") {
		if strings.Contains(line, "hello from the plugin") {
			if !strings.Contains(line, `"plugin":"keyfleet-plugin-flaky"`) || !strings.Contains(line, `"level":"INFO"`) || !strings.Contains(line, `"pid":`) {
				t.Errorf("the plugin's line lacks its name, level or fields: %s", line)
			}
			return
		}
	}
	t.Fatalf("the plugin's log line did not arrive:\n%s", r.log)
}

// A plugin runs on the threads its entry gives it (GOMAXPROCS, one by
// default) and sees none of the daemon's environment: an attacker who
// swaps nothing but can read a plugin's environment learns no key.
func TestAPluginGetsItsProcsAndNothingOfTheDaemonsEnvironment(t *testing.T) {
	t.Setenv("KEYFLEET_STORE_KEY", "not-for-plugins")
	dir := t.TempDir()
	sum := buildInto(t, dir, "flaky", "flaky", current)
	tests := []struct {
		name  string
		procs int
		want  string
	}{
		{"no procs set: one thread", 0, "gomaxprocs=1"},
		{"procs 3: three threads", 3, "gomaxprocs=3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := start(t, host.Config{Dir: dir, Plugins: []host.PluginConfig{
				{Name: "keyfleet-plugin-flaky", SHA256: sum, Procs: tt.procs}}})
			res, err := verify(r.kind(t, "flaky"), "env")
			if err != nil || !res.OK {
				t.Fatalf("env: OK=%v err=%v", res.OK, err)
			}
			env := strings.Fields(string(res.State))
			if env[0] != tt.want {
				t.Errorf("the plugin runs with %s, want %s", env[0], tt.want)
			}
			for _, name := range env[1:] {
				if name == "KEYFLEET_STORE_KEY" {
					t.Errorf("the plugin's environment holds the daemon's %s", name)
				}
			}
		})
	}
}
