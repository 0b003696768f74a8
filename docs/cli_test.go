package docs_test

// TestCLIExamplesRunAgainstARealKeyfleetd runs the shell examples of
// docs/cli.md, in order, against a keyfleetd it starts (binaries built from
// this tree, the TOTP plugin pinned, one file event sink), so that the
// examples cannot drift from the CLI.
//
// How cli.md's blocks are read:
//
//   - ```sh: a script. It runs with bash -euo pipefail and must exit 0.
//   - ```console: a transcript. Each "$ " line (with its "\" continuation
//     lines) runs; the lines after it, up to the next "$ " line, must appear
//     in its output in that order. Runs of spaces count as one, and "…"
//     matches any text within a line.
//   - <!-- doctest ... -->: hidden set-up, run like a sh block but not
//     shown to readers (for what the reader does by hand, like typing the
//     code an authenticator app shows).
//   - Words after the language set options: no-run skips the block (say
//     why in the text: it needs a hardware key, it never ends, …); exit=N
//     expects exit code N instead of 0 (for a console block, from each
//     command). Plain ``` blocks (synopses, output, files) never run.
//
// Blocks run in order in one working folder, with keyfleetd's data folder
// at var/keyfleet as `make run` makes it, HOME in that folder (so `keyfleet
// login` saves to its default place), the repository's testdata linked in,
// and jq and oathtool at hand. Shell variables with lower-case names that
// one block sets are seen by the next. The examples' address
// https://localhost:8443 (and https://keyfleet.example.com) is rewritten to
// this test's keyfleetd. To see each block as it runs: go test -v -run
// CLIExamples ./docs/.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// block is one runnable piece of cli.md.
type block struct {
	line    int    // where it starts in cli.md
	kind    string // sh, console or doctest
	text    string
	noRun   bool
	exit    int
	display string // how the test names it
}

func TestCLIExamplesRunAgainstARealKeyfleetd(t *testing.T) {
	for _, tool := range [][2]string{{"jq", "jq"}, {"oathtool", "oathtool"}, {"bash", "bash"}} {
		if _, err := exec.LookPath(tool[0]); err != nil {
			t.Fatalf("%s is not installed: apt-get install %s", tool[0], tool[1])
		}
	}
	blocks := parseBlocks(t, "cli.md")
	env := startEnv(t)
	ran := 0
	for _, b := range blocks {
		if b.noRun {
			t.Logf("cli.md:%d: %s block not run (no-run)", b.line, b.kind)
			continue
		}
		ran++
		if b.kind == "console" {
			env.runConsole(t, b)
		} else {
			env.runScript(t, b, b.text, b.exit)
		}
		if t.Failed() {
			return // later blocks build on this one
		}
	}
	if ran < 20 {
		t.Fatalf("only %d blocks of cli.md ran", ran)
	}
}

var fence = regexp.MustCompile("^```(\\w*)\\s*(.*)$")

// parseBlocks reads the sh, console and doctest blocks of a Markdown file.
func parseBlocks(t *testing.T, path string) []block {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	var out []block
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.TrimSpace(line) == "<!-- doctest" {
			start := i
			var body []string
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "-->"; i++ {
				body = append(body, lines[i])
			}
			out = append(out, block{line: start + 1, kind: "doctest", text: strings.Join(body, "\n")})
			continue
		}
		m := fence.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		start := i
		var body []string
		for i++; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
			body = append(body, lines[i])
		}
		if m[1] != "sh" && m[1] != "console" {
			continue
		}
		bl := block{line: start + 1, kind: m[1], text: strings.Join(body, "\n")}
		for _, opt := range strings.Fields(m[2]) {
			switch {
			case opt == "no-run":
				bl.noRun = true
			case strings.HasPrefix(opt, "exit="):
				bl.exit, _ = strconv.Atoi(strings.TrimPrefix(opt, "exit="))
			default:
				t.Fatalf("%s:%d: unknown block option %q (no-run, exit=N)", path, start+1, opt)
			}
		}
		out = append(out, bl)
	}
	return out
}

// docEnv is the working folder and the keyfleetd the examples talk to.
type docEnv struct {
	dir, bin, url string
	rewrite       *strings.Replacer
}

func startEnv(t *testing.T) *docEnv {
	t.Helper()
	e := &docEnv{dir: t.TempDir(), bin: t.TempDir()}
	build := exec.Command("go", "build", "-o", e.bin+"/", "../cmd/keyfleetd", "../cmd/keyfleet", "../cmd/keyfleet-plugin-totp")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building keyfleetd and keyfleet: %v\n%s", err, out)
	}
	repo, _ := filepath.Abs("..")
	os.Symlink(filepath.Join(repo, "testdata"), filepath.Join(e.dir, "testdata"))
	os.MkdirAll(filepath.Join(e.dir, "home"), 0o700)
	if out, err := e.command("keyfleetd init --data var/keyfleet").CombinedOutput(); err != nil {
		t.Fatalf("keyfleetd init: %v\n%s", err, out)
	}
	plugin, _ := os.ReadFile(filepath.Join(e.bin, "keyfleet-plugin-totp"))
	sum := sha256.Sum256(plugin)
	cfg := fmt.Sprintf("plugins:\n  dir: %s\n  plugins:\n    - {name: keyfleet-plugin-totp, sha256: %s}\nevents:\n  sinks:\n    - {name: archive, type: file, file: {path: %s}}\n",
		e.bin, hex.EncodeToString(sum[:]), filepath.Join(e.dir, "events.jsonl"))
	os.WriteFile(filepath.Join(e.dir, "var/keyfleet/keyfleetd.yaml"), []byte(cfg), 0o600)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	e.url = "https://localhost:" + port
	e.rewrite = strings.NewReplacer("https://localhost:8443", e.url, "https://127.0.0.1:8443", e.url, "https://keyfleet.example.com", e.url)
	e.serve(t, addr)
	return e
}

