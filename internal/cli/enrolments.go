package cli

import (
	"context"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	"github.com/spf13/cobra"
)

func (a *app) enrolmentsCmd() *cobra.Command {
	cmd := group("enrolments", "Open and follow one-time enrolment challenges",
		"  keyfleet enrolments create --user alice --kind piv\n  keyfleet enrolments list --state open")
	cmd.AddCommand(a.enrolmentsListCmd(), a.enrolmentsCreateCmd(), a.enrolmentsShowCmd(), a.enrolmentsCancelCmd())
	return cmd
}

var enrolmentHeader = []string{"ID", "USER", "KIND", "STATE", "EXPIRES", "FACTOR"}

func enrolmentRow(names map[string]string) func(api.Enrolment) []string {
	return func(e api.Enrolment) []string {
		return []string{e.ID, named(names, e.UserID), e.Kind, e.State, when(e.ExpiresAt), dash(e.FactorID)}
	}
}

func (a *app) printEnrolment(e api.Enrolment) error {
	redeemed := ""
	if e.CodeRedeemedAt != nil {
		redeemed = when(*e.CodeRedeemedAt)
	}
	return a.emit(e, func() error {
		return a.fields("ID", e.ID, "User", e.UserID, "Kind", e.Kind, "State", e.State,
			"Created by", e.CreatedBy, "Created", when(e.CreatedAt), "Expires", when(e.ExpiresAt),
			"Factor", e.FactorID, "Params", compact(e.Params), "Code", e.Code, "Code redeemed", redeemed)
	})
}

// codeHint tells the administrator what the user does with a new
// enrolment's code. It goes to stderr: stdout stays the record.
func (a *app) codeHint(e api.Enrolment) {
	if e.Code == "" {
		return
	}
	how := "keyfleet-agent enroll --code CODE"
	switch e.Kind {
	case "fido2":
		how += ", or enters it on keyfleetd's web welcome page (/welcome)"
	case "totp":
		how = "keyfleet factors add-totp --code CODE --server URL (the seed is shown only to them)"
	}
	a.note("Hand the code to the user over a trusted channel; it works once, until %s. They run %s.", when(e.ExpiresAt), how)
}

func (a *app) enrolmentsListCmd() *cobra.Command {
	var (
		f client.EnrolmentFilter
		o listOpts
	)
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List enrolments",
		Example: "  keyfleet enrolments list --state open\n  keyfleet enrolments list --user alice -o json",
		Args:    argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				items, next, err := collect(ctx, o, func(ctx context.Context, cur string, n int) (api.Page[api.Enrolment], error) {
					f.Cursor, f.Limit = cur, n
					return c.ListEnrolments(ctx, f)
				})
				if err != nil {
					return err
				}
				return printList(a, items, next, "enrolments", enrolmentHeader, enrolmentRow(a.names(ctx, c, idsOf(items, func(e api.Enrolment) string { return e.UserID }))))
			})
		},
	}
	cmd.Flags().StringVar(&f.User, "user", "", "only this user's (id or username)")
	cmd.Flags().StringVar(&f.State, "state", "", "only in this state: open, completed, cancelled, expired")
	addListFlags(cmd, &o)
	return cmd
}

func (a *app) enrolmentsCreateCmd() *cobra.Command {
	var in api.CreateEnrolment
	cmd := &cobra.Command{
		Use:   "create --user USER --kind KIND [--ttl DURATION] [--option KEY=VALUE]...",
		Short: "Open a single-use enrolment for one factor of a user",
		Long: `create opens a single-use challenge that the enrolling side (the IT desk or
the user's workstation agent) completes with the new factor's attestation
before it expires.

When your token may complete the enrolment too (admin, enroller; not a
helpdesk), it prints the enrolment code (Code: enr_….…, "code" with -o
json) to hand the user: they enrol their own key with 'keyfleet-agent enroll --code CODE'
(or, for fido2, on the web welcome page). The code works once and expires
with the enrolment.

--option asks the kind for a parameter of the new factor: for totp
algorithm (SHA1, SHA256, SHA512), digits (6, 8), period (15-120 seconds)
and issuer; for piv pin_policy and touch_policy. What you leave out is
what the policy asks; a value the policy does not accept is refused.`,
		Example: "  keyfleet enrolments create --user alice --kind piv\n  keyfleet enrolments create --user bob --kind totp --ttl 15m\n" +
			"  keyfleet enrolments create --user bob --kind totp --option algorithm=SHA256 --option digits=8 --option period=60",
		Args: argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if in.User == "" || in.Kind == "" {
				return usagef("--user and --kind are required")
			}
			if in.TTL != "" {
				if d, err := time.ParseDuration(in.TTL); err != nil || d <= 0 {
					return usagef("--ttl %q is not a positive duration such as 15m or 24h", in.TTL)
				}
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				e, err := c.CreateEnrolment(ctx, in)
				if err != nil {
					return err
				}
				if err := a.printEnrolment(e); err != nil {
					return err
				}
				a.codeHint(e)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&in.User, "user", "", "the user (id or username)")
	cmd.Flags().StringVar(&in.Kind, "kind", "", "factor kind: piv, fido2, totp or a plugin's")
	cmd.Flags().StringVar(&in.TTL, "ttl", "", "how long it stays open (default: the daemon's)")
	cmd.Flags().StringToStringVar(&in.Options, "option", nil, "a parameter of the new factor, KEY=VALUE (repeatable)")
	return cmd
}

func (a *app) enrolmentsShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "show ID",
		Short:   "Show one enrolment",
		Example: "  keyfleet enrolments show enr_01HV7",
		Args:    argNames("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				e, err := c.GetEnrolment(ctx, args[0])
				if err != nil {
					return err
				}
				return a.printEnrolment(e)
			})
		},
	}
}

func (a *app) enrolmentsCancelCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "cancel ID",
		Short:   "Cancel an open enrolment",
		Example: "  keyfleet enrolments cancel enr_01HV7",
		Args:    argNames("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				e, err := c.CancelEnrolment(ctx, args[0])
				if err != nil {
					return err
				}
				return a.printEnrolment(e)
			})
		},
	}
}
