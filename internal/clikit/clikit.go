// Package clikit holds what every keyfleet command line shares, so that
// keyfleetd, keyfleet, keyfleet-agent and keyfleet-vkey behave alike:
// --version and a version subcommand (internal/version), shell completion
// with examples, and the hidden command that writes man pages from the
// command definitions (`make man`).
package clikit

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/keyfleet/keyfleet/internal/version"
)

// ManCommand is the hidden subcommand that writes the man pages.
const ManCommand = "__man"

// Standard gives root --version, a version subcommand, the man page
// command and, unless root disables it, the completion command with
// examples for each shell. Call it after root.SetOut and root.SetErr: the
// completion command writes to the streams set when it is made.
func Standard(root *cobra.Command) {
	addVersion(root)
	root.AddCommand(manCmd(root))
	completion(root)
}

func addVersion(root *cobra.Command) {
	root.Version = version.Get().String()
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the version, the commit it was built from and the Go toolchain",
		Long: `version prints the module version (a tag, or a pseudo-version naming the
commit), the commit and its time, whether the tree had uncommitted changes
(modified), and the Go toolchain that built this binary. --version prints
the same line.`,
		Example: "  " + root.Name() + " version",
		Args:    cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", root.Name(), version.Get())
		},
	})
}

// completion adds cobra's completion command now (it would otherwise be
// added when the program runs) and gives it and each shell an example.
func completion(root *cobra.Command) {
	if root.CompletionOptions.DisableDefaultCmd {
		return
	}
	root.InitDefaultCompletionCmd()
	name := root.Name()
	for _, c := range root.Commands() {
		if c.Name() != "completion" {
			continue
		}
		c.Example = fmt.Sprintf("  %[1]s completion bash > /etc/bash_completion.d/%[1]s\n  source <(%[1]s completion bash)", name)
		for _, sh := range c.Commands() {
			sh.Example = fmt.Sprintf("  %s completion %s", name, sh.Name())
		}
	}
}

func manCmd(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:    ManCommand + " DIR",
		Short:  "Write man pages for every command into DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return fmt.Errorf("making %s: %w", args[0], err)
			}
			return WriteManPages(root, args[0])
		},
	}
}

// WriteManPages writes a page (section 1) for root and one for each of
// its subcommands (root-sub.1) into dir. The pages carry the build's
// version and its commit's date, so a rebuild of the same commit writes
// the same pages.
func WriteManPages(root *cobra.Command, dir string) error {
	v := version.Get()
	h := &doc.GenManHeader{Section: "1", Source: "keyfleet " + v.Version, Manual: "keyfleet manual"}
	if !v.Time.IsZero() {
		t := v.Time
		h.Date = &t
	}
	root.DisableAutoGenTag = true
	if err := doc.GenManTree(root, h, dir); err != nil {
		return fmt.Errorf("writing man pages: %w", err)
	}
	return nil
}
