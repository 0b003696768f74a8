package pam

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"slices"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
)

// Run is the helper: it reads who signs in from the module (in), decides
// with keyfleetd and the person (through the module, out), and tells the
// module the result. A problem with the configuration refuses the sign-in
// (authinfo_unavail) and is logged. It returns the process's exit status.
func Run(ctx context.Context, args []string, in io.Reader, out io.Writer, log *slog.Logger) int {
	w := newWire(in, out)
	login, err := w.readLogin()
	if err != nil {
		log.Error("pam_keyfleet: reading the login from the module", "err", err)
		return 2
	}
	a, err := newAuthenticator(args, w, log)
	result := AuthInfoUnavail
	if err != nil {
		log.Error("pam_keyfleet: configuration", "err", err, "user", login.User, "service", login.Service)
		w.Error("Sign-in refused: the keyfleet PAM module is not set up right on this machine. Tell IT.")
	} else {
		result = a.Authenticate(ctx, login)
	}
	if err := w.done(result); err != nil {
		log.Error("pam_keyfleet: answering the module", "err", err)
		return 2
	}
	return 0
}

func newAuthenticator(args []string, conv Conversation, log *slog.Logger) (*Authenticator, error) {
	cfg, err := ParseArgs(args)
	if err != nil {
		return nil, err
	}
	token, err := readToken(cfg.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("token_file: %w", err)
	}
	var ca []byte
	if cfg.CAFile != "" {
		if ca, err = os.ReadFile(cfg.CAFile); err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
	}
	c, err := client.New(client.Config{Server: cfg.URL, Token: token, CAPEM: ca, UserAgent: "pam_keyfleet/" + api.Version})
	if err != nil {
		return nil, err
	}
	return &Authenticator{Config: cfg, Client: c, Conv: conv, InGroup: UnixGroup, Log: log}, nil
}

// UnixGroup reports whether a user is a member of a group, primary or
// supplementary, as the system's name services say.
func UnixGroup(name, group string) (bool, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return false, err
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return false, err
	}
	ids, err := u.GroupIds()
	if err != nil {
		return false, err
	}
	return u.Gid == g.Gid || slices.Contains(ids, g.Gid), nil
}
