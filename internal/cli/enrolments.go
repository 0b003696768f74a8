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

func enrolmentRow(e api.Enrolment) []string {
	return []string{e.ID, e.UserID, e.Kind, e.State, when(e.ExpiresAt), dash(e.FactorID)}
}

func (a *app) printEnrolment(e api.Enrolment) error {
	return a.emit(e, func() error {
		return a.fields("ID", e.ID, "User", e.UserID, "Kind", e.Kind, "State", e.State,
			"Created by", e.CreatedBy, "Created", when(e.CreatedAt), "Expires", when(e.ExpiresAt),
			"Factor", e.FactorID, "Params", compact(e.Params))
	})
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
				return printList(a, items, next, "enrolments", enrolmentHeader, enrolmentRow)
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
		Use:   "create --user USER --kind KIND [--ttl DURATION]",
		Short: "Open a single-use enrolment for one factor of a user",
		Long: `create opens a single-use challenge that the enrolling side (the IT desk or
the user's workstation agent) completes with the new factor's attestation
before it expires.`,
		Example: "  keyfleet enrolments create --user alice --kind piv\n  keyfleet enrolments create --user bob --kind totp --ttl 15m",
		Args:    argNames(),
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
				return a.printEnrolment(e)
			})
		},
	}
	cmd.Flags().StringVar(&in.User, "user", "", "the user (id or username)")
	cmd.Flags().StringVar(&in.Kind, "kind", "", "factor kind: piv, fido2, totp or a plugin's")
	cmd.Flags().StringVar(&in.TTL, "ttl", "", "how long it stays open (default: the daemon's)")
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
