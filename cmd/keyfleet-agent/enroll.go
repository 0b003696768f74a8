package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyfleet/keyfleet/agent"
	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
)

// codeRedeemer is what enroll needs before it has a token.
type codeRedeemer interface {
	RedeemPass(ctx context.Context, code string) (api.RedeemedPass, error)
	RedeemEnrolmentCode(ctx context.Context, code string) (api.RedeemedEnrolment, error)
}

var _ codeRedeemer = (*client.Client)(nil)

// grant is what a redeemed code allows: enrolling for one user until a
// time, either any of some kinds (a temporary access pass) or the one
// enrolment an administrator opened (an enrolment code).
type grant struct {
	token, userID, username string
	expires                 time.Time
	kinds                   []string       // a pass: the kinds it may enrol ("" or nil: any)
	enrolment               *api.Enrolment // an enrolment code: the enrolment to complete
}

func (a *app) enrollCmd() *cobra.Command {
	var f provisionFlags
	var code string
	cmd := &cobra.Command{
		Use:     "enroll [--code CODE]",
		Aliases: []string{"enrol"},
		Short:   "Enrol your own key with a one-time code from your administrator",
		Long: `enroll is the user's own enrolment with a one-time code: an enrolment code
from 'keyfleet enrolments create' (enr_….…) or a temporary access pass from a
recovery case (kfp-…). The code is exchanged for a short-lived token that may
only enrol for that user; then the key is set up with a PIN you choose
(asked twice, no echo). Without --code, enroll asks for the code (not
echoed, and not left in the process list or shell history). An enrolment
code decides the kind: --piv and --fido2 default from it.`,
		Example: `  keyfleet-agent enroll --server https://keyfleet.example.com
  keyfleet-agent enroll --server https://keyfleet.example.com --piv=false --fido2`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.enroll(cmd, f, code) },
	}
	fs := cmd.Flags()
	f.connFlags.register(fs, false)
	fs.StringVar(&code, "code", "", "the one-time code from your administrator: an enrolment code (enr_….…) or an access pass (kfp-…); without it, enroll asks for it")
	f.registerKeyChoice(fs, "enrol the key's PIV applet (--piv=false to skip it; an enrolment code decides)", "enrol a FIDO2 credential (an enrolment code decides)")
	return cmd
}

// enroll exchanges the code for a grant, then runs the same flows as at
// the desk with the user's own PIN.
func (a *app) enroll(cmd *cobra.Command, f provisionFlags, code string) error {
	ctx, stdout, stderr := cmd.Context(), a.stdout, a.stderr
	if code == "" {
		var err error
		if code, err = readSecret(stderr, "Enrolment code or access pass: "); err != nil {
			return err
		}
		if code == "" {
			return errors.New("no code given: type the code your administrator gave you, or pass it with --code")
		}
	}
	anon, err := a.clientWithToken(f.connFlags, "")
	if err != nil {
		return err
	}
	g, err := redeem(ctx, anon, code)
	if err != nil {
		return err
	}
	if g.enrolment != nil {
		if err := kindFromEnrolment(cmd.Flags().Changed, &f, g.enrolment); err != nil {
			return err
		}
	}
	d, err := a.clientWithToken(f.connFlags, g.token)
	if err != nil {
		return err
	}
	return enrollWith(ctx, d, f, g, stdout, stderr)
}

// redeem exchanges either kind of code for a grant. The code itself is
// never printed, not even in an error.
func redeem(ctx context.Context, r codeRedeemer, code string) (grant, error) {
	if api.IsEnrolmentCode(code) {
		red, err := r.RedeemEnrolmentCode(ctx, code)
		if err != nil {
			return grant{}, fmt.Errorf("redeeming the enrolment code: %w", err)
		}
		return grant{token: red.Token, userID: red.UserID, username: red.Username, expires: red.ExpiresAt, enrolment: &red.Enrolment}, nil
	}
	pass, err := r.RedeemPass(ctx, code)
	if err != nil {
		return grant{}, fmt.Errorf("redeeming the access pass (wrong, used or expired? ask your administrator for a new one): %w", err)
	}
	return grant{token: pass.Token, userID: pass.UserID, username: pass.Username, expires: pass.ExpiresAt, kinds: pass.Kinds}, nil
}

// kindFromEnrolment sets --piv and --fido2 from an enrolment code's kind:
// the code enrols one factor of that kind. A flag given on the command
// line must agree.
func kindFromEnrolment(set func(flag string) bool, f *provisionFlags, e *api.Enrolment) error {
	want := map[string]bool{"piv": e.Kind == "piv", "fido2": e.Kind == "fido2"}
	if !want["piv"] && !want["fido2"] {
		return fmt.Errorf("this enrolment code is for a %s factor, which keyfleet-agent does not enrol; ask your administrator for a piv or fido2 code", e.Kind)
	}
	for name, on := range map[string]bool{"piv": f.piv, "fido2": f.fido2} {
		if set(name) && on != want[name] {
			return fmt.Errorf("this enrolment code is for a %s key: run the command again without --%s", e.Kind, name)
		}
	}
	f.piv, f.fido2, f.enrolment = want["piv"], want["fido2"], e
	return nil
}

func enrollWith(ctx context.Context, d agent.Daemon, f provisionFlags, g grant, stdout, stderr io.Writer) error {
	for _, k := range []struct {
		on   bool
		kind string
	}{{f.piv, "piv"}, {f.fido2, "fido2"}} {
		if k.on && len(g.kinds) > 0 && !slices.Contains(g.kinds, k.kind) {
			return fmt.Errorf("your code does not allow enrolling a %s factor (it allows %v)", k.kind, g.kinds)
		}
	}
	fmt.Fprintf(stderr, "Enrolling a key for %s (code valid until %s).\n", g.username, g.expires.Local().Format("Mon 2 Jan 15:04 MST"))
	pin, err := newPIN(stderr, "key")
	if err != nil {
		return err
	}
	out, err := provisionOne(ctx, d, f, g.userID, pin, stderr)
	printOutcome(stdout, g.username, out)
	return err
}