// serve starts keyfleetd and waits until it is ready.
func (e *docEnv) serve(t *testing.T, addr string) {
	t.Helper()
	var logs bytes.Buffer
	cmd := e.command("exec keyfleetd serve --data var/keyfleet --listen " + addr)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // readiness only
	for deadline := time.Now().Add(30 * time.Second); ; {
		select {
		case <-done:
			t.Fatalf("keyfleetd exited:\n%s", logs.String())
		default:
		}
		if resp, err := hc.Get("https://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("keyfleetd never became ready:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
}

// command is a bash command in the working folder with the examples'
// environment.
func (e *docEnv) command(script string) *exec.Cmd {
	return e.commandContext(context.Background(), script)
}

func (e *docEnv) commandContext(ctx context.Context, script string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = e.dir
	cmd.Env = []string{"PATH=" + e.bin + ":" + os.Getenv("PATH"), "HOME=" + filepath.Join(e.dir, "home"),
		"LANG=C.UTF-8", "TZ=UTC", "TERM=dumb"}
	cmd.Stdin = strings.NewReader("")
	return cmd
}

const stateFile = ".doc-state.sh"

// script wraps a block: the variables earlier blocks set, then the block,
// then the lower-case variables it leaves, for the next.
func script(body string, strict bool) string {
	var b strings.Builder
	b.WriteString("[ -f " + stateFile + " ] && source " + stateFile + "\n")
	if strict {
		b.WriteString("set -euo pipefail\n")
	}
	b.WriteString(body + "\n")
	b.WriteString("__rc=$?\nset +eu\nfor __v in $(compgen -v | grep -E '^[a-z][a-z0-9_]*$'); do declare -p \"$__v\"; done > " + stateFile + ".new && mv " + stateFile + ".new " + stateFile + "\nexit $__rc\n")
	return b.String()
}

// runScript runs a sh or doctest block.
func (e *docEnv) runScript(t *testing.T, b block, body string, wantExit int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := e.commandContext(ctx, script(e.rewrite.Replace(body), wantExit == 0)).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("cli.md:%d: %v", b.line, err)
	}
	t.Logf("cli.md:%d (%s):\n%s\n%s", b.line, b.kind, indent(body), indent(string(out)))
	if code != wantExit {
		t.Errorf("cli.md:%d: the %s block exited %d, want %d:\n%s\noutput:\n%s", b.line, b.kind, code, wantExit, indent(body), indent(string(out)))
	}
	return string(out)
}

// runConsole runs each $ command of a transcript and checks its output.
func (e *docEnv) runConsole(t *testing.T, b block) {
	t.Helper()
	for _, step := range transcript(b.text) {
		out := e.runScript(t, block{line: b.line, kind: "console"}, step.cmd, b.exit)
		want := make([]string, len(step.want))
		for i, w := range step.want {
			want[i] = e.rewrite.Replace(w)
		}
		if msg := matchOutput(want, out); msg != "" {
			t.Errorf("cli.md:%d: $ %s\n%s\ngot:\n%s", b.line, step.cmd, msg, indent(out))
		}
	}
}

type step struct {
	cmd  string
	want []string
}

func transcript(text string) []step {
	var steps []step
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "$ "):
			steps = append(steps, step{cmd: strings.TrimPrefix(line, "$ ")})
			for strings.HasSuffix(steps[len(steps)-1].cmd, "\\") && sc.Scan() {
				steps[len(steps)-1].cmd += "\n" + sc.Text()
			}
		case len(steps) > 0 && strings.TrimSpace(line) != "":
			steps[len(steps)-1].want = append(steps[len(steps)-1].want, line)
		}
	}
	return steps
}

// matchOutput says which expected line is not in out, in order.
func matchOutput(want []string, out string) string {
	got := strings.Split(out, "\n")
	i := 0
	for _, w := range want {
		re := lineRE(w)
		for i < len(got) && !re.MatchString(squash(got[i])) {
			i++
		}
		if i == len(got) {
			return fmt.Sprintf("the output has no line like %q (after the lines before it)", w)
		}
		i++
	}
	return ""
}

var spaces = regexp.MustCompile(`\s+`)

func squash(s string) string { return strings.TrimSpace(spaces.ReplaceAllString(s, " ")) }

func lineRE(w string) *regexp.Regexp {
	parts := strings.Split(squash(w), "…")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
