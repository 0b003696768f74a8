package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	"github.com/spf13/cobra"
)

func (a *app) factorsCmd() *cobra.Command {
	cmd := group("factors", "Manage users' factors: keys, authenticators and apps",
		"  keyfleet factors list --user alice\n  keyfleet factors suspend fac_01HV7 --reason \"left at home\"")
	cmd.AddCommand(a.factorsListCmd(), a.factorsShowCmd(), a.addTOTPCmd(),
		a.factorStateCmd("suspend", "Suspend an active factor; it stops working until resumed",
			`  keyfleet factors suspend fac_01HV7 --reason "key left at home"`, (*client.Client).SuspendFactor),
		a.factorStateCmd("resume", "Resume a suspended factor",
			`  keyfleet factors resume fac_01HV7 --reason "key found"`, (*client.Client).ResumeFactor),
		a.twoPersonCmd(twoPerson{use: "revoke ID", short: "Ask for a factor to be revoked for good (needs a second approver)",
			example:  "  keyfleet factors revoke fac_01HV7 --reason \"key stolen\"\n  keyfleet factors revoke fac_01HV7 --reason \"phone stolen\" --replacement-planned",
			withBody: (*client.Client).RevokeFactorWith}),
		a.twoPersonCmd(twoPerson{use: "delete ID", short: "Ask for a factor to be deleted (needs a second approver)",
			example: `  keyfleet factors delete fac_01HV7 --reason "enrolled by mistake"`, withBody: (*client.Client).DeleteFactorWith}),
		a.factorsRenameCmd(), a.factorsRemoveCmd())
	return cmd
}

var factorHeader = []string{"ID", "USER", "KIND", "LABEL", "STATE", "DEVICE", "LAST USED"}

func factorRow(names map[string]string) func(api.Factor) []string {
	return func(f api.Factor) []string {
		return []string{f.ID, named(names, f.UserID), f.Kind, dash(f.Label), f.State, dash(f.DeviceID), whenp(f.LastUsedAt)}
	}
}

func (a *app) printFactor(f api.Factor) error {
	return a.emit(f, func() error {
		return a.fields("ID", f.ID, "User", f.UserID, "Kind", f.Kind, "Label", f.Label, "State", f.State,
			"Reason", f.StateReason, "Device", f.DeviceID, "Created", when(f.CreatedAt),
			"Activated", optTime(f.ActivatedAt), "Last used", optTime(f.LastUsedAt),
			"Revoked", optTime(f.RevokedAt), "Public", compact(f.Public), "Evidence", compact(f.Evidence))
	})
}

// optTime formats an optional time for fields, which skip "".
func optTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return when(*t)
}

func (a *app) factorsListCmd() *cobra.Command {
	var (
		f client.FactorFilter
		o listOpts
	)
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List factors",
		Example: "  keyfleet factors list --user alice\n  keyfleet factors list --state suspended --kind piv -o json",
		Args:    argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				items, next, err := collect(ctx, o, func(ctx context.Context, cur string, n int) (api.Page[api.Factor], error) {
					f.Cursor, f.Limit = cur, n
					return c.ListFactors(ctx, f)
				})
				if err != nil {
					return err
				}
				return printList(a, items, next, "factors", factorHeader, factorRow(a.names(ctx, c, idsOf(items, func(f api.Factor) string { return f.UserID }))))
			})
		},
	}
	cmd.Flags().StringVar(&f.User, "user", "", "only this user's (id or username)")
	cmd.Flags().StringVar(&f.State, "state", "", "only in this state: pending, active, suspended, revoked")
	cmd.Flags().StringVar(&f.Kind, "kind", "", "only of this kind: piv, fido2, totp, …")
	cmd.Flags().StringVar(&f.Device, "device", "", "only on this device")
	addListFlags(cmd, &o)
	return cmd
}

func (a *app) factorsShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "show ID",
		Short:   "Show one factor with its attestation evidence",
		Example: "  keyfleet factors show fac_01HV7\n  keyfleet factors show fac_01HV7 -o json | jq .evidence",
		Args:    argNames("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				f, err := c.GetFactor(ctx, args[0])
				if err != nil {
					return err
				}
				return a.printFactor(f)
			})
		},
	}
}

type factorStateFunc func(c *client.Client, ctx context.Context, id, reason string) (api.Factor, error)

func (a *app) factorStateCmd(verb, short, example string, call factorStateFunc) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:     verb + " ID",
		Short:   short,
		Example: example,
		Args:    argNames("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				f, err := call(c, ctx, args[0], reason)
				if err != nil {
					return err
				}
				return a.emit(f, func() error {
					fmt.Fprintf(a.stdout, "Factor %s is now %s.\n", f.ID, f.State)
					return nil
				})
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit log")
	return cmd
}

func (a *app) factorsRenameCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "rename ID LABEL",
		Short:   "Change a factor's label",
		Example: `  keyfleet factors rename fac_01HV7 "YubiKey 5C (desk)"`,
		Args:    argNames("ID", "LABEL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				f, err := c.RenameFactor(ctx, args[0], args[1])
				if err != nil {
					return err
				}
				return a.printFactor(f)
			})
		},
	}
}

func (a *app) factorsRemoveCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove one of your own factors (at once while you still meet the policy; else it needs an approval)",
		Long: `remove takes one of your own factors away. While you still meet the
policy without it, it is revoked at once; when you would fall short, the
answer is a revoke request that an administrator or security officer
approves, and the factor keeps working until then. Your last active factor
goes only with a replacement an administrator plans.

It needs a fresh proof with one of your own factors: a security key
through keyfleet-agent, or, if you have only authenticator apps, the code
one shows (asked here, without echo).`,
		Example: `  keyfleet factors remove fac_01HV7 --reason "old phone"`,
		Args:    argNames("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var f *api.Factor
				var acc *api.Accepted
				err := a.withProof(ctx, c, proofOf(actFactorRemove, args[0], nil), func(c *client.Client) error {
					var err error
					f, acc, err = c.RemoveOwnFactor(ctx, args[0], reason)
					return err
				})
				if err != nil {
					return err
				}
				if acc != nil {
					return a.printAccepted(*acc)
				}
				return a.printFactor(*f)
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (audited)")
	return cmd
}
