package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/keyfleet/keyfleet/internal/clikit"
)

// Exit codes that scripts can rely on.
const (
	exitOK    = 0 // success
	exitError = 1 // any other failure
	exitUsage = 2 // bad flags or arguments
)

// app holds what every command shares: the output streams and the
// environment.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

// run executes the keyfleet-agent command line args (without the program
// name) and returns the exit code. Errors go to stderr as
// "keyfleet-agent: <what went wrong>; <what to do next>".
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdout: stdout, stderr: stderr, getenv: getenv}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "keyfleet-agent: %v; run '%s --help'\n", err, cmd.CommandPath())
		return exitUsage
	}
	fmt.Fprintf(stderr, "keyfleet-agent: %v\n", err)
	return exitError
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "keyfleet-agent",
		Short: "Provision, enrol, activate and verify YubiKeys with keyfleetd",
		Long:  rootLong,
		Example: `  keyfleet-agent devices
  keyfleet-agent provision --user alice --fido2
  keyfleet-agent enroll --server https://keyfleet.example.com`,
		Args:          unknownSubcommand,
		RunE:          func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.AddCommand(a.devicesCmd(), a.provisionCmd(), a.enrollCmd(), a.activateCmd(), a.verifyCmd(), a.wipeCmd(), a.proveCmd(), a.pushCmd())
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	clikit.Standard(root)
	return root
}

const rootLong = `keyfleet-agent drives YubiKeys on this workstation (PIV through PC/SC,
FIDO2 through USB HID or PC/SC) and talks to keyfleetd over its HTTPS API.

keyfleetd's address, the token and the certificate to trust come from, in
order: the --server, --token-file and --ca flags; the environment; the
login that 'keyfleet login' saved (used only for the server it was saved
for). enroll needs no token: the one-time code is the credential.

Environment:
  KEYFLEET_CONFIG      path of the configuration file 'keyfleet login' wrote
  KEYFLEET_SERVER      server URL
  KEYFLEET_TOKEN       bearer token
  KEYFLEET_TOKEN_FILE  file holding the bearer token
  KEYFLEET_CA          path of a PEM CA certificate

Exit codes:
  0  ok
  1  error
  2  usage error (bad flags or arguments)`

// usageError is a mistake in the command line (exit 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// unknownSubcommand refuses arguments to a command that only holds
// subcommands, suggesting the nearest one.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		return usagef("unknown command %q for %q (did you mean %q?)", args[0], cmd.CommandPath(), s[0])
	}
	return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
}

// noArgs refuses positional arguments: every input is a flag.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q (%s takes flags only)", args[0], cmd.CommandPath())
	}
	return nil
}
