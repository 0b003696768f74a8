package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/keyfleet/keyfleet/api/client"
	"github.com/keyfleet/keyfleet/internal/cli"
)

// EnvTokenFile names a file holding the token, for scripts that keep it
// out of the environment.
const EnvTokenFile = "KEYFLEET_TOKEN_FILE"

// userAgent identifies the agent to the daemon.
const userAgent = "keyfleet-agent"

// connFlags say where keyfleetd is and how to reach it.
type connFlags struct {
	server, tokenFile, caFile string
}

func (c *connFlags) register(fs *pflag.FlagSet, withToken bool) {
	fs.StringVar(&c.server, "server", "", "keyfleetd's URL, e.g. https://keyfleet.example.com (default $KEYFLEET_SERVER, else the saved login's)")
	if withToken {
		fs.StringVar(&c.tokenFile, "token-file", "", "file holding an API token (default $KEYFLEET_TOKEN, $KEYFLEET_TOKEN_FILE, else the saved login's)")
	}
	fs.StringVar(&c.caFile, "ca", "", "PEM certificate to trust for keyfleetd (default $KEYFLEET_CA, else the saved login's, else the system's)")
}

// conn is a resolved connection: server, token (possibly empty) and CA.
type conn struct {
	server, token string
	ca            []byte
}

// resolve merges the flags, the environment and the saved login, in that
// order. The saved token and CA go only with the saved server: a token is
// never sent to a server it was not saved for.
func (a *app) resolve(c connFlags, withToken bool) (conn, error) {
	saved, err := cli.LoadSavedLogin(a.getenv, a.stderr)
	if err != nil {
		return conn{}, err
	}
	var r conn
	r.server = firstOf(c.server, a.getenv(cli.EnvServer), saved.Server)
	if r.server == "" {
		return conn{}, usagef("no keyfleetd to talk to: give --server URL, set %s, or run keyfleet login", cli.EnvServer)
	}
	fromSaved := saved.Server != "" && cli.SameServer(r.server, saved.Server)
	if r.ca, err = a.caPEM(c.caFile, fromSaved, saved); err != nil {
		return conn{}, err
	}
	if withToken {
		if r.token, err = a.token(c.tokenFile, fromSaved, saved); err != nil {
			return conn{}, err
		}
	}
	return r, nil
}

func (a *app) caPEM(flag string, fromSaved bool, saved cli.SavedLogin) ([]byte, error) {
	path := firstOf(flag, a.getenv(cli.EnvCA))
	if path == "" {
		if fromSaved {
			return saved.CAPEM, nil
		}
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the CA file: %w; give --ca the certificate path that keyfleetd init printed", err)
	}
	return b, nil
}

func (a *app) token(flag string, fromSaved bool, saved cli.SavedLogin) (string, error) {
	if flag == "" && a.getenv(cli.EnvToken) != "" {
		return strings.TrimSpace(a.getenv(cli.EnvToken)), nil
	}
	if path := firstOf(flag, a.getenv(EnvTokenFile)); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("reading the token: %w", err)
		}
		if tok := strings.TrimSpace(string(b)); tok != "" {
			return tok, nil
		}
		return "", fmt.Errorf("the token file %s is empty; give --token-file the file that keyfleet tokens create wrote", path)
	}
	if fromSaved && saved.Token != "" {
		return saved.Token, nil
	}
	return "", errors.New("no token: give --token-file FILE, set KEYFLEET_TOKEN, or run keyfleet login for this server")
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// daemonClient connects with the token from the flags, the environment or
// the saved login.
func (a *app) daemonClient(c connFlags) (*client.Client, error) {
	r, err := a.resolve(c, true)
	if err != nil {
		return nil, err
	}
	return newClient(r)
}

// clientWithToken connects with a token given as a value (a redeemed
// code's) rather than a file; "" connects without one.
func (a *app) clientWithToken(c connFlags, token string) (*client.Client, error) {
	r, err := a.resolve(c, false)
	if err != nil {
		return nil, err
	}
	r.token = strings.TrimSpace(token)
	return newClient(r)
}

func newClient(r conn) (*client.Client, error) {
	c, err := client.New(client.Config{Server: r.server, Token: r.token, CAPEM: r.ca, UserAgent: userAgent})
	if err != nil {
		return nil, usagef("%w", err)
	}
	return c, nil
}
