package web_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// axeVersion is the axe-core release the accessibility check runs. It is
// installed with npm into the user's cache folder (never into the repo)
// the first time the tests need it.
const axeVersion = "4.14.1"

var axe struct {
	once   sync.Once
	source string
	why    string // why the check cannot run
}

func loadAxe() {
	cache, err := os.UserCacheDir()
	if err != nil {
		axe.why = err.Error()
		return
	}
	dir := filepath.Join(cache, "keyfleet", "axe-core-"+axeVersion)
	file := filepath.Join(dir, "node_modules", "axe-core", "axe.min.js")
	if _, err := os.Stat(file); err != nil {
		out, err := exec.Command("npm", "install", "--prefix", dir, "--no-save", "--no-audit", "--no-fund",
			"--no-package-lock", "axe-core@"+axeVersion).CombinedOutput()
		if err != nil {
			axe.why = fmt.Sprintf("npm install axe-core@%s failed: %v: %s", axeVersion, err, out)
			return
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		axe.why = err.Error()
		return
	}
	axe.source = string(b)
}

// checkA11y runs axe-core's WCAG 2 A and AA rules on the page. The script
// is injected through DevTools, which the page's CSP does not govern.
func (b *browser) checkA11y(page string) {
	b.t.Helper()
	axe.once.Do(loadAxe)
	if axe.source == "" {
		b.t.Logf("accessibility check skipped: %s", axe.why)
		return
	}
	eval[bool](b, axe.source+";true")
	found := eval[[]string](b, `axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})
		.then(r => r.violations.map(v => v.id + ": " + v.help + " at " + v.nodes.map(n => n.target.join(" ")).slice(0, 3).join(", ")))`)
	if len(found) > 0 {
		b.t.Errorf("accessibility problems on %s:\n%s", page, strings.Join(found, "\n"))
	}
}
