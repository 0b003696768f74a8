package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDependenciesDocListsEveryModule: docs/dependencies.md names every
// module keyfleet's packages and tests build with, at the version go.mod
// pins, and no module they no longer use.
func TestDependenciesDocListsEveryModule(t *testing.T) {
	root := filepath.Join("..", "..")
	cmd := exec.Command("go", "list", "-deps", "-test", "-f", "{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}}{{end}}{{end}}", "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	used := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if path, version, ok := strings.Cut(line, " "); ok {
			used[path] = version
		}
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "dependencies.md"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]string{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\| (\\S+) \\|").FindAllStringSubmatch(string(doc), -1) {
		listed[m[1]] = m[2]
	}
	for path, version := range used {
		switch v, ok := listed[path]; {
		case !ok:
			t.Errorf("docs/dependencies.md does not list %s %s: add it with its licence", path, version)
		case v != version:
			t.Errorf("docs/dependencies.md lists %s %s, go.mod has %s", path, v, version)
		}
	}
	for path := range listed {
		if _, ok := used[path]; !ok && path != "github.com/goreleaser/nfpm/v2" {
			t.Errorf("docs/dependencies.md lists %s, which nothing uses any more", path)
		}
	}
}
