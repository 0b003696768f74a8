package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyfleet/keyfleet/agent/fido2"
	"github.com/keyfleet/keyfleet/agent/vkey"
	"github.com/keyfleet/keyfleet/internal/clikit"
)

// run executes the keyfleet-vkey command line args (without the program
// name) and returns the exit code: 0 ok, 1 error, 2 usage error. No
// command at all is serve with its defaults.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		args = []string{"serve"}
	}
	root := rootCmd(stdout, stderr)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "keyfleet-vkey: %v; run '%s --help'\n", err, cmd.CommandPath())
		return 2
	}
	fmt.Fprintf(stderr, "keyfleet-vkey: %v\n", err)
	return 1
}

// usageError is a mistake in the command line (exit 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func rootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "keyfleet-vkey",
		Short: "A virtual YubiKey 5 behind pcscd (vpcd), for demos, tests and plugin authors",
		Long: `keyfleet-vkey plugs a virtual YubiKey 5 (PIV, management and FIDO2 applets)
into pcscd through vpcd's reader. Its state file keeps the card's keys and
PINs across restarts; its CA files are the attestation roots a keyfleetd
must be told to trust ('keyfleet-vkey ca export'). Without a command it
serves with the defaults.`,
		Example: `  keyfleet-vkey serve --vpcd 127.0.0.1:35963 --serial 40000001
  keyfleet-vkey ca export --out vkey-root.pem
  sudo keyfleet-vkey reader setup    # a one-slot reader: the key shows as one YubiKey`,
		Args:              noArgs,
		RunE:              func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	ca := &cobra.Command{Use: "ca", Short: "The attestation certificate authorities", Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() }}
	ca.AddCommand(exportCACmd(stdout))
	root.AddCommand(serveCmd(stderr), ca, readerCmd(stdout))
	root.SetOut(stdout)
	root.SetErr(stderr)
	clikit.Standard(root)
	return root
}

// noArgs refuses positional arguments, naming an unknown subcommand.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return &usageError{fmt.Errorf("unknown command or argument %q for %q", args[0], cmd.CommandPath())}
	}
	return nil
}

func defaultDir() string {
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "keyfleet-vkey")
	}
	return "."
}

type serveFlags struct {
	vpcd, state, ca, firmware, formFactor, touch, logLevel string
	fido2State, fido2CA                                    string
	serial                                                 uint
	fips, fido2                                            bool
	touchTimeout                                           time.Duration
}

func serveCmd(stderr io.Writer) *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Plug a virtual YubiKey into vpcd until interrupted",
		Long: `serve connects the card to vpcd's reader port and answers its APDUs until
SIGINT or SIGTERM. State and CA files are created (mode 0600) when missing;
--serial, --firmware, --form-factor and --fips shape a new card only.`,
		Example: `  keyfleet-vkey serve --vpcd 127.0.0.1:35963 --state card.json --ca vkey-ca.pem
  keyfleet-vkey serve --fido2=false --touch deny`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return serve(cmd.Context(), f, stderr) },
	}
	fs := cmd.Flags()
	fs.StringVar(&f.vpcd, "vpcd", "127.0.0.1:35963", "address of the vpcd reader (host:port)")
	fs.StringVar(&f.state, "state", filepath.Join(defaultDir(), "card.json"), "state file (keys, PINs, objects), created when missing")
	fs.StringVar(&f.ca, "ca", filepath.Join(defaultDir(), "ca.pem"), "attestation CA file (key and root), created when missing")
	fs.UintVar(&f.serial, "serial", 0, "serial number of a new card (default random)")
	fs.StringVar(&f.firmware, "firmware", "5.7.4", "firmware version of a new card")
	fs.StringVar(&f.formFactor, "form-factor", "usb-a-keychain", "form factor of a new card: "+strings.Join(formFactorNames(), ", "))
	fs.BoolVar(&f.fips, "fips", false, "mark a new card as a FIPS series key")
	fs.StringVar(&f.touch, "touch", "approve", "simulated touch: approve, deny or timeout")
	fs.DurationVar(&f.touchTimeout, "touch-timeout", 15*time.Second, "how long --touch timeout waits")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug logs every APDU's instruction and status (never its data)")
	fs.BoolVar(&f.fido2, "fido2", true, "give the card a FIDO2 applet (CTAP2 over CCID); --fido2=false makes a PIV-only key")
	fs.StringVar(&f.fido2State, "fido2-state", filepath.Join(defaultDir(), "fido2.json"), "FIDO2 applet state file (credentials, PIN), created when missing")
	fs.StringVar(&f.fido2CA, "fido2-ca", filepath.Join(defaultDir(), "fido2-ca.pem"), "FIDO2 attestation CA file, created when missing")
	return cmd
}

func serve(ctx context.Context, f serveFlags, stderr io.Writer) error {
	o, err := f.options(stderr)
	if err != nil {
		return err
	}
	card, err := vkey.New(o)
	if err != nil {
		return err
	}
	if f.fido2 {
		// The FIDO2 applet takes the card's own serial and firmware, so
		// both applets attest as one key.
		if o.FIDO2, err = f.fido2Applet(card, o.Touch); err != nil {
			return err
		}
		if card, err = vkey.New(o); err != nil {
			return err
		}
	}
	fw := card.Firmware()
	o.Logger.Info("virtual YubiKey ready", "serial", card.Serial(), "firmware",
		fmt.Sprintf("%d.%d.%d", fw[0], fw[1], fw[2]), "vpcd", f.vpcd, "state", f.state)
	return card.Serve(ctx, f.vpcd)
}

