package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	"github.com/spf13/cobra"
)

func (a *app) devicesCmd() *cobra.Command {
	cmd := group("devices", "See physical keys and report them lost",
		"  keyfleet devices list --user alice\n  keyfleet devices lost dev_01HV7 --reason \"lost on the train\"")
	cmd.AddCommand(a.devicesListCmd(), a.devicesShowCmd(), a.devicesLostCmd())
	return cmd
}

var deviceHeader = []string{"ID", "VENDOR", "MODEL", "SERIAL", "STATE", "USER", "FACTORS"}

func deviceRow(d api.Device) []string {
	return []string{d.ID, d.Vendor, dash(d.Model), d.Serial, d.State, dash(d.UserID), strconv.Itoa(len(d.FactorIDs))}
}

func (a *app) printDevice(d api.Device) error {
	return a.emit(d, func() error {
		return a.fields("ID", d.ID, "Vendor", d.Vendor, "Model", d.Model, "Serial", d.Serial,
			"Firmware", d.Firmware, "State", d.State, "User", d.UserID, "Factors", list(d.FactorIDs),
			"Created", when(d.CreatedAt), "Updated", when(d.UpdatedAt))
	})
}

func (a *app) devicesListCmd() *cobra.Command {
	var (
		f client.DeviceFilter
		o listOpts
	)
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List devices",
		Example: "  keyfleet devices list\n  keyfleet devices list --state in_stock -o json",
		Args:    argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				items, next, err := collect(ctx, o, func(ctx context.Context, cur string, n int) (api.Page[api.Device], error) {
					f.Cursor, f.Limit = cur, n
					return c.ListDevices(ctx, f)
				})
				if err != nil {
					return err
				}
				return printList(a, items, next, "devices", deviceHeader, deviceRow)
			})
		},
	}
	cmd.Flags().StringVar(&f.User, "user", "", "only this user's (id or username)")
	cmd.Flags().StringVar(&f.State, "state", "", "only in this state: in_stock, assigned, active, lost, retired")
	addListFlags(cmd, &o)
	return cmd
}

func (a *app) devicesShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "show ID",
		Short:   "Show one device and the factors on it",
		Example: "  keyfleet devices show dev_01HV7",
		Args:    argNames("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				d, err := c.GetDevice(ctx, args[0])
				if err != nil {
					return err
				}
				return a.printDevice(d)
			})
		},
	}
}

func (a *app) devicesLostCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "lost ID",
		Short: "Report a key lost: every factor on it is revoked at once",
		Long: `lost marks the device lost and revokes every factor on it in one step.
It does not wait for a second approver: a lost key must stop working now.`,
		Example: `  keyfleet devices lost dev_01HV7 --reason "lost on the train"`,
		Args:    argNames("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				d, err := c.ReportDeviceLost(ctx, args[0], reason)
				if err != nil {
					return err
				}
				return a.emit(d, func() error {
					fmt.Fprintf(a.stdout, "Device %s (%s serial %s) is now %s; factors revoked: %s.\n",
						d.ID, strings.TrimSpace(d.Vendor+" "+d.Model), d.Serial, d.State, list(d.FactorIDs))
					return nil
				})
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit log")
	return cmd
}
