package clikit_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/keyfleet/keyfleet/internal/clikit"
)

func toy(out *bytes.Buffer) *cobra.Command {
	root := &cobra.Command{Use: "toy", Short: "A toy", SilenceErrors: true, SilenceUsage: true}
	root.AddCommand(&cobra.Command{Use: "hello", Short: "Say hello", Example: "  toy hello", Run: func(*cobra.Command, []string) {}})
	root.SetOut(out)
	root.SetErr(out)
	clikit.Standard(root)
	return root
}

func TestStandardCommands(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"--version", []string{"--version"}, "toy "},
		{"the version subcommand", []string{"version"}, "toy "},
		{"a bash completion script to the command's own output", []string{"completion", "bash"}, "__start_toy"},
		{"completion help with an example", []string{"completion", "--help"}, "toy completion bash > /etc/bash_completion.d/toy"},
		{"each shell with an example", []string{"completion", "fish", "--help"}, "toy completion fish"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			root := toy(&out)
			root.SetArgs(tt.args)
			if err := root.Execute(); err != nil || !strings.Contains(out.String(), tt.want) {
				t.Fatalf("%v: want %q in %.300s", err, tt.want, out.String())
			}
		})
	}
}

func TestManPagesAreTheSameOnEveryRun(t *testing.T) {
	pages := func() map[string]string {
		dir := t.TempDir()
		var out bytes.Buffer
		root := toy(&out)
		root.SetArgs([]string{clikit.ManCommand, dir})
		if err := root.Execute(); err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		files, _ := filepath.Glob(filepath.Join(dir, "*.1"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			m[filepath.Base(f)] = string(b)
		}
		return m
	}
	a := pages()
	for _, want := range []string{"toy.1", "toy-hello.1", "toy-version.1", "toy-completion-bash.1"} {
		if !strings.Contains(a[want], ".SH NAME") {
			t.Fatalf("no page %s among %d", want, len(a))
		}
	}
	if _, ok := a["toy-"+clikit.ManCommand+".1"]; ok {
		t.Fatal("the hidden man command has a page")
	}
	b := pages()
	for name, text := range a {
		if b[name] != text {
			t.Fatalf("%s differs between two runs", name)
		}
	}
}
