package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	"github.com/spf13/cobra"
)

func (a *app) tokensCmd() *cobra.Command {
	cmd := group("tokens", "Create, list and revoke API tokens",
		"  keyfleet tokens create ci-deploy --user ci-bot --role service --ttl 720h --out ci.token\n  keyfleet tokens list --user ci-bot")
	cmd.AddCommand(a.tokensCreateCmd(), a.tokensListCmd(), a.tokensRevokeCmd())
	return cmd
}

var tokenHeader = []string{"ID", "NAME", "USER", "ROLES", "EXPIRES", "LAST USED", "REVOKED"}

func tokenRow(t api.Token) []string {
	return []string{t.ID, t.Name, t.UserID, list(t.Roles), whenp(t.ExpiresAt), whenp(t.LastUsedAt), whenp(t.RevokedAt)}
}

func (a *app) printToken(t api.Token) error {
	return a.emit(t, func() error {
		return a.fields("ID", t.ID, "Name", t.Name, "User", t.UserID, "Roles", list(t.Roles),
			"Created by", t.CreatedBy, "Created", when(t.CreatedAt), "Expires", whenp(t.ExpiresAt),
			"Last used", optTime(t.LastUsedAt), "Revoked", optTime(t.RevokedAt))
	})
}

func (a *app) tokensCreateCmd() *cobra.Command {
	var (
		in  api.CreateToken
		out string
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an API token; its secret is shown once",
		Long: `create makes a bearer token and prints its secret once, on standard
output, with a warning on standard error. With --out the secret goes only to
that file (created with mode 0600; an existing file is not overwritten) and
standard output gets the token's metadata. keyfleetd keeps only a hash.

Without --user the token acts as you: it needs a fresh proof with your own
security key (keyfleet-agent asks for its PIN and touch), and it expires
(12h by default, at most what the daemon allows; 'keyfleet login --user'
makes one the same way and saves it). Nobody makes a token that acts as
another person: --user names a service account, for administrators, and
such a token should name an expiry (--ttl), or the compliance report flags
it.`,
		Example: `  keyfleet tokens create laptop --ttl 8h
  keyfleet tokens create ci-deploy --user ci-bot --role service --ttl 720h --out ci.token`,
		Args: argNames("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			in.Name = args[0]
			if in.TTL != "" {
				if d, err := time.ParseDuration(in.TTL); err != nil || d <= 0 {
					return usagef("--ttl %q is not a positive duration such as 720h", in.TTL)
				}
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var ct api.CreatedToken
				err := a.withProof(ctx, c, proofOf(actToken, "", in), func(c *client.Client) error {
					var err error
					ct, err = c.CreateToken(ctx, in)
					return err
				})
				if err != nil {
					return err
				}
				return a.printCreatedToken(ct, out)
			})
		},
	}
	cmd.Flags().StringVar(&in.User, "user", "", "a service account it acts as, id or username (default: you, proved with your key)")
	cmd.Flags().StringSliceVar(&in.Roles, "role", nil, "narrow it to this role (repeatable; default: all the user's)")
	cmd.Flags().StringVar(&in.TTL, "ttl", "", "lifetime such as 8h (default: 12h for your own; none for a service account's)")
	cmd.Flags().StringVar(&out, "out", "", "write the secret to this new file (mode 0600) instead of printing it")
	return cmd
}

// printCreatedToken shows the secret once: on stdout, or only in the file
// named by out.
func (a *app) printCreatedToken(ct api.CreatedToken, out string) error {
	if out != "" {
		if err := writeSecret(out, ct.Secret); err != nil {
			return fail(fmt.Errorf("token %s was created but its secret could not be saved: %w", ct.Token.ID, err),
				"revoke it with 'keyfleet tokens revoke "+ct.Token.ID+"' and create another with a new --out path")
		}
		if a.jsonOutput() {
			return a.printJSON(ct.Token)
		}
		fmt.Fprintf(a.stdout, "Token %s (%s) created; secret written to %s (mode 0600).\n", ct.Token.ID, ct.Token.Name, out)
		return nil
	}
	a.note("warning: this is the only time the secret of token %s (%s) is shown; store it now", ct.Token.ID, ct.Token.Name)
	if a.jsonOutput() {
		return a.printJSON(ct)
	}
	fmt.Fprintln(a.stdout, ct.Secret)
	return nil
}

// writeSecret writes secret to a new file readable only by its owner.
func writeSecret(path, secret string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s already exists", path)
	}
	if err != nil {
		return err
	}
	if _, err := f.WriteString(secret + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (a *app) tokensListCmd() *cobra.Command {
	var (
		f client.TokenFilter
		o listOpts
	)
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List API tokens (never their secrets)",
		Example: "  keyfleet tokens list\n  keyfleet tokens list --user ci-bot -o json",
		Args:    argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				items, next, err := collect(ctx, o, func(ctx context.Context, cur string, n int) (api.Page[api.Token], error) {
					f.Cursor, f.Limit = cur, n
					return c.ListTokens(ctx, f)
				})
				if err != nil {
					return err
				}
				return printList(a, items, next, "tokens", tokenHeader, tokenRow)
			})
		},
	}
	cmd.Flags().StringVar(&f.User, "user", "", "only this user's (id or username)")
	addListFlags(cmd, &o)
	return cmd
}

func (a *app) tokensRevokeCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "revoke ID",
		Short:   "Revoke an API token; it stops working at once",
		Example: "  keyfleet tokens revoke tok_01HV7",
		Args:    argNames("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				t, err := c.RevokeToken(ctx, args[0])
				if err != nil {
					return err
				}
				return a.printToken(t)
			})
		},
	}
}
