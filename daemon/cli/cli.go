// Package cli is keyfleetd's command line: init, serve, recover, version
// and completion.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyfleet/keyfleet/daemon"
	"github.com/keyfleet/keyfleet/daemon/runtimemem"
	"github.com/keyfleet/keyfleet/internal/clikit"
)

// Run runs keyfleetd with args and returns the exit code: 0 ok, 1 error,
// 2 usage error.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	root := &cobra.Command{
		Use:           "keyfleetd",
		Short:         "keyfleet's daemon: MFA lifecycle, attestation, policy and audit",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(initCmd(getenv), serveCmd(getenv), checkConfigCmd(getenv), defaultConfigCmd())
	root.AddCommand(storeCmds(getenv)...)
	root.AddCommand(recoverCmd(getenv))
	clikit.Standard(root)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "keyfleetd: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) || isFlagError(err) {
		return 2
	}
	return 1
}

type usageError struct{ error }

func isFlagError(err error) bool {
	for _, p := range []string{"unknown flag", "unknown command", "unknown shorthand", "flag needs an argument", "invalid argument", "accepts "} {
		if strings.Contains(err.Error(), p) {
			return true
		}
	}
	return false
}

func initCmd(getenv func(string) string) *cobra.Command {
	var o daemon.InitOptions
	cmd := &cobra.Command{
		Use:   "init --data DIR",
		Short: "Create a data folder: keys, TLS certificate, store and the first admin token",
		Long: `init creates DIR (mode 0700) with a 256-bit store encryption key and a separate
sealing key (files 0600, unless KEYFLEET_STORE_KEY / KEYFLEET_SEAL_KEY hold them),
a self-signed TLS certificate for localhost (unless --tls-cert/--tls-key give one),
the encrypted store, and a bootstrap administrator whose token is written once,
0600, to DIR/admin.token. It never overwrites an existing data folder.`,
		Example: `  keyfleetd init --data /var/lib/keyfleet
  KEYFLEET_STORE_KEY=$(openssl rand -hex 32) KEYFLEET_SEAL_KEY=$(openssl rand -hex 32) keyfleetd init --data ./var/keyfleet`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Dir == "" {
				return usageError{errors.New("--data DIR is required: the folder to create")}
			}
			o.Getenv = getenv
			res, err := daemon.Init(cmd.Context(), o)
			if err != nil {
				return err
			}
			printInit(cmd.OutOrStdout(), res)
			return nil
		},
	}
	cmd.Flags().StringVar(&o.Dir, "data", "", "data folder to create")
	cmd.Flags().StringVar(&o.ConfigFile, "config", "", "where to write the config file (default DIR/keyfleetd.yaml); a file already there is kept")
	cmd.Flags().StringVar(&o.TLSCert, "tls-cert", "", "PEM certificate to serve instead of a self-signed one")
	cmd.Flags().StringVar(&o.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	cmd.Flags().StringVar(&o.AdminUser, "admin", "admin", "username of the first founding administrator (gets the command-line token)")
	cmd.Flags().StringSliceVar(&o.Admins, "admins", nil, "further founding administrators, comma-separated: each gets a pass for their first security key, so that two people can approve from day one")
	cmd.Flags().DurationVar(&o.TokenTTL, "token-ttl", 24*time.Hour, "how long the first administrator's token lasts (then: keyfleet login with a key)")
	cmd.Flags().IntVar(&o.BreakGlassShares, "breakglass-shares", 5, "how many break-glass shares to make, one per holder")
	cmd.Flags().IntVar(&o.BreakGlassThreshold, "breakglass-threshold", 3, "how many shares open a break-glass session")
	cmd.Flags().StringVar(&o.PostgresDSN, "postgres", "", "keep the store in this PostgreSQL database (postgres://…) instead of DIR/store")
	return cmd
}

