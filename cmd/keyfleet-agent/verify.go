package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keyfleet/keyfleet/agent"
)

type verifyFlags struct {
	connFlags
	keyFlags
	user, kind string
	askPIN     bool
}

func (a *app) verifyCmd() *cobra.Command {
	var f verifyFlags
	cmd := &cobra.Command{
		Use:   "verify --user NAME [--kind piv|fido2]",
		Short: "Prove possession of a user's enrolled key (service or admin token)",
		Long: `verify asks keyfleetd for a challenge (POST /v1/verify/begin), has the key
answer it (a PIV signature or a FIDO2 assertion) and sends the answer back
(/v1/verify/finish). It needs a token with the verify.use permission
(service or admin role). A wrong answer, and a FIDO2 sign counter that went
backwards (a possible clone), are refused and audited by keyfleetd.`,
		Example: `  keyfleet-agent verify --user alice
  keyfleet-agent verify --user alice --kind fido2`,
		Args: noArgs,
		PreRunE: func(*cobra.Command, []string) error {
			if f.user == "" {
				return usagef("verify needs --user")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return a.verify(cmd.Context(), f) },
	}
	fs := cmd.Flags()
	f.connFlags.register(fs, true)
	f.keyFlags.register(fs)
	fs.StringVar(&f.user, "user", "", "user whose key is verified (required)")
	fs.StringVar(&f.kind, "kind", "", "piv or fido2 (default: whichever the connected key holds)")
	fs.BoolVar(&f.askPIN, "ask-pin", true, "ask for the key's PIN (no echo)")
	return cmd
}

// verify proves possession of an enrolled key through POST
// /v1/verify/begin and /finish, with a token of the service or admin role.
func (a *app) verify(ctx context.Context, f verifyFlags) error {
	user, kind, stdout, stderr := f.user, f.kind, a.stdout, a.stderr
	d, err := a.daemonClient(f.connFlags)
	if err != nil {
		return err
	}
	keys, closeKeys, err := optionalKeys(f.keyFlags, kind != "fido2", kind != "piv")
	if err != nil {
		return err
	}
	defer closeKeys()
	if f.askPIN {
		if keys.PIN, err = readSecret(stderr, "PIN of the key: "); err != nil {
			return err
		}
	}
	keys.Touch = touchPrompt(stderr)
	var kinds []string
	if kind != "" {
		kinds = strings.Split(kind, ",")
	}
	res, err := agent.Verify(ctx, d, user, kinds, keys)
	if err != nil {
		return err
	}
	if !res.OK {
		return fmt.Errorf("the daemon refused the key's answer for %s (%s factor %s): wrong key or PIN, or a possible clone; the attempt is audited", user, res.Kind, res.FactorID)
	}
	fmt.Fprintf(stdout, "verified %s: %s factor %s\n", user, res.Kind, res.FactorID)
	return nil
}
