package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/agent/fido2"
	"github.com/keyfleet/keyfleet/agent/vkey"
)

const usage = `usage:
  keyfleet-vkey serve [flags]        plug a virtual YubiKey into vpcd
  keyfleet-vkey ca export [flags]    write the attestation root certificate (PEM; --fido2 for the FIDO2 one)
Run a command with -h for its flags.`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		args = []string{"serve"}
	}
	var err error
	switch {
	case args[0] == "serve":
		err = serve(ctx, args[1:], stderr)
	case args[0] == "ca" && len(args) > 1 && args[1] == "export":
		err = exportCA(args[2:], stdout, stderr)
	case args[0] == "-h" || args[0] == "--help" || args[0] == "help":
		fmt.Fprintln(stdout, usage)
		return 0
	default:
		fmt.Fprintln(stderr, usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "keyfleet-vkey:", err)
		return 1
	}
	return 0
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

func parseServe(args []string, stderr io.Writer) (serveFlags, error) {
	var f serveFlags
	fs := flag.NewFlagSet("keyfleet-vkey serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
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
	fs.BoolVar(&f.fido2, "fido2", true, "give the card a FIDO2 applet (CTAP2 over CCID); -fido2=false makes a PIV-only key")
	fs.StringVar(&f.fido2State, "fido2-state", filepath.Join(defaultDir(), "fido2.json"), "FIDO2 applet state file (credentials, PIN), created when missing")
	fs.StringVar(&f.fido2CA, "fido2-ca", filepath.Join(defaultDir(), "fido2-ca.pem"), "FIDO2 attestation CA file, created when missing")
	return f, fs.Parse(args)
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	f, err := parseServe(args, stderr)
	if err != nil {
		return err
	}
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

func exportCA(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keyfleet-vkey ca export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	caPath := fs.String("ca", filepath.Join(defaultDir(), "ca.pem"), "PIV attestation CA file, created when missing")
	fido2CA := fs.String("fido2-ca", filepath.Join(defaultDir(), "fido2-ca.pem"), "FIDO2 attestation CA file, created when missing")
	forFIDO2 := fs.Bool("fido2", false, "export the FIDO2 attestation root (for the daemon's fido2 roots) instead of the PIV one")
	out := fs.String("out", "", "write the root certificate here (default standard output)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	root, err := exportRoot(*caPath, *fido2CA, *forFIDO2)
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = stdout.Write(root)
		return err
	}
	return os.WriteFile(*out, root, 0o644)
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
