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
	cmd := group("devices", "See physical keys, take them back, hand them out, report them lost",
		"  keyfleet devices list --user alice\n  keyfleet devices lost dev_01HV7 --reason \"lost on the train\"\n"+
			"  keyfleet devices return dev_01HV7 && keyfleet-agent wipe && keyfleet devices reassign dev_01HV7 --user dave")
	cmd.AddCommand(a.devicesListCmd(), a.devicesShowCmd(), a.devicesLostCmd(), a.devicesReturnCmd(),
		a.devicesReassignCmd(), a.devicesRetireCmd(), a.devicesInventoryCmd())
	return cmd
}

var deviceHeader = []string{"ID", "VENDOR", "MODEL", "SERIAL", "STATE", "USER", "FACTORS"}

func deviceRow(names map[string]string) func(api.Device) []string {
	return func(d api.Device) []string {
		return []string{d.ID, d.Vendor, dash(d.Model), d.Serial, d.State, named(names, d.UserID), strconv.Itoa(len(d.FactorIDs))}
	}
}

func (a *app) printDevice(d api.Device) error {
	return a.emit(d, func() error {
		kv := []string{"ID", d.ID, "Vendor", d.Vendor, "Model", d.Model, "Serial", d.Serial,
			"Firmware", d.Firmware, "State", d.State, "User", d.UserID, "Factors", list(d.FactorIDs)}
		if d.LastUserID != "" {
			kv = append(kv, "Last user", d.LastUserID)
		}
		if d.ReturnedAt != nil {
			kv = append(kv, "Returned", when(*d.ReturnedAt))
		}
		if d.WipedAt != nil {
			kv = append(kv, "Wiped", when(*d.WipedAt))
		}
		return a.fields(append(kv, "Created", when(d.CreatedAt), "Updated", when(d.UpdatedAt))...)
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
				return printList(a, items, next, "devices", deviceHeader, deviceRow(a.names(ctx, c, idsOf(items, func(d api.Device) string { return d.UserID }))))
			})
		},
	}
	cmd.Flags().StringVar(&f.User, "user", "", "only this user's (id or username)")
	cmd.Flags().StringVar(&f.State, "state", "", "only in this state: in_stock, assigned, active, returned, lost, retired, destroyed")
	cmd.Flags().StringVar(&f.Serial, "serial", "", "only the key with this serial")
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

func (a *app) devicesReturnCmd() *cobra.Command {
	var in api.ReturnDevice
	cmd := &cobra.Command{
		Use:   "return ID [--reason TEXT] [--replacement-planned]",
		Short: "A key comes back to IT: its factors are revoked (at once, or through approval)",
		Long: `return records that a key is back with IT (a leaver's, a replaced one). Every
factor on it is revoked through the rules of any removal: at once while
its owner still meets the policy without them, otherwise as revoke
requests a second person approves (the key waits in state "returned"
until then). A key holding every active factor of its owner is refused
unless --replacement-planned says a replacement is arranged.

Then wipe it with 'keyfleet-agent wipe' and give it to someone with
'keyfleet devices reassign'.`,
		Example: "  keyfleet devices return dev_01HV7 --reason \"carol left\"",
		Args:    argNames("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				out, err := c.ReturnDevice(ctx, args[0], in)
				if err != nil {
					return err
				}
				return a.emit(out, func() error {
					d := out.Device
					fmt.Fprintf(a.stdout, "Device %s (%s serial %s) is now %s.\n", d.ID, strings.TrimSpace(d.Vendor+" "+d.Model), d.Serial, d.State)
					if len(out.Revoked) > 0 {
						fmt.Fprintf(a.stdout, "Factors revoked: %s.\n", list(out.Revoked))
					}
					for _, ap := range out.Approvals {
						fmt.Fprintf(a.stdout, "Waiting for a second approver: %s (revoke %s). Wipe the key once it is approved.\n", ap.ID, ap.TargetID)
					}
					return nil
				})
			})
		},
	}
	cmd.Flags().StringVar(&in.Reason, "reason", "", "why, for the audit log")
	cmd.Flags().BoolVar(&in.ReplacementPlanned, "replacement-planned", false, "the owner's replacement factor is arranged (lets their last key come back, through approval)")
	return cmd
}

func (a *app) devicesReassignCmd() *cobra.Command {
	var in api.AssignDevice
	cmd := &cobra.Command{
		Use:   "reassign ID --user USER [--reason TEXT]",
		Short: "Give a wiped key in stock to a user",
		Long: `reassign gives a key in stock (returned and wiped by 'keyfleet-agent wipe')
to a user, who may then enrol factors on it ('keyfleet-agent provision').
A key that was returned but not wiped is refused.`,
		Example: "  keyfleet devices reassign dev_01HV7 --user dave --reason \"new starter\"",
		Args:    argNames("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if in.User == "" {
				return usagef("--user is required")
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				d, err := c.AssignDevice(ctx, args[0], in)
				if err != nil {
					return err
				}
				return a.printDevice(d)
			})
		},
	}
	cmd.Flags().StringVar(&in.User, "user", "", "the user who gets the key (id or username)")
	cmd.Flags().StringVar(&in.Reason, "reason", "", "why, for the audit log")
	return cmd
}

func (a *app) devicesRetireCmd() *cobra.Command {
	var in api.RetireDevice
	cmd := &cobra.Command{
		Use:     "retire ID [--destroyed] [--reason TEXT]",
		Short:   "Take a key nobody uses out of the fleet, for good",
		Long:    "retire ends a key's life: one in stock, returned with its factors revoked, or lost.\n--destroyed records that it was physically destroyed.",
		Example: "  keyfleet devices retire dev_01HV7 --destroyed --reason \"shredded\"",
		Args:    argNames("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				d, err := c.RetireDevice(ctx, args[0], in)
				if err != nil {
					return err
				}
				return a.printDevice(d)
			})
		},
	}
	cmd.Flags().BoolVar(&in.Destroyed, "destroyed", false, "the key was physically destroyed")
	cmd.Flags().StringVar(&in.Reason, "reason", "", "why, for the audit log")
	return cmd
}

func (a *app) devicesInventoryCmd() *cobra.Command {
	var state string
	cmd := &cobra.Command{
		Use:     "inventory [--state in_stock]",
		Short:   "Count keys by model, firmware and state",
		Example: "  keyfleet devices inventory\n  keyfleet devices inventory --state all",
		Args:    argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if state == "all" {
				state = ""
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				rows, err := c.DeviceInventory(ctx, state)
				if err != nil {
					return err
				}
				return a.emit(rows, func() error {
					out := make([][]string, 0, len(rows))
					for _, r := range rows {
						out = append(out, []string{r.State, r.Vendor, dash(r.Model), dash(r.Firmware), strconv.Itoa(r.Count)})
					}
					return a.rows([]string{"STATE", "VENDOR", "MODEL", "FIRMWARE", "KEYS"}, out)
				})
			})
		},
	}
	cmd.Flags().StringVar(&state, "state", api.DeviceInStock, "only keys in this state; all for every state")
	return cmd
}