func (f serveFlags) options(stderr io.Writer) (vkey.Options, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return vkey.Options{}, fmt.Errorf("--log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	fw, err := parseFirmware(f.firmware)
	if err != nil {
		return vkey.Options{}, err
	}
	ff, ok := formFactors[f.formFactor]
	if !ok {
		return vkey.Options{}, fmt.Errorf("--form-factor %q: want one of %s", f.formFactor, strings.Join(formFactorNames(), ", "))
	}
	if f.fips {
		ff |= 0x80
	}
	touch, ok := map[string]vkey.TouchMode{"approve": vkey.TouchApprove, "deny": vkey.TouchDeny, "timeout": vkey.TouchTimeout}[f.touch]
	if !ok {
		return vkey.Options{}, fmt.Errorf("--touch %q: want approve, deny or timeout", f.touch)
	}
	if f.serial > 0xffffffff {
		return vkey.Options{}, fmt.Errorf("--serial %d does not fit in 32 bits", f.serial)
	}
	if err := os.MkdirAll(filepath.Dir(f.state), 0o700); err != nil {
		return vkey.Options{}, err
	}
	ca, err := loadCA(f.ca)
	if err != nil {
		return vkey.Options{}, err
	}
	return vkey.Options{
		Serial: uint32(f.serial), Firmware: fw, FormFactor: ff, CA: ca,
		Store: vkey.FileStore{Path: f.state}, Touch: touch, TouchTimeout: f.touchTimeout,
		OnTouch: func() { logger.Info("touch requested") }, Logger: logger,
	}, nil
}

// fido2Applet opens (or makes) the software authenticator behind the
// card's FIDO applet.
func (f serveFlags) fido2Applet(card *vkey.Card, touch vkey.TouchMode) (*fido2.Soft, error) {
	if err := os.MkdirAll(filepath.Dir(f.fido2CA), 0o700); err != nil {
		return nil, err
	}
	ca, err := fido2.LoadOrCreateCA(f.fido2CA)
	if err != nil {
		return nil, err
	}
	soft, err := fido2.NewSoft(fido2.SoftOptions{CA: ca, Serial: card.Serial(), Firmware: card.Firmware(), Enterprise: true, Path: f.fido2State})
	if err != nil {
		return nil, err
	}
	soft.SetTouch(map[vkey.TouchMode]fido2.TouchMode{vkey.TouchApprove: fido2.TouchApprove, vkey.TouchDeny: fido2.TouchDeny, vkey.TouchTimeout: fido2.TouchTimeout}[touch])
	return soft, nil
}

func loadCA(path string) (*vkey.CA, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	return vkey.LoadOrCreateCA(path)
}

func parseFirmware(s string) ([3]byte, error) {
	parts := strings.Split(s, ".")
	var v [3]byte
	if len(parts) != 3 {
		return v, fmt.Errorf("--firmware %q: want MAJOR.MINOR.PATCH", s)
	}
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 8)
		if err != nil {
			return v, fmt.Errorf("--firmware %q: want MAJOR.MINOR.PATCH", s)
		}
		v[i] = byte(n)
	}
	return v, nil
}

// formFactors are YubiKey form factor bytes (management applet tag 04).
var formFactors = map[string]byte{
	"usb-a-keychain": 0x01, "usb-a-nano": 0x02, "usb-c-keychain": 0x03, "usb-c-nano": 0x04,
	"usb-c-lightning": 0x05, "usb-a-bio": 0x06, "usb-c-bio": 0x07,
}

func formFactorNames() []string {
	return []string{"usb-a-keychain", "usb-a-nano", "usb-c-keychain", "usb-c-nano", "usb-c-lightning", "usb-a-bio", "usb-c-bio"}
}

func exportCACmd(stdout io.Writer) *cobra.Command {
	var caPath, fido2CA, out string
	var forFIDO2 bool
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the attestation root certificate (PEM) a keyfleetd must trust",
		Long: `export writes the root certificate of the card's PIV attestation CA (or,
with --fido2, of its FIDO2 one), creating the CA when missing. Give it to
keyfleetd as attestation.piv_roots (or fido2_roots). The CA's key never
leaves its file.`,
		Example: `  keyfleet-vkey ca export --out vkey-root.pem
  keyfleet-vkey ca export --fido2 --out vkey-fido2-root.pem`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			root, err := exportRoot(caPath, fido2CA, forFIDO2)
			if err != nil {
				return err
			}
			if out == "" {
				_, err = stdout.Write(root)
				return err
			}
			return os.WriteFile(out, root, 0o644)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&caPath, "ca", filepath.Join(defaultDir(), "ca.pem"), "PIV attestation CA file, created when missing")
	fs.StringVar(&fido2CA, "fido2-ca", filepath.Join(defaultDir(), "fido2-ca.pem"), "FIDO2 attestation CA file, created when missing")
	fs.BoolVar(&forFIDO2, "fido2", false, "export the FIDO2 attestation root (for the daemon's fido2 roots) instead of the PIV one")
	fs.StringVar(&out, "out", "", "write the root certificate here (default standard output)")
	return cmd
}

func exportRoot(pivCA, fido2CA string, forFIDO2 bool) ([]byte, error) {
	if !forFIDO2 {
		ca, err := loadCA(pivCA)
		if err != nil {
			return nil, err
		}
		return ca.RootPEM(), nil
	}
	if err := os.MkdirAll(filepath.Dir(fido2CA), 0o700); err != nil {
		return nil, err
	}
	ca, err := fido2.LoadOrCreateCA(fido2CA)
	if err != nil {
		return nil, err
	}
	return ca.RootPEM(), nil
}
