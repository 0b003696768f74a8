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
	agentpiv "github.com/keyfleet/keyfleet/agent/piv"
	"github.com/keyfleet/keyfleet/api/client"
)

const usage = `usage:
  keyfleet-agent devices                     list connected YubiKeys
  keyfleet-agent provision --user NAME --piv provision a key for a user (IT desk)
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
		tok.Close()
		if err != nil {
			return err
		}
		found++
		fmt.Fprintf(stdout, "%s\tserial %d\tfirmware %s\t%s\tapplets %s\n",
			info.Reader, info.Serial, info.Firmware, info.FormFactor, strings.Join(info.Applets, ","))
	}
	if found == 0 {
		return agent.ErrNoKey
	}
	return nil
}

type provisionFlags struct {
	server, tokenFile, caFile, user, pinFile, label, reader string
	piv, reset                                              bool
}

func parseProvision(args []string, stderr io.Writer, getenv func(string) string) (provisionFlags, error) {
	var f provisionFlags
	fs := flag.NewFlagSet("keyfleet-agent provision", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.server, "server", getenv("KEYFLEET_SERVER"), "keyfleetd URL (or KEYFLEET_SERVER)")
	fs.StringVar(&f.tokenFile, "token-file", getenv("KEYFLEET_TOKEN_FILE"), "file holding an enroller token (or KEYFLEET_TOKEN_FILE)")
	fs.StringVar(&f.caFile, "ca", getenv("KEYFLEET_CA"), "PEM file of the daemon's TLS certificate authority")
	fs.StringVar(&f.user, "user", "", "user to provision the key for (required)")
	fs.BoolVar(&f.piv, "piv", true, "provision the PIV applet")
	fs.BoolVar(&f.reset, "reset", false, "wipe the key's PIV applet first (its keys are lost)")
	fs.StringVar(&f.pinFile, "pin-file", "", "file whose first line is the user's PIN; without it a random hand-over PIN is printed once")
	fs.StringVar(&f.label, "label", "", "label of the new factor")
	fs.StringVar(&f.reader, "reader", "", "PC/SC reader (default: the only YubiKey)")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if f.user == "" || f.server == "" || f.tokenFile == "" {
		return f, errors.New("provision needs --user, --server and --token-file")
	}
	return f, nil
}

func provision(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	f, err := parseProvision(args, stderr, getenv)
	if err != nil {
		return err
	}
	d, err := daemonClient(f)
	if err != nil {
		return err
	}
	pin, err := readPIN(f.pinFile)
	if err != nil {
		return err
	}
	tok, err := openOne(f.reader)
	if err != nil {
		return err
	}
	defer tok.Close()
	res, err := agent.ProvisionPIV(ctx, d, tok, agent.ProvisionOptions{User: f.user, PIN: pin, Reset: f.reset, Label: f.label})
	if err != nil {
		return err
	}
	printResult(stdout, f.user, res)
	return nil
}

func printResult(w io.Writer, user string, res agent.ProvisionResult) {
	fmt.Fprintf(w, "provisioned YubiKey %d (firmware %s) for %s: factor %s, state %s\n",
		res.Device.Serial, res.Device.Firmware, user, res.Factor.ID, res.Factor.State)
	if res.HandoverPIN != "" {
		fmt.Fprintf(w, "hand-over PIN (shown once; the user replaces it with keyfleet-agent activate): %s\n", res.HandoverPIN)
	}
	fmt.Fprintf(w, "PUK (shown once; seal it or discard it): %s\n", res.PUK)
}

func daemonClient(f provisionFlags) (*client.Client, error) {
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
