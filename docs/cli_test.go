package docs_test

// TestCLIExamplesRunAgainstARealKeyfleetd runs the shell examples of
// docs/cli.md, in order, against a keyfleetd it starts (binaries built from
// this tree, keyfleet-agent included; the TOTP plugin pinned, one file
// event sink), so that the examples cannot drift from the CLI.
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
//     code an authenticator app shows or a new PIN for their key).
//   - Words after the language (or after "doctest") set options: no-run
//     skips the block (say why in the text: it needs a hardware key, it
//     never ends, …); exit=N expects exit code N instead of 0 (for a console
//     block, from each command); as=NAME runs it as that person at their own
//     workstation (default: admin). Plain ``` blocks (synopses, output,
//     files) never run.
//
// The keyfleetd is made as docs/security.md's "Bootstrap" recommends, by
// keyfleetd init --admins bob: two founding administrators, admin (with
// the token init writes) and bob, each with a founder pass for their first
// key. Each founder has a security key: a software FIDO2 key
// (agent/fido2.Soft) in the working folder, NAME-key.json, whose PIN is in
// NAME-pin.txt, attested by a test CA that keyfleetd.yaml trusts
// (attestation.fido2_roots), with its serial (enterprise attestation, so
// that it is a device as a YubiKey is). cli.md enrols those keys with the
// passes in hidden blocks, as the founders would with keyfleet-agent
// enroll.
//
// A person is their own HOME (home/NAME, so `keyfleet login` saves to its
// default place and each person has their own login) and, for a founder,
// their key: KEYFLEET_AGENT_ARGS="--soft-fido2 NAME-key.json --pin-file
// NAME-pin.txt", which is what plugging the key in and typing its PIN at
// the prompt is for a reader. keyfleet finds keyfleet-agent beside itself,
// as `make build` installs them. No block's output may hold a PIN.
//
// Blocks run in order in one working folder, with keyfleetd's data folder
// at var/keyfleet as `make run` makes it, the repository's testdata linked
// in, and jq and oathtool at hand. Shell variables with lower-case names
// that one block sets are seen by the next, whoever runs it (as if handed
// over). The examples' address https://localhost:8443 (and
// https://keyfleet.example.com) is rewritten to this test's keyfleetd. To
// see each block as it runs: go test -v -run CLIExamples ./docs/.

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

	"github.com/keyfleet/keyfleet/agent/fido2"
)

// block is one runnable piece of cli.md.
type block struct {
	line  int    // where it starts in cli.md
	kind  string // sh, console or doctest
	text  string
	noRun bool
	exit  int
	as    string // the person who runs it ("" is admin)
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

var (
	fence   = regexp.MustCompile("^```(\\w*)\\s*(.*)$")
	doctest = regexp.MustCompile(`^<!-- doctest(\s.*)?$`)
	name    = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
)

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
		if m := doctest.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			start := i
			var body []string
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "-->"; i++ {
				body = append(body, lines[i])
			}
			bl := block{line: start + 1, kind: "doctest", text: strings.Join(body, "\n")}
			setOptions(t, path, &bl, m[1])
			out = append(out, bl)
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
		setOptions(t, path, &bl, m[2])
		out = append(out, bl)
	}
	return out
}

// setOptions reads a block's options: no-run, exit=N, as=NAME.
func setOptions(t *testing.T, path string, bl *block, opts string) {
	t.Helper()
	for _, opt := range strings.Fields(opts) {
		ok := true
		switch key, value, _ := strings.Cut(opt, "="); key {
		case "no-run":
			bl.noRun = value == ""
			ok = bl.noRun
		case "exit":
			var err error
			bl.exit, err = strconv.Atoi(value)
			ok = err == nil
		case "as":
			bl.as = value
			ok = name.MatchString(value)
		default:
			ok = false
		}
		if !ok {
			t.Fatalf("%s:%d: bad block option %q (no-run, exit=N, as=NAME)", path, bl.line, opt)
		}
	}
}

// docEnv is the working folder and the keyfleetd the examples talk to.
type docEnv struct {
	dir, bin, url string
	rewrite       *strings.Replacer
	pins          map[string]string // founder → their key's PIN
}

// founders are the administrators keyfleetd init makes, each with a
// software security key and its PIN.
var founders = []struct{ name, pin string }{{"admin", "admin-pin-4820"}, {"bob", "bob-pin-7351"}}

// defaultPerson runs the blocks that name nobody.
const defaultPerson = "admin"

