package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCompletionScriptsForEveryShell(t *testing.T) {
	e := newEnv(t)
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		t.Run(shell, func(t *testing.T) {
			r := e.run("completion", shell)
			if r.code != 0 || !strings.Contains(r.stdout, "keyfleet") || len(r.stdout) < 1000 {
				t.Fatalf("exit %d: %.200s %s", r.code, r.stdout, r.stderr)
			}
		})
	}
}

func TestCompletionOffersCommandsAndFlags(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"a command from its first letters", []string{"__complete", "us"}, "users"},
		{"a subcommand", []string{"__complete", "users", "cr"}, "create"},
		{"a flag", []string{"__complete", "users", "create", "alice", "--disp"}, "--display-name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.run(tt.args...)
			if r.code != 0 || !strings.Contains(r.stdout, tt.want) {
				t.Fatalf("exit %d, want %q in: %s %s", r.code, tt.want, r.stdout, r.stderr)
			}
		})
	}
	if r := e.run("__complete", ""); strings.Contains(r.stdout, "__man") {
		t.Fatalf("the hidden man page command is offered: %s", r.stdout)
	}
}

func TestManPagesForEveryCommand(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	if r := e.run("__man", dir); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, page := range []string{"keyfleet.1", "keyfleet-users-create.1", "keyfleet-completion-bash.1", "keyfleet-version.1"} {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil {
			t.Fatalf("no page %s: %v", page, err)
		}
		if !strings.Contains(string(b), ".SH NAME") || strings.Contains(string(b), "Auto generated") {
			t.Fatalf("%s: %.300s", page, b)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "keyfleet-__man.1")); err == nil {
		t.Fatal("the hidden man page command has a page")
	}
	if r := e.run("--help"); strings.Contains(r.stdout, "__man") || !strings.Contains(r.stdout, "completion") {
		t.Fatalf("help: %s", r.stdout)
	}
}
