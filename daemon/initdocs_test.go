package daemon

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestTheInitTableNamesEveryFileInitWrites: docs/operations.md's table
// under "First start" lists every file keyfleetd init writes, with its
// mode, so that an operator knows what to take away, back up or delete.
// A file init starts writing without a row fails here.
func TestTheInitTableNamesEveryFileInitWrites(t *testing.T) {
	rows := initTable(t)
	work := t.TempDir()
	dir := filepath.Join(work, "data")
	if _, err := Init(context.Background(), InitOptions{Dir: dir, Admins: []string{"bob"}, Getenv: func(string) string { return "" }}); err != nil {
		t.Fatal(err)
	}
	generic := []struct{ re, row string }{
		{`^store/`, "DIR/store/"},
		{`^bootstrap/[a-z]+\.pass$`, "DIR/bootstrap/NAME.pass"},
		{`^breakglass/share-\d+-of-\d+\.txt$`, "DIR/breakglass/share-N-of-M.txt"},
	}
	check := func(path, row string) {
		mode, ok := rows[row]
		st, err := os.Stat(path)
		switch {
		case !ok:
			t.Errorf("init wrote %s, which the table in docs/operations.md has no row %q for", path, row)
		case err != nil:
			t.Error(err)
		case !strings.Contains(mode, fmt.Sprintf("%04o", st.Mode().Perm())):
			t.Errorf("%s has mode %04o; the table says %q", row, st.Mode().Perm(), mode)
		}
	}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		row := "DIR/" + rel
		for _, g := range generic {
			if regexp.MustCompile(g.re).MatchString(rel) {
				row = g.row
			}
		}
		if row != "DIR/store/" {
			check(path, row)
		} else if _, ok := rows[row]; !ok {
			t.Errorf("init made the store; the table has no row for DIR/store/")
		}
		return nil
	})
	check(dir+".checkpoint", "DIR.checkpoint")
	// With --postgres (a database this test does not start), init writes
	// the DSN beside the keys.
	if rel, _ := filepath.Rel(dir, postgresDSNPath(dir)); rows["DIR/"+rel] == "" {
		t.Errorf("init --postgres writes DIR/%s, which the table does not name", rel)
	}
}

// initTable reads the table of "First start": each path (a cell such as
// "`DIR/tls/cert.pem`, `key.pem`" names two) with its mode column.
func initTable(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "`keyfleetd init --data DIR` creates")
	end := strings.Index(text[start:], "\n\n`init` prints")
	if start < 0 || end < 0 {
		t.Fatal("docs/operations.md has no init table under First start")
	}
	rows := map[string]string{}
	for _, line := range strings.Split(text[start:start+end], "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.Contains(cells[1], "`DIR") {
			continue
		}
		folder := ""
		for _, name := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(cells[1], -1) {
			p := name[1]
			if strings.HasPrefix(p, "DIR") {
				folder = p[:strings.LastIndex(p, "/")+1]
			} else {
				p = folder + p
			}
			rows[p] = strings.TrimSpace(cells[2])
		}
	}
	return rows
}
