package vpcdconf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Reader is one vpcd reader in pcscd's configuration: its friendly name,
// the driver that serves it and the loopback TCP port a virtual card
// connects to (vpcd listens on it).
type Reader struct {
	Name   string
	Driver string
	Port   int
}

// Validate reports a reader pcscd could not load: an empty name or one
// with a quote or a line break, a driver path that is not absolute, or a
// port outside 1–65535.
func (r Reader) Validate() error {
	var errs []error
	if r.Name == "" || strings.ContainsAny(r.Name, "\"\n\r") {
		errs = append(errs, fmt.Errorf("reader name %q: want a non-empty name without quotes or line breaks", r.Name))
	}
	if !strings.HasPrefix(r.Driver, "/") || strings.ContainsAny(r.Driver, " \n\r\"") {
		errs = append(errs, fmt.Errorf("driver %q: want an absolute path without spaces", r.Driver))
	}
	if r.Port < 1 || r.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d: want 1 to 65535", r.Port))
	}
	return errors.Join(errs...)
}

// Config is the reader's entry for pcscd (a file in /etc/reader.conf.d, or
// in the folder given to pcscd -c): vpcd reads the port from DEVICENAME
// and pcscd tells readers apart by CHANNELID. pcscd names the reader's
// one slot "NAME 00 00".
func (r Reader) Config() string {
	return fmt.Sprintf("FRIENDLYNAME \"%s\"\nDEVICENAME /dev/null:%d\nLIBPATH %s\nCHANNELID %d\n", r.Name, r.Port, r.Driver, r.Port)
}

// YubiKeyReaderName is the name of a reader a virtual YubiKey sits in, as
// a USB one does: ykman lists only readers whose name contains "Yubico" or
// "YubiKey".
const YubiKeyReaderName = "Yubico YubiKey OTP+FIDO+CCID (keyfleet vkey)"

// DefaultPort is the port of the reader Install makes by default: beside
// Debian's stock vpcd reader ("Virtual PCD", /etc/reader.conf.d/vpcd),
// whose two slots listen on 35963 and 35964.
const DefaultPort = 35965

// Install is a one-slot vpcd reader to add to pcscd's configuration: the
// driver copy goes to DriverDir, the reader's entry to ConfDir.
type Install struct {
	// Source is the vpcd driver to copy (default DebianDriver).
	Source string
	// DriverDir and ConfDir are where the copy and the entry go
	// (/usr/local/lib/keyfleet-vkey and /etc/reader.conf.d for pcscd).
	DriverDir, ConfDir string
	// Name is the reader's name (default YubiKeyReaderName); Port is the
	// loopback port the card connects to (default DefaultPort).
	Name string
	Port int
}

// Installed says what Install.Write wrote.
type Installed struct {
	Reader Reader // its Driver is the one-slot copy
	Config string // the reader's entry for pcscd
}

// Write makes the one-slot copy of the driver
// (DriverDir/libifdvpcd-oneslot-PORT.so: one copy per reader) and the
// reader's entry (ConfDir/keyfleet-vkey-PORT), replacing earlier ones of
// the same port. It checks everything first: an invalid reader or a driver
// it cannot copy (errors wrap ErrNoOneSlotDriver) writes nothing.
func (in Install) Write() (Installed, error) {
	if in.Source == "" {
		in.Source = DebianDriver
	}
	if in.Name == "" {
		in.Name = YubiKeyReaderName
	}
	if in.Port == 0 {
		in.Port = DefaultPort
	}
	if !filepath.IsAbs(in.DriverDir) || in.ConfDir == "" {
		return Installed{}, fmt.Errorf("driver folder %q and configuration folder %q: want an absolute driver folder (pcscd loads the driver by its path) and a configuration folder", in.DriverDir, in.ConfDir)
	}
	r := Reader{Name: in.Name, Port: in.Port, Driver: filepath.Join(in.DriverDir, fmt.Sprintf("libifdvpcd-oneslot-%d.so", in.Port))}
	if err := r.Validate(); err != nil {
		return Installed{}, err
	}
	if b, err := os.ReadFile(in.Source); err != nil {
		return Installed{}, fmt.Errorf("reading the vpcd driver: %w (Debian: apt-get install vsmartcard-vpcd)", err)
	} else if _, err := slotsNumberOffset(b); err != nil {
		return Installed{}, fmt.Errorf("%w %s: %v", ErrNoOneSlotDriver, in.Source, err)
	}
	for _, d := range []string{in.DriverDir, in.ConfDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return Installed{}, err
		}
	}
	if err := OneSlotDriver(in.Source, r.Driver); err != nil {
		return Installed{}, err
	}
	out := Installed{Reader: r, Config: filepath.Join(in.ConfDir, fmt.Sprintf("keyfleet-vkey-%d", in.Port))}
	if err := os.WriteFile(out.Config, []byte(r.Config()), 0o644); err != nil {
		os.Remove(r.Driver)
		return Installed{}, fmt.Errorf("writing the reader's entry: %w", err)
	}
	return out, nil
}
