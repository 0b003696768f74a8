package cli

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/keyfleet/keyfleet/daemon"
)

// storeCmds are the store's commands: migrate, migrate-store, backup,
// restore, new-epoch.
func storeCmds(getenv func(string) string) []*cobra.Command {
	return []*cobra.Command{migrateCmd(getenv), migrateStoreCmd(getenv), backupCmd(getenv), restoreCmd(getenv), newEpochCmd(getenv)}
}

// dataFlags adds --data and --config and returns a loader of the config.
func dataFlags(cmd *cobra.Command, getenv func(string) string) func() (daemon.Config, error) {
	var dataDir, configFile string
	cmd.Flags().StringVar(&dataDir, "data", "", "data folder made by 'keyfleetd init' (or KEYFLEET_DATA)")
	cmd.Flags().StringVar(&configFile, "config", "", "YAML config file (default DIR/keyfleetd.yaml if present)")
	return func() (daemon.Config, error) {
		var cfg daemon.Config
		if err := loadConfig(&cfg, configFile, dataDir, getenv); err != nil {
			return cfg, err
		}
		if cmd.Flags().Changed("data") {
			cfg.DataDir = dataDir
		}
		if cfg.DataDir == "" {
			return cfg, usageError{errors.New("--data DIR is required")}
		}
		return cfg, nil
	}
}

func migrateCmd(getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate --data DIR",
		Short: "Apply the PostgreSQL schema migrations this keyfleetd carries",
		Long: `migrate brings the PostgreSQL database of store.backend postgres to the schema
this keyfleetd needs. keyfleetd serve also does it at start; run migrate first to
upgrade the schema before rolling new keyfleetd out. Migrations run one at a time
under a lock, so several keyfleetd starting at once apply each once.`,
		Args: cobra.NoArgs,
	}
	load := dataFlags(cmd, getenv)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := load()
		if err != nil {
			return err
		}
		applied, err := daemon.MigrateSchema(cmd.Context(), cfg, nil)
		if err != nil {
			return err
		}
		for _, m := range applied {
			fmt.Fprintf(cmd.OutOrStdout(), "applied %05d %s\n", m.Version, m.Name)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "keyfleetd: the database schema is up to date (%d applied now)\n", len(applied))
		return nil
	}
	return cmd
}

func backupCmd(getenv func(string) string) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "backup --data DIR --out FILE",
		Short: "Write an online backup of the Badger store, while keyfleetd serves",
		Args:  cobra.NoArgs,
	}
	load := dataFlags(cmd, getenv)
	cmd.Flags().StringVar(&out, "out", "", "file to write (0600); - for standard output")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := load()
		if err != nil {
			return err
		}
		if out == "" {
			return usageError{errors.New("--out FILE is required")}
		}
		w := cmd.OutOrStdout()
		if out != "-" {
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("%w (the backup never overwrites a file)", err)
			}
			defer f.Close()
			w = f
		}
		if _, err := daemon.Backup(cmd.Context(), cfg, getenv, w); err != nil {
			if out != "-" {
				os.Remove(out)
			}
			return err
		}
		if out != "-" {
			fmt.Fprintf(cmd.ErrOrStderr(), "keyfleetd: backup written to %s; it is encrypted under the store key: keep the key apart\n", out)
		}
		return nil
	}
	return cmd
}

func restoreCmd(getenv func(string) string) *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "restore --data DIR --from FILE",
		Short: "Restore a Badger backup into DIR/store and start a new store epoch",
		Long: `restore loads a backup made by 'keyfleetd backup' into DIR/store, which must
not exist (stop keyfleetd, move the old store aside), and starts a new store
epoch: event sinks then stop with a message instead of re-using the sequence
numbers written after the backup (docs/operations.md, "The store epoch").`,
		Args: cobra.NoArgs,
	}
	load := dataFlags(cmd, getenv)
	cmd.Flags().StringVar(&from, "from", "", "backup file")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := load()
		if err != nil {
			return err
		}
		var r io.Reader = cmd.InOrStdin()
		if from != "-" {
			f, err := os.Open(from)
			if err != nil {
				return err
			}
			defer f.Close()
			r = f
		}
		epoch, head, err := daemon.Restore(cfg, getenv, r)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "keyfleetd: restored; audit head %d; new store epoch %s\n", head, epoch)
		return nil
	}
	return cmd
}

func newEpochCmd(getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "new-epoch --data DIR",
		Short: "Start a new store epoch after restoring the store by other means",
		Args:  cobra.NoArgs,
	}
	load := dataFlags(cmd, getenv)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := load()
		if err != nil {
			return err
		}
		epoch, err := daemon.NewEpoch(cmd.Context(), cfg, getenv)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "keyfleetd: new store epoch %s\n", epoch)
		return nil
	}
	return cmd
}

func migrateStoreCmd(getenv func(string) string) *cobra.Command {
	var from, to string
	cmd := &cobra.Command{
		Use:   "migrate-store --data DIR --from STOREDIR --to postgres://…",
		Short: "Copy a Badger store into an empty PostgreSQL database and verify the copy",
		Args:  cobra.NoArgs,
	}
	load := dataFlags(cmd, getenv)
	cmd.Flags().StringVar(&from, "from", "", "the Badger store folder (default DIR/store)")
	cmd.Flags().StringVar(&to, "to", "", "the PostgreSQL database")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := load()
		if err != nil {
			return err
		}
		if to == "" {
			return usageError{errors.New("--to postgres://… is required")}
		}
		rep, err := daemon.CopyStore(cmd.Context(), cfg, getenv, from, to)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "keyfleetd: copied %d records and %d audit events; chain verified up to %d (%s)\n",
			rep.Records, rep.Events, rep.Head, rep.Hash)
		fmt.Fprintf(cmd.OutOrStdout(), "Next: set store.backend: postgres and store.postgres.dsn in %s, then keyfleetd serve\n", daemon.ConfigPath(cfg.DataDir))
		return nil
	}
	return cmd
}
