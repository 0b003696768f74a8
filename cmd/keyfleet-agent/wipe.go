package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/keyfleet/keyfleet/agent"
)

type wipeFlags struct {
	connFlags
	reader, reason string
	unknown        bool
}

func (a *app) wipeCmd() *cobra.Command {
	var f wipeFlags
	cmd := &cobra.Command{
		Use:   "wipe [--reader R] [--reason TEXT]",
		Short: "Wipe a returned key for its next user, once keyfleetd agrees (enroller token)",
		Long: `wipe resets the PIV applet of a key that came back ('keyfleet devices return'),
then reports it to keyfleetd, which puts it back in stock for
'keyfleet devices reassign'. It asks keyfleetd first: a key that was not
returned, or whose factors still wait for a revocation's approval, is not
touched. A key keyfleetd has never seen is wiped only with --unknown.

The key's FIDO2 credentials are revoked in keyfleetd with its factors; to
clear them from the key too, reset its FIDO2 application with 'ykman fido
reset' within a few seconds of plugging it in.`,
		Example: "  keyfleet-agent wipe --reason \"returned by carol\"",
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return a.wipe(cmd.Context(), f) },
	}
	fs := cmd.Flags()
	f.connFlags.register(fs, true)
	fs.StringVar(&f.reader, "reader", "", "PC/SC reader of the key (default: the only YubiKey)")
	fs.StringVar(&f.reason, "reason", "", "why, for the audit log")
	fs.BoolVar(&f.unknown, "unknown", false, "wipe a key keyfleetd does not know (nothing is reported)")
	return cmd
}

func (a *app) wipe(ctx context.Context, f wipeFlags) error {
	d, err := a.daemonClient(f.connFlags)
	if err != nil {
		return err
	}
	tok, err := openOne(f.reader)
	if err != nil {
		return err
	}
	defer tok.Close()
	dev, info, err := agent.WipePIV(ctx, d, tok, agent.WipeOptions{Reason: f.reason, Unknown: f.unknown})
	if err != nil {
		return err
	}
	if dev.ID == "" {
		fmt.Fprintf(a.stdout, "wiped YubiKey %d (not known to keyfleetd)\n", info.Serial)
		return nil
	}
	fmt.Fprintf(a.stdout, "wiped YubiKey %d: device %s is %s; give it to someone with 'keyfleet devices reassign %s --user NAME'\n",
		info.Serial, dev.ID, dev.State, dev.ID)
	return nil
}
