package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/keyfleet/keyfleet/agent"
)

// verify proves possession of an enrolled key through POST
// /v1/verify/begin and /finish, with a token of the service or admin role.
func verify(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var c commonFlags
	var user, kind string
	var askPIN bool
	fs := newFlagSet("verify", stderr)
	c.register(fs, getenv, true)
	fs.StringVar(&user, "user", "", "user whose key is verified (required)")
	fs.StringVar(&kind, "kind", "", "piv or fido2 (default: whichever the connected key holds)")
	fs.BoolVar(&askPIN, "ask-pin", true, "ask for the key's PIN (no echo)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if user == "" {
		return errors.New("verify needs --user")
	}
	d, err := daemonClient(c)
	if err != nil {
		return err
	}
	keys, closeKeys, err := optionalKeys(c.keyFlags, kind != "fido2", kind != "piv")
	if err != nil {
		return err
	}
	defer closeKeys()
	if askPIN {
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
