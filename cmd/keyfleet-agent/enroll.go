package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/keyfleet/keyfleet/agent"
	"github.com/keyfleet/keyfleet/api"
)

// passRedeemer is what enroll needs before it has a token.
type passRedeemer interface {
	RedeemPass(ctx context.Context, code string) (api.RedeemedPass, error)
}

// enroll is the user's own enrolment with a temporary access pass: the
// code is exchanged for a short-lived token that may only enrol for that
// user, then the same flows as at the desk run with the user's own PIN.
func enroll(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var f provisionFlags
	var code string
	fs := newFlagSet("enroll", stderr)
	f.register(fs, getenv, false)
	fs.StringVar(&code, "code", "", "the one-time code from your administrator (required)")
	fs.BoolVar(&f.piv, "piv", true, "enrol the key's PIV applet (--piv=false to skip it)")
	fs.BoolVar(&f.fido2, "fido2", false, "enrol a FIDO2 credential")
	fs.BoolVar(&f.reset, "reset", false, "wipe the key's PIV applet first (its keys are lost)")
	fs.StringVar(&f.label, "label", "", "label of the new factors")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if code == "" || f.server == "" {
		return errors.New("enroll needs --code and --server")
	}
	anon, err := clientWithToken(f.commonFlags, "")
	if err != nil {
		return err
	}
	pass, err := anon.RedeemPass(ctx, code)
	if err != nil {
		return fmt.Errorf("redeeming the code (wrong, used or expired? ask your administrator for a new one): %w", err)
	}
	d, err := clientWithToken(f.commonFlags, pass.Token)
	if err != nil {
		return err
	}
	return enrollWith(ctx, d, f, pass, stdout, stderr)
}

func enrollWith(ctx context.Context, d agent.Daemon, f provisionFlags, pass api.RedeemedPass, stdout, stderr io.Writer) error {
	for _, k := range []struct {
		on   bool
		kind string
	}{{f.piv, "piv"}, {f.fido2, "fido2"}} {
		if k.on && len(pass.Kinds) > 0 && !slices.Contains(pass.Kinds, k.kind) {
			return fmt.Errorf("your code does not allow enrolling a %s factor (it allows %v)", k.kind, pass.Kinds)
		}
	}
	fmt.Fprintf(stderr, "Enrolling a key for %s (code valid until %s).\n", pass.Username, pass.ExpiresAt.Local().Format("15:04"))
	pin, err := newPIN(stderr, "key")
	if err != nil {
		return err
	}
	out, err := provisionOne(ctx, d, f, pass.UserID, pin, stderr)
	printOutcome(stdout, pass.Username, out)
	return err
}
