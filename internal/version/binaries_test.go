package version_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryBinaryNamesItsCommit builds every keyfleet binary as make
// does and checks that --version and the version subcommand name the
// commit checked out: the go command's own stamp in a clone, make's
// stand-in in a git worktree.
func TestEveryBinaryNamesItsCommit(t *testing.T) {
	root := filepath.Join("..", "..")
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Fatalf("git is not installed (Debian package git): %v", err)
	}
	head, err := exec.Command(gitBin, "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-parse HEAD: %v (the test needs a git checkout)", err)
	}
	want := "commit " + strings.TrimSpace(string(head))[:12]
	ldflags, err := exec.Command(filepath.Join(root, "scripts", "ldflags.sh")).Output()
	if err != nil {
		t.Fatalf("scripts/ldflags.sh: %v", err)
	}
	out := t.TempDir()
	names := []string{"keyfleetd", "keyfleet", "keyfleet-agent", "keyfleet-vkey", "keyfleet-plugin-totp", "keyfleet-pam-helper"}
	args := []string{"build", "-trimpath", "-buildvcs=auto", "-ldflags", strings.TrimSpace(string(ldflags)), "-o", out + "/"}
	for _, n := range names {
		args = append(args, "./cmd/"+n)
	}
	build := exec.Command("go", args...)
	build.Dir = root
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	for _, n := range names {
		for _, arg := range []string{"--version", "version"} {
			t.Run(n+" "+arg, func(t *testing.T) {
				cmd := exec.Command(filepath.Join(out, n), arg)
				cmd.Env = append(os.Environ(), "KEYFLEET_CONFIG="+filepath.Join(t.TempDir(), "none.json"))
				b, err := cmd.CombinedOutput()
				line := strings.TrimSpace(string(b))
				if err != nil || !strings.HasPrefix(line, n+" v") || !strings.Contains(line, want) || !strings.Contains(line, "go1.") {
					t.Fatalf("%s %s: %v: %q, want %q and a version", n, arg, err, line, want)
				}
			})
		}
	}
}