func startEnv(t *testing.T) *docEnv {
	t.Helper()
	e := &docEnv{dir: t.TempDir(), bin: t.TempDir(), pins: map[string]string{}}
	e.build(t)
	repo, _ := filepath.Abs("..")
	os.Symlink(filepath.Join(repo, "testdata"), filepath.Join(e.dir, "testdata"))
	if err := os.MkdirAll(e.home(defaultPerson), 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := e.command("keyfleetd init --data var/keyfleet --admins bob", defaultPerson).CombinedOutput(); err != nil {
		t.Fatalf("keyfleetd init: %v\n%s", err, out)
	}
	roots := e.makeKeys(t)
	plugin, _ := os.ReadFile(filepath.Join(e.bin, "keyfleet-plugin-totp"))
	sum := sha256.Sum256(plugin)
	cfg := fmt.Sprintf("plugins:\n  dir: %s\n  plugins:\n    - {name: keyfleet-plugin-totp, sha256: %s}\n"+
		"events:\n  sinks:\n    - {name: archive, type: file, file: {path: %s}}\n"+
		"attestation:\n  fido2_roots: [%s]\nfido2:\n  enterprise_attestation: true\n",
		e.bin, hex.EncodeToString(sum[:]), filepath.Join(e.dir, "events.jsonl"), roots)
	if err := os.WriteFile(filepath.Join(e.dir, "var/keyfleet/keyfleetd.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
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

// build builds keyfleetd, keyfleet and the TOTP plugin, and keyfleet-agent
// beside keyfleet (where keyfleet looks for it), with its C libraries.
func (e *docEnv) build(t *testing.T) {
	t.Helper()
	const debs = "gcc libc6-dev pkg-config libpcsclite-dev libfido2-dev"
	if out, err := exec.Command("pkg-config", "--exists", "--print-errors", "libpcsclite", "libfido2").CombinedOutput(); err != nil {
		t.Fatalf("keyfleet-agent needs libpcsclite and libfido2 to build (%v: %s): apt-get install %s", err, out, debs)
	}
	pure := exec.Command("go", "build", "-o", e.bin+"/", "../cmd/keyfleetd", "../cmd/keyfleet", "../cmd/keyfleet-plugin-totp")
	pure.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := pure.CombinedOutput(); err != nil {
		t.Fatalf("building keyfleetd and keyfleet: %v\n%s", err, out)
	}
	agent := exec.Command("go", "build", "-o", e.bin+"/", "../cmd/keyfleet-agent")
	agent.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := agent.CombinedOutput(); err != nil {
		t.Fatalf("building keyfleet-agent (cgo; apt-get install %s): %v\n%s", debs, err, out)
	}
}

// makeKeys gives each founder a software FIDO2 key in the working folder
// (NAME-key.json, its PIN in NAME-pin.txt) from a test attestation CA, and
// returns the path of the CA's root certificate for keyfleetd to trust.
// The keys have no PIN and no credential yet: cli.md enrols them.
func (e *docEnv) makeKeys(t *testing.T) string {
	t.Helper()
	ca, err := fido2.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	roots := filepath.Join(e.dir, "var/keyfleet/fido2-test-root.pem")
	if err := os.WriteFile(roots, ca.RootPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range founders {
		if _, err := fido2.NewSoft(fido2.SoftOptions{CA: ca, Enterprise: true, Path: filepath.Join(e.dir, f.name+"-key.json")}); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(e.dir, f.name+"-pin.txt"), []byte(f.pin+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		e.pins[f.name] = f.pin
	}
	return roots
}

// serve starts keyfleetd and waits until it is ready.
func (e *docEnv) serve(t *testing.T, addr string) {
	t.Helper()
	var logs bytes.Buffer
	cmd := e.command("exec keyfleetd serve --data var/keyfleet --listen "+addr, defaultPerson)
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

// home is a person's home folder, in the working folder.
func (e *docEnv) home(person string) string { return filepath.Join(e.dir, "home", person) }

// command is a bash command in the working folder with the examples'
// environment, as person at their workstation.
func (e *docEnv) command(script, person string) *exec.Cmd {
	return e.commandContext(context.Background(), script, person)
}

func (e *docEnv) commandContext(ctx context.Context, script, person string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = e.dir
	cmd.Env = []string{"PATH=" + e.bin + ":" + os.Getenv("PATH"), "HOME=" + e.home(person),
		"LANG=C.UTF-8", "TZ=UTC", "TERM=dumb"}
	if _, ok := e.pins[person]; ok {
		// The person's key is plugged in, and they type its PIN when asked.
		cmd.Env = append(cmd.Env, "KEYFLEET_AGENT_ARGS=--soft-fido2 "+person+"-key.json --pin-file "+person+"-pin.txt")
	}
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
	person := firstOf(b.as, defaultPerson)
	if err := os.MkdirAll(e.home(person), 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := e.commandContext(ctx, script(e.rewrite.Replace(body), wantExit == 0), person).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("cli.md:%d: %v", b.line, err)
	}
	t.Logf("cli.md:%d (%s, as %s):\n%s\n%s", b.line, b.kind, person, indent(body), indent(string(out)))
	for who, pin := range e.pins {
		if strings.Contains(string(out), pin) {
			t.Errorf("cli.md:%d: the output holds %s's PIN:\n%s", b.line, who, indent(string(out)))
		}
	}
	if code != wantExit {
		t.Errorf("cli.md:%d: the %s block exited %d, want %d:\n%s\noutput:\n%s", b.line, b.kind, code, wantExit, indent(body), indent(string(out)))
	}
	return string(out)
}

// runConsole runs each $ command of a transcript and checks its output.
func (e *docEnv) runConsole(t *testing.T, b block) {
	t.Helper()
	for _, step := range transcript(b.text) {
		out := e.runScript(t, block{line: b.line, kind: "console", as: b.as}, step.cmd, b.exit)
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

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
