package web_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// axe-core, the accessibility checker, is installed by scripts/deps.sh
// (make test runs it) with npm into the user's cache folder, never into
// the repository; the version is pinned there. The tests ask the script
// for it, which installs it the first time if npm is there.
var axe struct {
	once   sync.Once
	source string
	err    string // why it cannot be had
}

func loadAxe() {
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "deps.sh"))
	if err != nil {
		axe.err = err.Error()
		return
	}
	var stderr bytes.Buffer
	cmd := exec.Command("bash", script, "axe")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		axe.err = strings.TrimSpace(stderr.String() + " " + err.Error())
		return
	}
	b, err := os.ReadFile(strings.TrimSpace(string(out)))
	if err != nil {
		axe.err = err.Error()
		return
	}
	axe.source = string(b)
}

// needAxe returns axe-core's script, or fails the test saying how to
// install it: a missing checker fails, it never skips.
func needAxe(t testing.TB) string {
	t.Helper()
	axe.once.Do(loadAxe)
	if axe.source == "" {
		t.Fatalf("the accessibility check needs axe-core, which scripts/deps.sh installs with npm (apt-get install npm; then scripts/deps.sh axe): %s", axe.err)
	}
	return axe.source
}

// TestTheAccessibilityCheckerIsInstalled fails at once, rather than
// after the browser walk, on a machine where axe-core cannot be had.
func TestTheAccessibilityCheckerIsInstalled(t *testing.T) {
	if testing.Short() {
		t.Skip("the browser tests, which run the checker, do not run with -short")
	}
	if src := needAxe(t); !strings.Contains(src, "axe.run") && !strings.Contains(src, "axe-core") {
		t.Fatalf("the file scripts/deps.sh named is not axe-core (%d bytes)", len(src))
	}
}

// checkA11y runs axe-core's WCAG 2 A and AA rules on the page. The script
// is injected through DevTools, which the page's CSP does not govern.
func (b *browser) checkA11y(page string) {
	b.t.Helper()
	eval[bool](b, needAxe(b.t)+";true")
	found := eval[[]string](b, `axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})
		.then(r => r.violations.map(v => v.id + ": " + v.help + " at " + v.nodes.map(n => n.target.join(" ")).slice(0, 3).join(", ")))`)
	if len(found) > 0 {
		b.t.Errorf("accessibility problems on %s:\n%s", page, strings.Join(found, "\n"))
	}
}
