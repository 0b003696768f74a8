package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	"github.com/spf13/cobra"
)

// cliError is a failure with its exit code and what to do next. An empty
// hint is filled in when the error is printed.
type cliError struct {
	code int
	err  error
	hint string
}

func (e *cliError) Error() string {
	if e.hint == "" {
		return e.err.Error()
	}
	return e.err.Error() + "; " + e.hint
}

func (e *cliError) Unwrap() error { return e.err }

// usagef returns a usage error (exit 2).
func usagef(format string, args ...any) *cliError {
	return &cliError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

// fail returns an error with exit code 1 and a hint.
func fail(err error, hint string) *cliError {
	return &cliError{code: ExitError, err: err, hint: hint}
}

// describe returns the exit code and the message for an error a command
// returned.
func describe(cmd *cobra.Command, err error) (int, string) {
	var (
		ce *cliError
		te *client.TransportError
		pr *api.Problem
	)
	switch {
	case errors.As(err, &ce):
		if ce.hint == "" && ce.code == ExitUsage {
			ce.hint = fmt.Sprintf("run '%s --help'", cmd.CommandPath())
		}
		if ce.hint == "" {
			return ce.code, ce.err.Error()
		}
		return ce.code, ce.err.Error() + "; " + ce.hint
	case errors.As(err, &te):
		return ExitUnreachable, te.Error()
	case errors.As(err, &pr):
		code, hint := problemAdvice(cmd, pr)
		return code, withAdvice(pr, hint)
	case errors.Is(err, context.Canceled):
		return ExitError, "interrupted; run the command again to finish it"
	}
	return ExitError, fmt.Sprintf("%v; run '%s --help'", err, cmd.CommandPath())
}

// withFields adds to s the problem's fields that s does not already say.
func withFields(s string, p *api.Problem) string {
	if len(p.Fields) == 0 {
		return s
	}
	names := make([]string, 0, len(p.Fields))
	for k, v := range p.Fields {
		if !strings.Contains(s, k+": "+v) { // the detail already says it
			names = append(names, k)
		}
	}
	if len(names) == 0 {
		return s
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = k + ": " + p.Fields[k]
	}
	return s + " (" + strings.Join(parts, ", ") + ")"
}

// cliAdvice are the problems where what to do is a keyfleet command (sign
// in again, connect your key): the CLI's hint replaces the daemon's, which
// speaks of the API.
var cliAdvice = map[string]bool{
	client.SlugUnauthenticated: true, client.SlugTokenExpired: true, client.SlugTokenRevoked: true,
	client.SlugProofRequired: true, client.SlugNoUsableFactor: true, client.SlugLocked: true,
}

// withAdvice is the message for a problem: the daemon's account and one
// piece of advice, never two. A daemon detail says what went wrong and,
// after "; ", what to do; the CLI adds its own hint only when the detail
// has none, or when the advice is a keyfleet command (cliAdvice), which
// then replaces the daemon's.
func withAdvice(p *api.Problem, hint string) string {
	what, own, says := strings.Cut(p.Error(), "; ")
	switch {
	case says && cliAdvice[client.Slug(p)]:
		return withFields(what, p) + "; " + hint
	case says && own != "":
		return withFields(p.Error(), p)
	}
	return withFields(p.Error(), p) + "; " + hint
}

// problemAdvice maps a problem to an exit code and what to do next.
func problemAdvice(cmd *cobra.Command, p *api.Problem) (int, string) {
	noun := resource(cmd)
	switch client.Slug(p) {
	case client.SlugUnauthenticated:
		return ExitAuth, "sign in again with your key: keyfleet login --user NAME (or --token-file FILE for a service account's token)"
	case client.SlugTokenExpired, client.SlugTokenRevoked:
		return ExitAuth, "sign in again with your key: keyfleet login --user NAME (a service account's token: ask an admin for a new one)"
	case client.SlugForbidden:
		return ExitAuth, "your roles do not allow this ('keyfleet whoami' shows them); ask an admin"
	case client.SlugProofRequired:
		return ExitAuth, "connect your own enrolled security key and run the command again; keyfleet asks keyfleet-agent for a fresh proof"
	case client.SlugNoUsableFactor:
		return ExitAuth, "enrol a security key of your own first (keyfleet-agent enroll --code CODE, with a code or pass from an administrator)"
	case client.SlugLocked:
		return ExitAuth, "wait until the lock ends, or ask an administrator to unlock you (keyfleet users unlock)"
	case client.SlugNotIndependent:
		return ExitConflict, "a person independent of the requester must decide it (docs/security.md says who counts)"
	case client.SlugNotFound:
		return ExitNotFound, fmt.Sprintf("check the id or name; 'keyfleet %s list' shows them", noun)
	case client.SlugAlreadyExists:
		return ExitConflict, fmt.Sprintf("choose another name, or see 'keyfleet %s list'", noun)
	case client.SlugIllegalTransition:
		return ExitConflict, fmt.Sprintf("check its current state with 'keyfleet %s show'", noun)
	case client.SlugSelfApproval:
		return ExitConflict, "a different person must approve or deny it, with their own key"
	case client.SlugApprovalClosed:
		return ExitConflict, "it was already decided, cancelled or expired; 'keyfleet approvals show ID' says which"
	case client.SlugEnrolmentClosed:
		return ExitConflict, "create a new one: keyfleet enrolments create --user USER --kind KIND"
	case client.SlugUnsupportedKind:
		return ExitError, "use a factor kind this keyfleetd supports (piv, fido2, totp or a plugin's kind)"
	case client.SlugBadRequest, client.SlugInvalidJSON, client.SlugUnknownField,
		client.SlugValidationFailed, client.SlugBodyTooLarge:
		return ExitError, fmt.Sprintf("correct the input; '%s --help' describes it", cmd.CommandPath())
	case client.SlugPolicyViolation:
		return ExitConflict, "the policy refuses this; the reasons above say what it needs ('keyfleet policy show' prints it)"
	case client.SlugUnavailable:
		return ExitError, "keyfleetd is not ready; try again shortly or check its logs"
	case "directory-busy":
		return ExitConflict, "wait for it to finish: 'keyfleet directory status' shows the last sync"
	case "leaver-limit":
		return ExitConflict, "nothing changed; check the directory settings, or run again with --force if they really left"
	case "directory-failed":
		return ExitUnreachable, "nothing changed; check the directory section of keyfleetd.yaml (docs/directory.md) and that the directory is up"
	}
	if p.RequestID == "" {
		return ExitError, "try again; if it persists, check keyfleetd's logs"
	}
	return ExitError, "try again; if it persists, look up request id " + p.RequestID + " in keyfleetd's logs"
}

// resource names the command group a command belongs to ("users").
func resource(cmd *cobra.Command) string {
	for c := cmd; c != nil && c.HasParent(); c = c.Parent() {
		if !c.Parent().HasParent() && c.HasSubCommands() {
			return c.Name()
		}
	}
	return "users"
}