func printInit(w io.Writer, r daemon.InitResult) {
	keyLine := func(name, file, env string) {
		if file == "" {
			fmt.Fprintf(w, "  %-16s from %s (not written to disk)\n", name, env)
			return
		}
		fmt.Fprintf(w, "  %-16s %s (0600)\n", name, file)
	}
	fmt.Fprintf(w, "keyfleetd: initialised %s\n", r.Dir)
	keyLine("store key", r.StoreKeyFile, daemon.EnvStoreKey)
	keyLine("sealing key", r.SealKeyFile, daemon.EnvSealKey)
	fmt.Fprintf(w, "  %-16s %s\n  %-16s SHA-256 %s\n", "TLS certificate", r.TLSCert, "", r.TLSFingerprint)
	fmt.Fprintf(w, "  %-16s %s\n", "config", r.ConfigFile)
	fmt.Fprintf(w, "  %-16s %s (user %q, 0600, until %s): keep it safe, then delete the file\n", "admin token", r.AdminTokenFile, r.AdminUser, r.TokenExpires.Format(time.RFC3339))
	names := make([]string, 0, len(r.FounderPassFiles))
	for n := range r.FounderPassFiles {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-16s %s (for %s alone: their first security key, 72h, at /welcome or with keyfleet-agent enroll, which asks for it)\n", "founder pass", r.FounderPassFiles[n], n)
	}
	fmt.Fprintf(w, "  %-16s %d shares, any %d open one emergency session:\n", "break-glass", len(r.BreakGlassFiles), r.BreakGlassThreshold)
	for _, f := range r.BreakGlassFiles {
		fmt.Fprintf(w, "  %-16s %s\n", "", f)
	}
	if r.CheckpointNote == "" {
		fmt.Fprintf(w, "  %-16s %s (signed; keep it outside the data folder)\n", "audit checkpoint", r.CheckpointFile)
	} else {
		fmt.Fprintf(w, "  %-16s not written: %s; set audit.checkpoint.file in the config to a writable file outside the data folder\n", "audit checkpoint", r.CheckpointNote)
	}
	fmt.Fprintf(w, "\nGive each break-glass share to a different holder, then delete the files.\n")
	fmt.Fprintf(w, "Back up the two keys apart from the data folder: without them the store cannot be read.\n")
	if r.Postgres {
		fmt.Fprintf(w, "For more keyfleetd on this database, copy %s (its keys, the checkpoint key %s included, TLS and config) to each host: they must share the keys, and refuse to start without them. The leader writes the audit checkpoints; give each keyfleetd the same audit.checkpoint.witness_url so that each can check the newest.\n", r.Dir, filepath.Join(r.Dir, "keys", "checkpoint.key"))
	}
	if r.ConfigFile != daemon.ConfigPath(r.Dir) {
		fmt.Fprintf(w, "Next: keyfleetd serve --data %s --config %s\n", r.Dir, r.ConfigFile)
		return
	}
	fmt.Fprintf(w, "Next: keyfleetd serve --data %s\n", r.Dir)
}

