package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/internal/clikit"
)

// Exit codes that scripts can rely on.
const (
	ExitOK          = 0 // success, including a request handed to a second approver
	ExitError       = 1 // any other failure
	ExitUsage       = 2 // bad flags or arguments
	ExitAuth        = 3 // not logged in, token refused, or role not allowed
	ExitNotFound    = 4 // the user, factor, device, … does not exist
	ExitConflict    = 5 // already exists, illegal transition, approval or enrolment closed, self-approval
	ExitUnreachable = 6 // keyfleetd could not be reached or its certificate not trusted
	ExitAuditBroken = 7 // audit verify found a broken hash chain
)

// Run executes the keyfleet command line args (without the program name)
// and returns the exit code. Output goes to stdout, errors and notes to
// stderr as "keyfleet: <what went wrong>; <what to do next>". env looks up
// environment variables; nil means os.Getenv.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env func(string) string) int {
	if env == nil {
		env = os.Getenv
	}
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, env: env}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	code, msg := describe(cmd, err)
	fmt.Fprintf(stderr, "keyfleet: %s\n", msg)
	if a.jsonOutput() {
		a.printFailure(err, code, msg)
	}
	return code
}

// failure is what -o json prints on stdout when a command fails, so that
// a script reading stdout always gets one JSON value: the message and the
// exit code, and the daemon's problem (RFC 9457) when it sent one.
type failure struct {
	Error    string       `json:"error"`
	ExitCode int          `json:"exit_code"`
	Problem  *api.Problem `json:"problem,omitempty"`
}

func (a *app) printFailure(err error, code int, msg string) {
	f := failure{Error: msg, ExitCode: code}
	errors.As(err, &f.Problem)
	a.printJSON(f)
}

// app holds what every command shares: the streams, the environment and
// the global flags.
type app struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	env    func(string) string
	output string
	// agentFlag and agentExtra are --agent and --agent-arg: where
	// keyfleet-agent is, and extra arguments for its prove command.
	agentFlag  string
	agentExtra []string
}

const (
	outputTable = "table"
	outputJSON  = "json"
	// outputCSV is for the commands that print lists and reports
	// (csvCommands); the others refuse it.
	outputCSV = "csv"
)

func (a *app) jsonOutput() bool { return a.output == outputJSON }

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "keyfleet",
		Short: "Manage keyfleet users, factors, keys, approvals and audit from the command line",
		Long:  rootLong,
		Example: `  keyfleet login --server https://localhost:8443 --token-file var/keyfleet/admin.token --ca var/keyfleet/tls/cert.pem
  keyfleet users create alice --display-name "Alice Liddell" --email alice@example.com --group eng
  keyfleet factors list --user alice -o json`,
		Args:          unknownSubcommand,
		RunE:          showHelp,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if a.output != outputTable && a.output != outputJSON && a.output != outputCSV {
				return usagef("unknown output format %q; use -o table, -o json, or -o csv for lists and reports", a.output)
			}
			if a.output == outputCSV && !csvCommands[strings.TrimPrefix(cmd.CommandPath(), "keyfleet ")] {
				return usagef("-o csv is for lists and reports; '%s' prints no list: use -o table or -o json", cmd.CommandPath())
			}
			return nil
		},
	}
	root.PersistentFlags().StringVarP(&a.output, "output", "o", outputTable, "output format: table, json, or csv (lists and reports)")
	root.PersistentFlags().StringVar(&a.agentFlag, "agent", "", "keyfleet-agent to prove actions with your key (default $"+EnvAgent+", beside keyfleet, or on PATH)")
	root.PersistentFlags().StringArrayVar(&a.agentExtra, "agent-arg", nil, "extra argument for keyfleet-agent prove, e.g. --agent-arg=--reader=NAME (repeatable; also $"+EnvAgentArgs+")")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &cliError{code: ExitUsage, err: err} })
	root.AddCommand(a.loginCmd(), a.logoutCmd(), a.whoamiCmd(), a.usersCmd(), a.factorsCmd(),
		a.devicesCmd(), a.enrolmentsCmd(), a.approvalsCmd(), a.tokensCmd(), a.auditCmd())
	root.AddCommand(a.policyCmd(), a.reportCmd())
	root.AddCommand(a.recoveryCmd(), a.breakglassCmd(), a.eventsCmd(), a.attestCmd())
	root.AddCommand(a.directoryCmd())
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	clikit.Standard(root)
	return root
}

// csvCommands print a list or a report: a table, or CSV with -o csv (a
// cell a spreadsheet would run as a formula is written as text).
var csvCommands = map[string]bool{
	"users list": true, "factors list": true, "devices list": true, "devices inventory": true,
	"enrolments list": true, "approvals list": true, "tokens list": true, "audit list": true,
	"recovery list": true, "policy history": true, "policy diff": true, "events status": true,
	"report adoption": true, "report deadlines": true, "report vulnerable": true, "report stale": true,
	"report privileged": true,
}

const rootLong = `keyfleet talks to a keyfleetd over its HTTPS API. Log in once with
'keyfleet login'; the server, token and trusted certificate are saved in
the configuration file (see 'keyfleet login --help').

Output is a table for people; -o json prints the API's JSON for scripts
(and, when a command fails, {"error", "exit_code", "problem"} on stdout);
lists and reports print CSV with -o csv.

Environment:
  KEYFLEET_CONFIG   path of the configuration file
  KEYFLEET_SERVER   server URL, overriding the configuration file
  KEYFLEET_TOKEN    bearer token, overriding the configuration file
  KEYFLEET_CA       path of a PEM CA certificate, overriding the configuration file
  KEYFLEET_AGENT    path of keyfleet-agent, which proves actions with your key
  KEYFLEET_AGENT_ARGS  extra arguments for keyfleet-agent prove, split at spaces

Approving, applying a policy, rotating break-glass, making your own token
and the other sensitive actions need a fresh proof with your own security
key: keyfleet asks keyfleetd for a challenge bound to that one action and
runs 'keyfleet-agent prove' to answer it with the connected key (PIN asked
without echo). 'keyfleet login --user NAME' signs in the same way.

Exit codes:
  0  ok (including an action handed to a second approver)
  1  error
  2  usage error (bad flags or arguments)
  3  not authenticated, forbidden, or a fresh proof with your key is missing
  4  not found
  5  conflict or illegal state
  6  keyfleetd unreachable or its certificate not trusted
  7  audit chain verification failed`

// group returns a command that only holds subcommands.
func group(use, short, example string) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Example: example, Args: unknownSubcommand, RunE: showHelp}
}

func showHelp(cmd *cobra.Command, _ []string) error { return cmd.Help() }

// unknownSubcommand refuses arguments to a command that only holds
// subcommands.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	err := usagef("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		err.hint = fmt.Sprintf("did you mean %q? run '%s --help'", s[0], cmd.CommandPath())
	}
	return err
}

// argNames returns a cobra.PositionalArgs that wants exactly the named
// arguments.
func argNames(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < len(names):
			return usagef("missing %s", strings.Join(names[len(args):], " "))
		case len(args) > len(names):
			return usagef("unexpected argument %q", args[len(names)])
		}
		return nil
	}
}
