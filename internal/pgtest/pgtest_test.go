package pgtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// TestAClusterWhoseTestProcessDiedIsStoppedByTheNextStart: a test binary
// killed before its Stop ran leaves its cluster running; the next Start
// anywhere stops it and removes its folder, and leaves a cluster whose
// test process lives.
func TestAClusterWhoseTestProcessDiedIsStoppedByTheNextStart(t *testing.T) {
	orphan, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer orphan.Stop()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(orphan.dir, ownerFile), []byte(strconv.Itoa(gone.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	live, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer live.Stop()
	if _, err := os.Stat(orphan.dir); !os.IsNotExist(err) {
		t.Fatalf("the orphan's folder %s is still there: %v", orphan.dir, err)
	}
	if out, err := exec.Command("pgrep", "-f", "postgres -D "+orphan.data()).Output(); err == nil {
		t.Fatalf("the orphan's server still runs: %s", out)
	}
	third, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer third.Stop()
	if ok, err := live.HasDatabase("postgres"); err != nil || !ok {
		t.Fatalf("a cluster whose test process lives was stopped: %v %v", ok, err)
	}
}
