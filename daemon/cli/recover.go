package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/keyfleet/keyfleet/daemon"
)

func recoverCmd(getenv func(string) string) *cobra.Command {
	var dataDir, configFile, reason string
	var acceptLoss bool
	cmd := &cobra.Command{
		Use:   "recover --data DIR [--accept-loss --reason TEXT]",
		Short: "Check a stopped keyfleetd's store for damage and a lost audit tail; accept the loss",
		Long: `recover checks the store of a stopped keyfleetd: every write-ahead log and
table against its checksums, and the audit log against the newest signed
audit checkpoint (the checkpoint file, the witness). Without --accept-loss it
only reports, exiting 1 when something is wrong.

With --accept-loss, after you decided that restoring a backup is not
possible or not wanted, it keeps a copy of each damaged file under
DIR/quarantine, drops what cannot be read (a log is cut where it is damaged,
a damaged table is dropped), records the loss as a store.loss_accepted audit
event (which files, the last intact sequence number, the checkpoint the store
fell behind, your --reason), and signs a new checkpoint after it, so that
keyfleetd serves again. Audit verify keeps reporting any gap the loss left in
the chain; the event explains it.`,
		Example: `  keyfleetd recover --data /var/lib/keyfleet
  keyfleetd recover --data /var/lib/keyfleet --accept-loss --reason "disk fault 2024-05-02, no newer backup (ticket 4711)"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cfg daemon.Config
			if err := loadConfig(&cfg, configFile, dataDir, getenv); err != nil {
				return err
			}
			if cmd.Flags().Changed("data") {
				cfg.DataDir = dataDir
			}
			res, err := daemon.Recover(cmd.Context(), cfg, daemon.RecoverOptions{AcceptLoss: acceptLoss, Reason: reason, Getenv: getenv})
			printRecover(cmd.OutOrStdout(), res, acceptLoss)
			if err != nil {
				return err
			}
			if !acceptLoss && !res.Healthy() {
				return errors.New("the store needs recovery: restore a backup, or run again with --accept-loss")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data", "", "data folder of the stopped keyfleetd (or KEYFLEET_DATA)")
	f.StringVar(&configFile, "config", "", "YAML config file (default DIR/keyfleetd.yaml if present)")
	f.BoolVar(&acceptLoss, "accept-loss", false, "drop what cannot be read, record the loss in the audit log and serve again")
	f.StringVar(&reason, "reason", "", "why the loss is accepted (recorded in the audit event)")
	return cmd
}

func printRecover(w io.Writer, r daemon.RecoverResult, accepted bool) {
	if r.Healthy() {
		fmt.Fprintf(w, "keyfleetd: the store is intact and matches its newest audit checkpoint (head seq %d); nothing to recover\n", r.Head.Seq)
		return
	}
	switch {
	case r.Damage != nil && accepted:
		fmt.Fprintf(w, "damaged, in %s:\n", r.Damage.Dir)
		for _, d := range r.Damage.Damages {
			fmt.Fprintf(w, "  - %s\n", d)
		}
	case r.Damage != nil:
		fmt.Fprintln(w, r.Damage.Error())
	}
	if r.Mismatch != nil {
		fmt.Fprintf(w, "audit checkpoint: %v\n", r.Mismatch)
	}
	if !accepted || r.LossSeq == 0 {
		return
	}
	fmt.Fprintf(w, "\nThe loss is accepted and recorded as audit event %d (%s).\n", r.LossSeq, daemon.ActionLossAccepted)
	if r.Quarantine != "" && r.Damage != nil {
		fmt.Fprintf(w, "Copies of the damaged files are in %s.\n", r.Quarantine)
	}
	fmt.Fprintf(w, "A new audit checkpoint was signed at seq %d and written to %s.\n", r.Checkpoint.Seq, r.Checkpoint.Source)
	if r.WitnessErr != nil {
		fmt.Fprintf(w, "The witness did not take it (%v): tell its operator about the accepted loss.\n", r.WitnessErr)
	}
	fmt.Fprintf(w, "Next: keyfleetd serve --data ...; then keyfleet audit verify\n")
}
