package web_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestAMachineWithoutTheBrowserToolsFailsTheTests runs this test binary
// again on a PATH that has bash only (no Chromium, no npm) and an empty
// cache folder: the browser tests and the accessibility check must fail,
// naming the Debian package to install, rather than skip and pass.
func TestAMachineWithoutTheBrowserToolsFailsTheTests(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal("bash is not installed: apt-get install bash")
	}
	for _, tc := range []struct{ name, run, want string }{
		{"without Chromium", "^TestBrowser$", "apt-get install chromium"},
		{"without Chromium, the web companion", "^TestTheWebCompanion$", "apt-get install chromium"},
		{"without npm to install axe-core", "^TestTheAccessibilityCheckerIsInstalled$", "apt-get install npm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin, home := t.TempDir(), t.TempDir()
			if err := os.Symlink(bash, filepath.Join(bin, "bash")); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "-test.run="+tc.run, "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), "PATH="+bin, "HOME="+home, "XDG_CACHE_HOME="+filepath.Join(home, "cache"))
			out, err := cmd.CombinedOutput()
			if _, failed := err.(*exec.ExitError); !failed {
				t.Fatalf("the run did not fail (%v):\n%s", err, out)
			}
			if !strings.Contains(string(out), "--- FAIL") || !strings.Contains(string(out), tc.want) || strings.Contains(string(out), "--- SKIP") {
				t.Fatalf("want a failure that says %q, no skip:\n%s", tc.want, out)
			}
		})
	}
}
