package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keyfleet/keyfleet/agent"
	agentfido2 "github.com/keyfleet/keyfleet/agent/fido2"
	agentpiv "github.com/keyfleet/keyfleet/agent/piv"
)

// opener is swapped by tests; the default speaks PC/SC.
var opener agent.PIVOpener = agentpiv.Opener{}

func (a *app) devicesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "devices",
		Short: "List the connected YubiKeys and the applets that answer",
		Long: `devices prints one line per key in a PC/SC reader (reader, serial, firmware,
form factor, and the applets that answer: piv, management, fido2), then one
line per FIDO2 key found on USB HID (path, product, AAGUID, CTAP versions).
It needs pcscd running; it talks to no keyfleetd.`,
		Example: "  keyfleet-agent devices",
		Args:    noArgs,
		RunE:    func(*cobra.Command, []string) error { return devices(a.stdout) },
	}
}

// devices lists every key: through PC/SC (piv-go), with the applets
// that answer (piv, management, fido2), then FIDO2 keys on USB HID
// (libfido2).
func devices(stdout io.Writer) error {
	readers, err := opener.Readers()
	if err != nil {
		return err
	}
	found := 0
	for _, r := range readers {
		tok, err := opener.Open(r)
		if err != nil {
			continue // the empty second slot of a reader
		}
		info, err := tok.Info()
		tok.Close() // piv-go holds the card exclusively: free it for the FIDO2 probe
		if err != nil {
			return err
		}
		if _, err := agentfido2.ProbePCSC(r); err == nil {
			info.Applets = append(info.Applets, "fido2")
		}
		found++
		fmt.Fprintf(stdout, "%s\tserial %d\tfirmware %s\t%s\tapplets %s\n",
			info.Reader, info.Serial, info.Firmware, info.FormFactor, strings.Join(info.Applets, ","))
	}
	found += hidDevices(stdout)
	if found == 0 {
		return agent.ErrNoKey
	}
	return nil
}

// hidDevices lists the FIDO2 keys libfido2 finds on USB HID (none on a
// machine without USB, or in a build without libfido2).
func hidDevices(stdout io.Writer) int {
	hid := agentfido2.Opener{}
	paths, err := hid.Devices()
	if err != nil {
		return 0
	}
	for _, p := range paths {
		tok, err := hid.Open(p)
		if err != nil {
			fmt.Fprintf(stdout, "%s\tFIDO2 (USB HID)\tcannot open: %v\n", p, err)
			continue
		}
		info, err := tok.Info()
		tok.Close()
		if err != nil {
			fmt.Fprintf(stdout, "%s\tFIDO2 (USB HID)\tcannot read: %v\n", p, err)
			continue
		}
		fmt.Fprintf(stdout, "%s\tFIDO2 (USB HID)\t%s\taaguid %x\tversions %s\n", p, info.Product, info.AAGUID, strings.Join(info.Versions, ","))
	}
	return len(paths)
}

func readPIN(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the PIN file: %w", err)
	}
	pin, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(pin), nil
}

// openOne opens the given reader, or the only key connected.
func openOne(reader string) (agent.PIVToken, error) {
	if reader != "" {
		return opener.Open(reader)
	}
	readers, err := opener.Readers()
	if err != nil {
		return nil, err
	}
	var open []agent.PIVToken
	for _, r := range readers {
		if tok, err := opener.Open(r); err == nil {
			open = append(open, tok)
		}
	}
	if len(open) == 1 {
		return open[0], nil
	}
	for _, t := range open {
		t.Close()
	}
	if len(open) == 0 {
		return nil, agent.ErrNoKey
	}
	return nil, fmt.Errorf("%d YubiKeys are connected: pick one with --reader", len(open))
}
