package cli

import (
	"runtime/debug"
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/daemon"
)

func TestInitTellsEachFounderHowToEnrolTheirFirstKey(t *testing.T) {
	// keyfleet-agent enroll asks for a pass when --code does not give it;
	// it has no --pass flag, so init must not name one.
	var out strings.Builder
	printInit(&out, daemon.InitResult{Dir: "var/keyfleet", AdminUser: "admin",
		FounderPassFiles: map[string]string{"admin": "var/keyfleet/bootstrap/admin.pass", "bob": "var/keyfleet/bootstrap/bob.pass"}})
	for _, who := range []string{"admin", "bob"} {
		line := "var/keyfleet/bootstrap/" + who + ".pass (for " + who + " alone: their first security key, 72h, at /welcome or with keyfleet-agent enroll, which asks for it)"
		if !strings.Contains(out.String(), line) {
			t.Errorf("init's output lacks %q:\n%s", line, out.String())
		}
	}
	if strings.Contains(out.String(), "--pass") {
		t.Errorf("init names a flag keyfleet-agent enroll does not have:\n%s", out.String())
	}
}

// keyfleetd sizes the Go runtime from its configuration, and an operator's
// GOMEMLIMIT or GOGC in the environment wins over it.
func TestServeSetsTheRuntimeUnlessTheEnvironmentDoes(t *testing.T) {
	limit, gc := debug.SetMemoryLimit(-1), debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetMemoryLimit(limit); debug.SetGCPercent(gc) })
	var cfg daemon.Config
	cfg.Store.Memory = 512 << 20
	tests := []struct {
		name      string
		env       map[string]string
		wantLimit int64
		wantGC    int
	}{
		{"nothing in the environment: store.memory and 64 MiB, GOGC 400", nil, 576 << 20, daemon.GCPercent},
		{"GOMEMLIMIT in the environment wins", map[string]string{"GOMEMLIMIT": "1GiB"}, 123 << 20, daemon.GCPercent},
		{"GOGC in the environment wins", map[string]string{"GOGC": "50"}, 576 << 20, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetMemoryLimit(123 << 20) // what the runtime would have read from GOMEMLIMIT
			debug.SetGCPercent(100)
			setRuntime(cfg, func(k string) string { return tt.env[k] })
			if got := debug.SetMemoryLimit(-1); got != tt.wantLimit {
				t.Errorf("memory limit %d MiB, want %d MiB", got>>20, tt.wantLimit>>20)
			}
			if got := debug.SetGCPercent(100); got != tt.wantGC {
				t.Errorf("GOGC %d, want %d", got, tt.wantGC)
			}
		})
	}
}
