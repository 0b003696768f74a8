package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/keyfleet/keyfleet/agent"
	agentfido2 "github.com/keyfleet/keyfleet/agent/fido2"
	agentpiv "github.com/keyfleet/keyfleet/agent/piv"
	"github.com/keyfleet/keyfleet/api/client"
)

const usage = `usage:
  keyfleet-agent devices                                  list connected YubiKeys
  keyfleet-agent provision --user NAME [--piv] [--fido2]  provision a key for a user (IT desk)
  keyfleet-agent provision --batch users.csv [--fido2]    provision keys for a list of users
  keyfleet-agent enroll --code CODE [--piv] [--fido2]     enrol your own key with a one-time code
  keyfleet-agent activate                                 replace a hand-over PIN, activate the factor
  keyfleet-agent verify --user NAME                       prove possession of an enrolled key
Run a command with -h for its flags.`

// opener is swapped by tests; the default speaks PC/SC.
var opener agent.PIVOpener = agentpiv.Opener{}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "devices":
		err = devices(stdout)
	case "provision":
		err = provision(ctx, args[1:], stdout, stderr, getenv)
	case "enroll", "enrol":
		err = enroll(ctx, args[1:], stdout, stderr, getenv)
	case "activate":
		err = activate(ctx, args[1:], stdout, stderr, getenv)
	case "verify":
		err = verify(ctx, args[1:], stdout, stderr, getenv)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return 0
	default:
		fmt.Fprintln(stderr, usage)
		return 2
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintln(stderr, "keyfleet-agent:", err)
		return 1
	}
	return 0
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

func daemonClient(f commonFlags) (*client.Client, error) {
	if f.server == "" || f.tokenFile == "" {
		return nil, errors.New("give --server and --token-file (or KEYFLEET_SERVER and KEYFLEET_TOKEN_FILE)")
	}
	tok, err := os.ReadFile(f.tokenFile)
	if err != nil {
		return nil, fmt.Errorf("reading the token: %w", err)
	}
	var ca []byte
	if f.caFile != "" {
		if ca, err = os.ReadFile(f.caFile); err != nil {
			return nil, fmt.Errorf("reading the CA file: %w", err)
		}
	}
	return client.New(client.Config{Server: f.server, Token: strings.TrimSpace(string(tok)), CAPEM: ca})
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
