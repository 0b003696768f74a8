package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	"github.com/spf13/cobra"
)

type loginOpts struct {
	server, tokenFile, ca string
	// user, name and ttl sign in with a key instead of a token file.
	user, name, ttl string
}

func (a *app) loginCmd() *cobra.Command {
	var o loginOpts
	cmd := &cobra.Command{
		Use:   "login --server URL (--user NAME | --token-file FILE) [--ca FILE]",
		Short: "Sign in with your security key, or check a token, and save it for later commands",
		Long: `login --user NAME signs you in with your own security key: keyfleetd makes a
challenge for your keys (POST /v1/login/begin), keyfleet-agent answers it
with the connected key (its PIN and a touch), and keyfleetd gives you a new
token of your own (POST /v1/login), which is saved. It expires (12h by
default; --ttl asks for less or, up to the daemon's maximum, more): run the
same command to sign in again.

login --token-file FILE checks a token someone gave you (a service
account's, or the one 'keyfleetd init' wrote for the first administrator)
with GET /v1/me, then saves it.

Either way the server, the token and the CA certificate are saved in the
configuration file: $KEYFLEET_CONFIG, or keyfleet/config.json in the user
configuration folder (~/.config on Linux), written with mode 0600 in a 0700
folder. --server and --ca default to the saved login's, so signing in again
needs only --user.

--token-file - reads the token from standard input. Without --ca the
system's certificate authorities are trusted; keyfleetd's own self-signed
certificate needs --ca with the path that 'keyfleetd init' printed.`,
		Example: `  keyfleet login --server https://keyfleet.example.com --ca keyfleet-ca.pem --user alice
  keyfleet login --user alice                     # sign in again to the saved server
  keyfleet login --server https://localhost:8443 --token-file var/keyfleet/admin.token --ca var/keyfleet/tls/cert.pem
  pass show keyfleet/ci-token | keyfleet login --server https://keyfleet.example.com --token-file -`,
		Args: argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.user != "" {
				if o.tokenFile != "" {
					return usagef("give --user (sign in with your key) or --token-file, not both")
				}
				return a.keyLogin(cmd, o)
			}
			return a.login(cmd, o)
		},
	}
	cmd.Flags().StringVar(&o.server, "server", "", "keyfleetd's URL, e.g. https://localhost:8443 (default $KEYFLEET_SERVER)")
	cmd.Flags().StringVar(&o.tokenFile, "token-file", "", "file holding the token, or - for standard input")
	cmd.Flags().StringVar(&o.ca, "ca", "", "PEM certificate to trust for keyfleetd (default $KEYFLEET_CA, else the system's)")
	cmd.Flags().StringVar(&o.user, "user", "", "sign in as this person with your own security key (through keyfleet-agent)")
	cmd.Flags().StringVar(&o.name, "token-name", "", "with --user: a name for the new token (default \"login\")")
	cmd.Flags().StringVar(&o.ttl, "ttl", "", "with --user: the new token's lifetime, such as 8h (default: the daemon's, 12h)")
	return cmd
}

func (a *app) login(cmd *cobra.Command, o loginOpts) error {
	cfg, err := a.loginConfig(o)
	if err != nil {
		return err
	}
	c, err := client.New(client.Config{Server: cfg.Server, Token: cfg.Token, CAPEM: []byte(cfg.CAPEM), UserAgent: userAgent})
	if err != nil {
		return usagef("%w", err)
	}
	me, err := c.Me(cmd.Context())
	if err != nil {
		return err
	}
	cfg.Server = c.Server()
	path, err := a.saveConfig(cfg)
	if err != nil {
		return err
	}
	return a.emit(me, func() error {
		fmt.Fprintf(a.stdout, "Logged in to %s as %s (roles: %s).\nSaved to %s.\n",
			cfg.Server, me.User.Username, list(me.Roles), path)
		return nil
	})
}

// loginConfig gathers the server, token and CA from flags, falling back
// to the environment.
func (a *app) loginConfig(o loginOpts) (fileConfig, error) {
	var cfg fileConfig
	cfg.Server = firstOf(o.server, a.env(EnvServer))
	if cfg.Server == "" {
		return cfg, usagef("--server is required")
	}
	if o.ca == "" && a.env(EnvCA) == "" {
		if saved, _, err := a.loadConfig(); err == nil && saved.Server != "" && SameServer(saved.Server, cfg.Server) {
			cfg.CAPEM = saved.CAPEM
		}
	}
	switch {
	case o.tokenFile != "":
		tok, err := a.readToken(o.tokenFile)
		if err != nil {
			return cfg, err
		}
		cfg.Token = tok
	case a.env(EnvToken) != "":
		cfg.Token = strings.TrimSpace(a.env(EnvToken))
	default:
		return cfg, usagef("give --user NAME to sign in with your security key, or --token-file FILE")
	}
	if ca := firstOf(o.ca, a.env(EnvCA)); ca != "" {
		pem, err := readCA(ca, "--ca")
		if err != nil {
			return cfg, err
		}
		cfg.CAPEM = string(pem)
	}
	return cfg, nil
}