func serveCmd(getenv func(string) string) *cobra.Command {
	var dataDir, configFile, listen, logFormat, logLevel string
	cmd := &cobra.Command{
		Use:   "serve --data DIR",
		Short: "Serve the API over HTTPS until SIGINT or SIGTERM",
		Long: `serve runs keyfleetd on a data folder made by init. Settings come from the
config file (--config, default DIR/keyfleetd.yaml), then KEYFLEET_* environment
variables, then flags; later sources win. On SIGINT or SIGTERM it stops taking
connections, lets in-flight requests finish and closes the store cleanly.
On SIGHUP it reads the configuration again and applies the attestation
roots, the event sinks and the TLS certificate without a restart (audited as
config.reload, or config.reload_failed with nothing changed).`,
		Example: `  keyfleetd serve --data /var/lib/keyfleet
  keyfleetd serve --data ./var/keyfleet --listen 127.0.0.1:9443 --log-format text`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cfg daemon.Config
			if err := loadConfig(&cfg, configFile, dataDir, getenv); err != nil {
				return err
			}
			flagOverrides(cmd, &cfg, dataDir, listen, logFormat, logLevel)
			setRuntime(cfg, getenv)
			srv, err := daemon.New(cfg, daemon.Options{Getenv: getenv, LogOut: cmd.ErrOrStderr()})
			if err != nil {
				return err
			}
			stop := reloadOnSIGHUP(cmd.Context(), srv, func() (daemon.Config, error) {
				var cfg daemon.Config
				err := loadConfig(&cfg, configFile, dataDir, getenv)
				flagOverrides(cmd, &cfg, dataDir, listen, logFormat, logLevel)
				return cfg, err
			})
			defer stop()
			return srv.Run(cmd.Context(), func(addr string) { printReady(cmd.ErrOrStderr(), cfg.DataDir, addr) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data", "", "data folder made by 'keyfleetd init' (or KEYFLEET_DATA)")
	f.StringVar(&configFile, "config", "", "YAML config file (default DIR/keyfleetd.yaml if present)")
	f.StringVar(&listen, "listen", "", "HTTPS address (default 127.0.0.1:8443)")
	f.StringVar(&logFormat, "log-format", "", "json or text")
	f.StringVar(&logLevel, "log-level", "", "debug, info, warn or error")
	return cmd
}

func loadConfig(cfg *daemon.Config, file, dataDir string, getenv func(string) string) error {
	dir := dataDir
	if dir == "" {
		dir = getenv("KEYFLEET_DATA")
	}
	if file == "" && dir != "" {
		if _, err := os.Stat(daemon.ConfigPath(dir)); err == nil {
			file = daemon.ConfigPath(dir)
		}
	}
	if file != "" {
		if err := cfg.LoadFile(file); err != nil {
			return err
		}
	}
	return cfg.LoadEnv(getenv)
}

func flagOverrides(cmd *cobra.Command, cfg *daemon.Config, dataDir, listen, logFormat, logLevel string) {
	set := func(name string, dst *string, v string) {
		if cmd.Flags().Changed(name) {
			*dst = v
		}
	}
	set("data", &cfg.DataDir, dataDir)
	set("listen", &cfg.Listen, listen)
	set("log-format", &cfg.Log.Format, logFormat)
	set("log-level", &cfg.Log.Level, logLevel)
}

func printReady(w io.Writer, dir, addr string) {
	url := "https://" + addr
	fmt.Fprintf(w, "\nkeyfleetd is ready at %s (Ctrl-C stops it)\n", url)
	if _, port, err := net.SplitHostPort(addr); err == nil {
		fmt.Fprintf(w, "The dashboard is at https://localhost:%s/ (trust %s in the browser first).\n", port, filepath.Join(dir, "tls", "cert.pem"))
	}
	tokenFile := filepath.Join(dir, "admin.token")
	if _, err := os.Stat(tokenFile); err == nil {
		fmt.Fprintf(w, "The first admin token is in %s.\n", tokenFile)
	}
	fmt.Fprintf(w, "Next, in another terminal:\n")
	fmt.Fprintf(w, "  bin/keyfleet login --server %s --token-file %s --ca %s\n", url, tokenFile, filepath.Join(dir, "tls", "cert.pem"))
	fmt.Fprintf(w, "  bin/keyfleet users create alice --display-name 'Alice Example' --email alice@example.org --group engineering\n")
	fmt.Fprintf(w, "  bin/keyfleet audit verify\n\n")
}

func defaultConfigCmd() *cobra.Command {
	var dataDir, checkpointFile string
	cmd := &cobra.Command{
		Use:   "default-config",
		Short: "Print the configuration file init writes: every setting at its default",
		Long: `default-config prints the configuration file that 'keyfleetd init' writes,
every setting at its default with a comment saying what it does. Packagers
install it as /etc/keyfleet/keyfleetd.yaml; --data adds the data setting and
--checkpoint-file sets audit.checkpoint.file (a folder the service may write,
outside the data folder).`,
		Example: `  keyfleetd default-config > keyfleetd.yaml
  keyfleetd default-config --data /var/lib/keyfleet --checkpoint-file /var/lib/keyfleet-anchor/audit.checkpoint > /etc/keyfleet/keyfleetd.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			text := daemon.DefaultConfigFile(dataDir)
			if checkpointFile != "" {
				var err error
				if text, err = daemon.WithCheckpointFile(text, dataDir, checkpointFile); err != nil {
					return usageError{fmt.Errorf("--checkpoint-file: %w", err)}
				}
			}
			fmt.Fprint(cmd.OutOrStdout(), text)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", "", "data folder to name in the file")
	cmd.Flags().StringVar(&checkpointFile, "checkpoint-file", "", "audit.checkpoint.file to set in the file: where the newest signed audit checkpoint is kept, outside the data folder")
	return cmd
}

func checkConfigCmd(getenv func(string) string) *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "check-config FILE",
		Short: "Check a configuration file: every problem with its line and setting",
		Long: `check-config reads FILE as serve would and reports every problem at once,
one a line as FILE:LINE: setting: what is wrong: YAML syntax, unknown
settings (with the nearest known name), values of the wrong kind, values out
of range, invalid event sinks and plugins, and attestation root files that
cannot be read. With --data (or KEYFLEET_DATA, or a data setting in the
file) it also loads the TLS certificate. It exits 0 when the file is good
and 1 otherwise; it changes nothing.`,
		Example: `  keyfleetd check-config /etc/keyfleet/keyfleetd.yaml --data /var/lib/keyfleet
  keyfleetd check-config var/keyfleet/keyfleetd.yaml`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{errors.New("check-config needs one FILE: the configuration file to check")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if dataDir == "" {
				dataDir = getenv("KEYFLEET_DATA")
			}
			err := daemon.CheckConfigFile(args[0], dataDir)
			var ce daemon.ConfigErrors
			if errors.As(err, &ce) {
				fmt.Fprintln(cmd.ErrOrStderr(), ce.Error())
				return fmt.Errorf("%s has %d problem(s); fix them and run keyfleetd check-config again", args[0], len(ce))
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", "", "the data folder serve will be given (default $KEYFLEET_DATA)")
	return cmd
}

// setRuntime sets the Go runtime's memory limit from store.memory and
// the collector's GOGC (daemon.GCPercent), each unless the environment
// sets it: the Go runtime read those at start, and they win.
func setRuntime(cfg daemon.Config, getenv func(string) string) {
	runtimemem.Set(int64(cfg.Store.Memory), getenv)
}
