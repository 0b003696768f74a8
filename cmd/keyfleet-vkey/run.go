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

	"github.com/keyfleet/keyfleet/agent/vkey"
)

const usage = `usage:
  keyfleet-vkey serve [flags]        plug a virtual YubiKey into vpcd
  keyfleet-vkey ca export [flags]    write the attestation root certificate (PEM)
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
	serial                                                 uint
	fips                                                   bool
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
	caPath := fs.String("ca", filepath.Join(defaultDir(), "ca.pem"), "attestation CA file, created when missing")
	out := fs.String("out", "", "write the root certificate here (default standard output)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ca, err := loadCA(*caPath)
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = stdout.Write(ca.RootPEM())
		return err
	}
	return os.WriteFile(*out, ca.RootPEM(), 0o644)
}
