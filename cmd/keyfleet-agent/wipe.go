package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyfleet/keyfleet/agent"
	agentfido2 "github.com/keyfleet/keyfleet/agent/fido2"
)

type wipeFlags struct {
	connFlags
	reader, fido2Device, reason string
	unknown, noFIDO2            bool
	replugWait                  time.Duration
}

func (a *app) wipeCmd() *cobra.Command {
	var f wipeFlags
	cmd := &cobra.Command{
		Use:   "wipe [--reader R] [--reason TEXT]",
		Short: "Wipe a returned key for its next user, once keyfleetd agrees (enroller token)",
		Long: `wipe resets a key that came back ('keyfleet devices return'): its PIV applet,
then its FIDO2 application, so that none of its previous holder's
credentials (their passkeys for other sites included) go to the next one.
Then it reports the wipe to keyfleetd, which puts the key back in stock
for 'keyfleet devices reassign'.

It asks keyfleetd first: a key that was not returned, or whose factors
still wait for a revocation's approval, is not touched. A key keyfleetd
has never seen is wiped only with --unknown.

A YubiKey takes a FIDO2 reset only in its first seconds after it is
plugged in: when asked, unplug the key, plug it back in and touch it when
it blinks. The agent checks the key that comes back is the same one. A key
without a FIDO2 application (a PIV-only card) needs --no-fido2; keyfleetd
refuses that for a key that carried a FIDO2 factor. Until both are reset,
keyfleetd keeps the key returned: run the same command again.`,
		Example: "  keyfleet-agent wipe --reason \"returned by carol\"",
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return a.wipe(cmd.Context(), f) },
	}
	fs := cmd.Flags()
	f.connFlags.register(fs, true)
	fs.StringVar(&f.reader, "reader", "", "PC/SC reader of the key (default: the only YubiKey)")
	fs.StringVar(&f.fido2Device, "fido2-device", "", "the key's FIDO2 HID path (default: the one in its reader, else the only FIDO2 key)")
	fs.StringVar(&f.reason, "reason", "", "why, for the audit log")
	fs.BoolVar(&f.unknown, "unknown", false, "wipe a key keyfleetd does not know (nothing is reported)")
	fs.BoolVar(&f.noFIDO2, "no-fido2", false, "the key has no FIDO2 application (a PIV-only card): reset its PIV applet only")
	fs.DurationVar(&f.replugWait, "replug-wait", 2*time.Minute, "how long to wait for the key to be unplugged and plugged back in")
	return cmd
}

func (a *app) wipe(ctx context.Context, f wipeFlags) error {
	d, err := a.daemonClient(f.connFlags)
	if err != nil {
		return err
	}
	keys := agent.WipeKeys{
		OpenPIV: openOne, Reader: f.reader, Serial: agentfido2.CardSerial,
		FIDO2: fido2Opener, FIDO2Path: f.fido2Device, NoFIDO2: f.noFIDO2,
		Prompt: func(msg string) { fmt.Fprintln(a.stderr, msg) }, ReplugWait: f.replugWait,
	}
	dev, info, err := agent.Wipe(ctx, d, keys, agent.WipeOptions{Reason: f.reason, Unknown: f.unknown})
	if err != nil {
		return err
	}
	what := "PIV applet and FIDO2 application"
	if f.noFIDO2 {
		what = "PIV applet (no FIDO2 application)"
	}
	if dev.ID == "" {
		fmt.Fprintf(a.stdout, "wiped YubiKey %d's %s (not known to keyfleetd)\n", info.Serial, what)
		return nil
	}
	fmt.Fprintf(a.stdout, "wiped YubiKey %d's %s: device %s is %s; give it to someone with 'keyfleet devices reassign %s --user NAME'\n",
		info.Serial, what, dev.ID, dev.State, dev.ID)
	return nil
}