// readToken reads a token from a file or, for "-", standard input. The
// token is never echoed, not even in errors.
func (a *app) readToken(path string) (string, error) {
	var (
		b   []byte
		err error
	)
	if path == "-" {
		b, err = io.ReadAll(io.LimitReader(a.stdin, 64<<10))
	} else {
		b, err = os.ReadFile(path)
	}
	hint := "give --token-file the file that 'keyfleetd init' or 'keyfleet tokens create --out' wrote"
	if err != nil {
		return "", fail(fmt.Errorf("reading token: %w", err), hint)
	}
	tok := strings.TrimSpace(string(b))
	switch {
	case tok == "":
		return "", fail(fmt.Errorf("token file %s is empty", path), hint)
	case strings.ContainsAny(tok, " \t\r\n"):
		return "", fail(fmt.Errorf("token file %s holds more than one word", path), hint)
	}
	return tok, nil
}

// keyLogin signs a person in with their key and saves the new token.
func (a *app) keyLogin(cmd *cobra.Command, o loginOpts) error {
	if o.ttl != "" {
		if d, err := time.ParseDuration(o.ttl); err != nil || d <= 0 {
			return usagef("--ttl %q is not a positive duration such as 8h", o.ttl)
		}
	}
	anon, cfg, err := a.anonClient(o.server, o.ca)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	in := api.LoginBegin{Username: o.user, Name: o.name, TTL: o.ttl}
	ch, err := anon.BeginLogin(ctx, in)
	if err != nil {
		return err
	}
	pr, err := a.answer(ctx, ch)
	if err != nil {
		return err
	}
	ct, err := anon.Login(ctx, in, pr)
	if err != nil {
		return err
	}
	cfg.Server, cfg.Token = anon.Server(), ct.Secret
	c, err := client.New(client.Config{Server: cfg.Server, Token: cfg.Token, CAPEM: []byte(cfg.CAPEM), UserAgent: userAgent})
	if err != nil {
		return err
	}
	me, err := c.Me(ctx)
	if err != nil {
		return err
	}
	path, err := a.saveConfig(cfg)
	if err != nil {
		return err
	}
	return a.emit(me, func() error {
		fmt.Fprintf(a.stdout, "Signed in to %s as %s with your key (roles: %s).\nToken %s expires %s; saved to %s.\n",
			cfg.Server, me.User.Username, list(me.Roles), ct.Token.ID, whenp(ct.Token.ExpiresAt), path)
		fmt.Fprintf(a.stdout, "Sign in again with: keyfleet login --user %s\n", me.User.Username)
		return nil
	})
}

// anonClient is a client without a token, for the tokenless routes (key
// sign-in, a code's redemption, break-glass): the server and CA from the
// flags, the environment or the saved login, whose CA goes only with its
// own server. The configuration it returns holds them, without a token.
func (a *app) anonClient(server, caFile string) (*client.Client, fileConfig, error) {
	saved, _, err := a.loadConfig()
	if err != nil {
		return nil, fileConfig{}, err
	}
	cfg := fileConfig{Server: firstOf(server, a.env(EnvServer), saved.Server)}
	if cfg.Server == "" {
		return nil, cfg, usagef("no server: pass --server URL (and --ca FILE), or set %s", EnvServer)
	}
	switch ca := firstOf(caFile, a.env(EnvCA)); {
	case ca != "":
		pem, err := readCA(ca, "--ca")
		if err != nil {
			return nil, cfg, err
		}
		cfg.CAPEM = string(pem)
	case saved.Server != "" && SameServer(saved.Server, cfg.Server):
		cfg.CAPEM = saved.CAPEM
	}
	c, err := client.New(client.Config{Server: cfg.Server, CAPEM: []byte(cfg.CAPEM), UserAgent: userAgent})
	if err != nil {
		return nil, cfg, usagef("%w", err)
	}
	return c, cfg, nil
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func (a *app) logoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Forget the saved server and token",
		Long: `logout deletes the configuration file that login wrote. The token itself
stays valid on the daemon; revoke it with 'keyfleet tokens revoke ID'.`,
		Example: "  keyfleet logout",
		Args:    argNames(),
		RunE: func(*cobra.Command, []string) error {
			path, _, err := a.configPath()
			if err != nil {
				return err
			}
			err = os.Remove(path)
			if errors.Is(err, fs.ErrNotExist) {
				fmt.Fprintln(a.stdout, "Not logged in.")
				return nil
			}
			if err != nil {
				return fail(fmt.Errorf("removing %s: %w", path, err), "delete it by hand")
			}
			fmt.Fprintf(a.stdout, "Logged out; removed %s.\n", path)
			return nil
		},
	}
}

func (a *app) whoamiCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "whoami",
		Short:   "Show who the saved token belongs to and its roles",
		Example: "  keyfleet whoami\n  keyfleet whoami -o json | jq -r .roles[]",
		Args:    argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			me, err := c.Me(cmd.Context())
			if err != nil {
				return err
			}
			return a.emit(me, func() error { return a.printMe(c.Server(), me) })
		},
	}
}

func (a *app) printMe(server string, me api.Me) error {
	return a.fields("User", me.User.Username+" ("+me.User.ID+")", "Display name", me.User.DisplayName,
		"Roles", list(me.Roles), "Auth", me.Auth, "Token", me.Token, "Server", server)
}
