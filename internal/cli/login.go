package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	"github.com/spf13/cobra"
)

type loginOpts struct {
	server, tokenFile, ca string
}

func (a *app) loginCmd() *cobra.Command {
	var o loginOpts
	cmd := &cobra.Command{
		Use:   "login --server URL --token-file FILE [--ca FILE]",
		Short: "Check a token against keyfleetd and save it for later commands",
		Long: `login calls GET /v1/me with the token to check it, then saves the server,
the token and the CA certificate in the configuration file:
$KEYFLEET_CONFIG, or keyfleet/config.json in the user configuration folder
(~/.config on Linux), written with mode 0600 in a 0700 folder.

--token-file - reads the token from standard input. Without --ca the
system's certificate authorities are trusted; keyfleetd's own self-signed
certificate needs --ca with the path that 'keyfleetd init' printed.`,
		Example: `  keyfleet login --server https://localhost:8443 --token-file var/keyfleet/admin.token --ca var/keyfleet/tls/cert.pem
  pass show keyfleet/token | keyfleet login --server https://keyfleet.example.com --token-file -`,
		Args: argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.login(cmd, o) },
	}
	cmd.Flags().StringVar(&o.server, "server", "", "keyfleetd's URL, e.g. https://localhost:8443 (default $KEYFLEET_SERVER)")
	cmd.Flags().StringVar(&o.tokenFile, "token-file", "", "file holding the token, or - for standard input")
	cmd.Flags().StringVar(&o.ca, "ca", "", "PEM certificate to trust for keyfleetd (default $KEYFLEET_CA, else the system's)")
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
		return cfg, usagef("--token-file is required")
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
