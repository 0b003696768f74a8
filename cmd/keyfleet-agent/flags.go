package main

import (
	"flag"
	"io"
	"os"
	"strings"

	"github.com/keyfleet/keyfleet/api/client"
)

// commonFlags say where the daemon is, how to reach it, and which keys
// to use.
type commonFlags struct {
	server, tokenFile, caFile string
	keyFlags
}

func (c *commonFlags) register(fs *flag.FlagSet, getenv func(string) string, withToken bool) {
	fs.StringVar(&c.server, "server", getenv("KEYFLEET_SERVER"), "keyfleetd URL (or KEYFLEET_SERVER)")
	if withToken {
		fs.StringVar(&c.tokenFile, "token-file", getenv("KEYFLEET_TOKEN_FILE"), "file holding an API token (or KEYFLEET_TOKEN_FILE)")
	}
	fs.StringVar(&c.caFile, "ca", getenv("KEYFLEET_CA"), "PEM file of the daemon's TLS certificate authority")
	fs.StringVar(&c.reader, "reader", "", "PC/SC reader of the PIV key (default: the only YubiKey)")
	fs.StringVar(&c.fido2Device, "fido2-device", "", "FIDO2 key's HID path (default: the only FIDO2 key)")
	fs.StringVar(&c.softFIDO2, "soft-fido2", "", "use the software FIDO2 authenticator whose state is in this file (tests and demos)")
	fs.StringVar(&c.origin, "origin", "", "origin FIDO2 assertions claim (default https://RP-ID)")
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("keyfleet-agent "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// clientWithToken connects with a token given as a value (a redeemed
// pass's) rather than a file.
func clientWithToken(c commonFlags, token string) (*client.Client, error) {
	var ca []byte
	if c.caFile != "" {
		b, err := os.ReadFile(c.caFile)
		if err != nil {
			return nil, err
		}
		ca = b
	}
	return client.New(client.Config{Server: c.server, Token: strings.TrimSpace(token), CAPEM: ca})
}
