package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/keyfleet/keyfleet/agent/vkey/vpcdconf"
)

// pcscdConfDir is the folder Debian's pcscd reads its readers from at
// start.
const pcscdConfDir = "/etc/reader.conf.d"

func readerCmd(stdout io.Writer) *cobra.Command {
	reader := &cobra.Command{Use: "reader", Short: "The pcscd reader a virtual key plugs into", Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() }}
	reader.AddCommand(readerSetupCmd(stdout))
	return reader
}

func readerSetupCmd(stdout io.Writer) *cobra.Command {
	var in vpcdconf.Install
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Add a one-slot reader to pcscd, so that a virtual key shows as one YubiKey",
		Long: `setup adds a vpcd reader to pcscd that shows a virtual key as a USB YubiKey
shows: one reader, one slot, with a YubiKey's name. Debian's vpcd gives each
reader two slots, so ykman would count two YubiKeys ("Multiple YubiKeys
detected") for one key in its stock reader.

It writes a copy of Debian's vpcd driver that reports one slot
(--driver-dir/libifdvpcd-oneslot-PORT.so: the only change is the slot count
the driver answers) and the reader's entry for pcscd
(--conf-dir/keyfleet-vkey-PORT), then says what to run. The stock reader
("Virtual PCD", ports 35963 and 35964) stays; ykman does not count it. Run it
as root for the default folders; run it again after vsmartcard-vpcd is
upgraded.`,
		Example: `  sudo keyfleet-vkey reader setup
  sudo systemctl restart pcscd
  keyfleet-vkey serve --vpcd 127.0.0.1:35965`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			done, err := in.Write()
			if err != nil {
				return err
			}
			printReaderSetup(stdout, done, in.ConfDir)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&in.Port, "port", vpcdconf.DefaultPort, "loopback port of the reader (serve --vpcd 127.0.0.1:PORT)")
	fs.StringVar(&in.Name, "name", vpcdconf.YubiKeyReaderName, "the reader's name (ykman lists readers whose name contains Yubico or YubiKey)")
	fs.StringVar(&in.Source, "driver", vpcdconf.DebianDriver, "the vpcd driver to copy (Debian's vsmartcard-vpcd)")
	fs.StringVar(&in.DriverDir, "driver-dir", "/usr/local/lib/keyfleet-vkey", "where the one-slot copy of the driver goes")
	fs.StringVar(&in.ConfDir, "conf-dir", pcscdConfDir, "where the reader's entry goes: pcscd's reader folder")
	return cmd
}

func printReaderSetup(w io.Writer, done vpcdconf.Installed, confDir string) {
	fmt.Fprintf(w, "keyfleet-vkey: added the reader %q (port %d) to pcscd's configuration:\n", done.Reader.Name+" 00 00", done.Reader.Port)
	fmt.Fprintf(w, "  %s  (a one-slot copy of the vpcd driver)\n  %s  (the reader's entry)\n", done.Reader.Driver, done.Config)
	fmt.Fprintf(w, "Next:\n")
	if filepath.Clean(confDir) == pcscdConfDir {
		fmt.Fprintf(w, "  sudo systemctl restart pcscd    # pcscd reads its readers when it starts\n")
	} else {
		fmt.Fprintf(w, "  sudo pcscd -f -c %s    # a pcscd with this folder's readers (stop the system's first)\n", confDir)
	}
	fmt.Fprintf(w, "  keyfleet-vkey serve --vpcd 127.0.0.1:%d\n", done.Reader.Port)
	fmt.Fprintf(w, "  ykman info                       # one YubiKey: no --device needed\n")
	fmt.Fprintf(w, "To undo: rm %s %s, then restart pcscd.\n", done.Config, done.Reader.Driver)
}
