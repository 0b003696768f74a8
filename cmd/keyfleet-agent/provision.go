package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keyfleet/keyfleet/agent"
	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
)

type provisionFlags struct {
	connFlags
	keyFlags
	user, pinFile, label, batch, results, journal string
	piv, fido2, reset, askPIN                     bool
	// enrolment is the one enrolment an enrolment code lets enroll
	// complete (not a flag); nil creates enrolments as usual.
	enrolment *api.Enrolment
}

// registerKeyChoice adds the flags provision and enroll share.
func (f *provisionFlags) registerKeyChoice(fs *pflag.FlagSet, pivHelp, fido2Help string) {
	f.keyFlags.register(fs)
	fs.BoolVar(&f.piv, "piv", true, pivHelp)
	fs.BoolVar(&f.fido2, "fido2", false, fido2Help)
	fs.BoolVar(&f.reset, "reset", false, "wipe the key's PIV applet first (its keys are lost)")
	fs.StringVar(&f.label, "label", "", "label of the new factors")
}

func (a *app) provisionCmd() *cobra.Command {
	var f provisionFlags
	cmd := &cobra.Command{
		Use:   "provision (--user NAME | --batch users.csv)",
		Short: "Provision a key for a user at the IT desk (enroller token)",
		Long: `provision sets up the key in front of the operator for a user: its PIV applet
(on by default), a FIDO2 credential (--fido2), or both. The PIN is typed at
the desk (--ask-pin, no echo), read from --pin-file, or drawn at random and
printed once as a hand-over PIN; with a hand-over PIN the factors stay
pending until the user runs 'keyfleet-agent activate'.

--batch reads a CSV whose header names a user (or username) column and
optionally label, asks for each next key, and journals every key so that
the same command resumes where it stopped.`,
		Example: `  keyfleet-agent provision --user alice --pin-file pin.txt
  keyfleet-agent provision --user bob --fido2 --reset
  keyfleet-agent provision --batch users.csv --fido2`,
		Args: noArgs,
		PreRunE: func(*cobra.Command, []string) error {
			if (f.user == "") == (f.batch == "") {
				return usagef("provision needs --user NAME or --batch users.csv")
			}
			if !f.piv && !f.fido2 {
				return usagef("nothing to provision: give --piv, --fido2 or both")
			}
			if f.askPIN && f.pinFile != "" {
				return usagef("give --pin-file or --ask-pin, not both")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return a.provision(cmd.Context(), f) },
	}
	fs := cmd.Flags()
	f.connFlags.register(fs, true)
	f.registerKeyChoice(fs, "provision the PIV applet (--piv=false to skip it)", "also register a FIDO2 credential for the daemon's relying party")
	fs.StringVar(&f.user, "user", "", "user to provision the key for")
	fs.StringVar(&f.pinFile, "pin-file", "", "file whose first line is the user's PIN; without it (or --ask-pin) a random hand-over PIN is printed once")
	fs.BoolVar(&f.askPIN, "ask-pin", false, "let the user type their PIN at the desk (no echo)")
	fs.StringVar(&f.batch, "batch", "", "CSV of users (column user, optional label) to provision one key each")
	fs.StringVar(&f.results, "results", "", "results CSV of a batch (default: BATCH.results.csv)")
	fs.StringVar(&f.journal, "journal", "", "journal of a batch, to resume it (default: BATCH.journal)")
	return cmd
}

func (a *app) provision(ctx context.Context, f provisionFlags) error {
	d, err := a.daemonClient(f.connFlags)
	if err != nil {
		return err
	}
	stdout, stderr := a.stdout, a.stderr
	if f.batch != "" {
		return runBatch(ctx, d, f, stdout, stderr)
	}
	pin, err := deskPIN(f, stderr)
	if err != nil {
		return err
	}
	out, err := provisionOne(ctx, d, f, f.user, pin, stderr)
	printOutcome(stdout, f.user, out)
	return err
}

// deskPIN is the PIN typed at the desk, or "" for a random hand-over PIN.
func deskPIN(f provisionFlags, stderr io.Writer) (string, error) {
	if f.askPIN {
		return newPIN(stderr, "user's")
	}
	return readPIN(f.pinFile)
}

// outcome is one key's provisioning, as shown and journalled.
type outcome struct {
	serial      uint32
	firmware    string
	piv, fido2  string // factor ids
	states      []string
	handoverPIN string
	puk         string
	// codes are the first factor's recovery codes, which keyfleetd gives
	// only to the person who will hold the key (enroll with their own code).
	codes []string
}

// provisionOne provisions the PIV and FIDO2 applets of the key in front
// of the operator for user. pin "" draws a hand-over PIN for both.
func provisionOne(ctx context.Context, d agent.Daemon, f provisionFlags, user, pin string, stderr io.Writer) (outcome, error) {
	var out outcome
	if f.piv {
		tok, err := openOne(f.reader)
		if err != nil {
			return out, err
		}
		res, err := agent.ProvisionPIV(ctx, d, tok, agent.ProvisionOptions{User: user, PIN: pin, Reset: f.reset, Label: f.label, Enrolment: f.enrolment})
		tok.Close()
		out.serial, out.firmware, out.handoverPIN, out.puk = res.Device.Serial, res.Device.Firmware, res.HandoverPIN, res.PUK
		if err != nil {
			return out, closedHint(err, f, true)
		}
		out.piv, out.states = res.Factor.ID, append(out.states, "piv "+res.Factor.State)
		out.codes = append(out.codes, res.Factor.RecoveryCodes...)
		if pin == "" {
			pin = res.HandoverPIN
		}
	}
	if f.fido2 {
		return provisionFIDO2(ctx, d, f, user, pin, out, stderr)
	}
	return out, nil
}

func provisionFIDO2(ctx context.Context, d agent.Daemon, f provisionFlags, user, pin string, out outcome, stderr io.Writer) (outcome, error) {
	handover := pin == "" || pin == out.handoverPIN
	if pin == "" {
		var err error
		if pin, err = agent.RandomPIN(8); err != nil {
			return out, err
		}
		out.handoverPIN = pin
	}
	tok, err := openFIDO2(f.keyFlags)
	if err != nil {
		return out, err
	}
	defer tok.Close()
	res, err := agent.ProvisionFIDO2(ctx, d, tok, agent.FIDO2Options{User: user, Label: f.label, PIN: pin, Handover: handover,
		Touch: touchPrompt(stderr), Enrolment: f.enrolment})
	if err != nil {
		return out, closedHint(fmt.Errorf("fido2: %w", err), f, false)
	}
	out.fido2, out.states = res.Factor.ID, append(out.states, "fido2 "+res.Factor.State)
	out.codes = append(out.codes, res.Factor.RecoveryCodes...)
	return out, nil
}

// closedHint adds what to do when the daemon refused to complete an
// enrolment because it closed (expired or was cancelled) while the key was
// being set up, or, for an enrolment code, because the code's token
// expired with it. keyfleetd kept nothing; the key itself was changed, so
// a PIV applet needs --reset next time.
func closedHint(err error, f provisionFlags, piv bool) error {
	closed := client.IsProblem(err, client.SlugEnrolmentClosed) ||
		(f.enrolment != nil && client.IsProblem(err, client.SlugTokenExpired, client.SlugTokenRevoked))
	if !closed {
		return err
	}
	again := "to provision it, run the same keyfleet-agent command again"
	if f.enrolment != nil {
		again = "ask your administrator for a new enrolment code, then run keyfleet-agent enroll --code NEW-CODE"
	}
	var re *agent.RefusedError
	if errors.As(err, &re) && re.Restored {
		// The advice of RefusedError is for a refusal; this one needs a
		// new enrolment (or code), on a key that is factory fresh again.
		return fmt.Errorf("%w. The key's PIV applet was put back to factory settings and keyfleetd kept nothing for this key; %s", re.Cause, again)
	}
	if piv {
		again += " with --reset (the key's PIV applet was already changed)"
	}
	return fmt.Errorf("%w. keyfleetd kept nothing for this key; %s", err, again)
}

func printOutcome(w io.Writer, user string, o outcome) {
	if o.piv != "" {
		fmt.Fprintf(w, "provisioned YubiKey %d (firmware %s) for %s: factor %s, state %s\n", o.serial, o.firmware, user, o.piv, o.states[0])
	}
	if o.fido2 != "" {
		fmt.Fprintf(w, "registered FIDO2 credential for %s: factor %s, state %s\n", user, o.fido2, o.states[len(o.states)-1])
	}
	if o.handoverPIN != "" && (o.piv != "" || o.fido2 != "") {
		fmt.Fprintf(w, "hand-over PIN (shown once; the user replaces it with keyfleet-agent activate): %s\n", o.handoverPIN)
	}
	if o.puk != "" && o.piv != "" {
		fmt.Fprintf(w, "PUK (shown once; seal it or discard it): %s\n", o.puk)
	}
	if len(o.codes) > 0 {
		fmt.Fprintf(w, "recovery codes for %s (shown once; each works once: keep them safe, apart from the key):\n  %s\n", user, strings.Join(o.codes, "\n  "))
	}
}
