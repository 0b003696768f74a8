package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckConfigOnWhatInitWrote: the file init writes passes
// check-config; a file with mistakes fails with each on its own line.
func TestCheckConfigOnWhatInitWrote(t *testing.T) {
	dir := initData(t)
	file := filepath.Join(dir, "keyfleetd.yaml")
	out, err := exec.Command(keyfleetd, "check-config", file, "--data", dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), file+": ok") {
		t.Fatalf("the file init wrote: %v\n%s", err, out)
	}
	for _, section := range []string{"attestation:", "plugins:", "fido2:", "events:", "web:", "verify:", "breakglass:", "store:"} {
		if b, _ := os.ReadFile(file); !strings.Contains(string(b), "\n"+section) {
			t.Errorf("init wrote no %s section", section)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("listen: 127.0.0.1:8443\nverify:\n  max_failures: lots\nweb:\n  orign: https://keyfleet.example.org\n"), 0o600)
	cmd := exec.Command(keyfleetd, "check-config", bad)
	out, err = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1\n%s", err, out)
	}
	for _, want := range []string{bad + ":3: verify.max_failures: want a whole number", bad + `:5: web.orign: unknown setting; did you mean "origin"?`, "2 problem(s)"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("want %q in:\n%s", want, out)
		}
	}
}
