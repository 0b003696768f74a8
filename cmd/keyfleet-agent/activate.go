package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/keyfleet/keyfleet/agent"
	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
)

// ErrNoActivation: the daemon client lacks the activation calls.
var ErrNoActivation = errors.New("this keyfleetd client cannot activate factors yet (POST /v1/factors/{id}/activate is missing): ask an administrator to activate the factor")

// activator returns the client's activation calls when it has them.
// They are asserted at run time so the agent builds against a client
// that does not have them yet.
var activator = defaultActivator

func defaultActivator(c *client.Client) (agent.Activator, error) {
	if a, ok := any(c).(agent.Activator); ok {
		return a, nil
	}
	return nil, ErrNoActivation
}

// activateFlags are activate's flags: where keyfleetd is, and the keys.
type activateFlags struct {
	connFlags
	keyFlags
	// user is whose keys: empty for the caller's own.
	user string
}

func (a *app) activateCmd() *cobra.Command {
	var f activateFlags
	cmd := &cobra.Command{
		Use:   "activate",
		Short: "Replace the hand-over PIN of your pending keys and activate them (your own token)",
		Long: `activate finds your pending hardware factors and, for each, asks for the
hand-over PIN (from the sealed letter) and a new PIN, changes it on the key
(a wrong hand-over PIN shows the retries left) and proves possession, which
makes the factor active. It runs with your own token.

A person whose only key is still pending has no token yet (signing in
needs an active key): they activate it at the desk, where an administrator
runs 'keyfleet-agent activate --user NAME' with their token while the
person types the hand-over PIN and their new one. Keys of an account with
a role beyond user are activated by their holder only.`,
		Example: "  keyfleet-agent activate --server https://keyfleet.example.com --token-file ~/keyfleet.token\n  keyfleet-agent activate --user ivy     # at the desk, with an administrator's token",
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return a.activate(cmd.Context(), f) },
	}
	f.connFlags.register(cmd.Flags(), true)
	f.keyFlags.register(cmd.Flags())
	cmd.Flags().StringVar(&f.user, "user", "", "activate this person's pending keys (an administrator at the desk; default: your own)")
	return cmd
}

// activate: the user replaces the hand-over PIN on each of their pending
// hardware factors and proves possession, with their own token.
func (a *app) activate(ctx context.Context, c activateFlags) error {
	d, err := a.daemonClient(c.connFlags)
	if err != nil {
		return err
	}
	pending, err := pendingFactors(ctx, d, c.user)
	if err != nil {
		return err
	}
	act, err := activator(d)
	if err != nil {
		return err
	}
	for _, f := range pending {
		if err := activateOne(ctx, act, c.keyFlags, f, a.stdout, a.stderr); err != nil {
			return err
		}
	}
	return nil
}

// pendingFactors are user's pending keys ("" for the caller's own).
func pendingFactors(ctx context.Context, d *client.Client, user string) ([]api.Factor, error) {
	whose := "you have"
	if user == "" {
		me, err := d.Me(ctx)
		if err != nil {
			return nil, err
		}
		user = me.User.ID
	} else {
		whose = user + " has"
	}
	pg, err := d.ListFactors(ctx, client.FactorFilter{User: user})
	if err != nil {
		return nil, err
	}
	var out []api.Factor
	for _, f := range pg.Items {
		if f.State == api.FactorPending && (f.Kind == "piv" || f.Kind == "fido2") {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s no pending key to activate", whose)
	}
	return out, nil
}

func activateOne(ctx context.Context, act agent.Activator, c keyFlags, f api.Factor, stdout, stderr io.Writer) error {
	keys, closeKeys, err := optionalKeys(c, f.Kind == "piv", f.Kind == "fido2")
	if err != nil {
		return err
	}
	defer closeKeys()
	fmt.Fprintf(stderr, "Activating your %s factor %s.\n", f.Kind, f.ID)
	old, err := readSecret(stderr, "Hand-over PIN (from the sealed letter): ")
	if err != nil {
		return err
	}
	pin, err := newPIN(stderr, "your")
	if err != nil {
		return err
	}
	out, err := agent.Activate(ctx, act, f, keys, agent.ActivateOptions{HandoverPIN: old, NewPIN: pin, Origin: c.origin, Touch: touchPrompt(stderr)})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "activated %s factor %s: state %s\n", out.Kind, out.ID, out.State)
	return nil
}
