package cli

import (
	"context"
	"fmt"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	"github.com/spf13/cobra"
)

func (a *app) approvalsCmd() *cobra.Command {
	cmd := group("approvals", "Approve or deny sensitive actions another admin requested",
		"  keyfleet approvals list\n  keyfleet approvals approve apr_01HV7 --comment \"confirmed by phone\"")
	cmd.AddCommand(a.approvalsListCmd(), a.approvalsShowCmd(),
		a.decideCmd("approve", "Approve a request; its action runs at once",
			`  keyfleet approvals approve apr_01HV7 --comment "confirmed with the user by phone"`, (*client.Client).Approve),
		a.decideCmd("deny", "Deny a request; nothing changes",
			`  keyfleet approvals deny apr_01HV7 --comment "no ticket"`, (*client.Client).Deny),
		a.decideCmd("cancel", "Withdraw a request you made",
			`  keyfleet approvals cancel apr_01HV7 --comment "wrong user"`, (*client.Client).CancelApproval))
	return cmd
}

var approvalHeader = []string{"ID", "ACTION", "TARGET", "STATE", "REQUESTED BY", "EXPIRES", "REASON"}

func approvalRow(ap api.Approval) []string {
	return []string{ap.ID, ap.Action, target(ap), ap.State, actorName(ap.RequestedBy), when(ap.ExpiresAt), dash(ap.Reason)}
}

func target(ap api.Approval) string {
	return ap.TargetType + " " + firstOf(ap.TargetName, ap.TargetID)
}

func actorName(ac api.Actor) string { return firstOf(ac.Name, ac.ID, "-") }

func (a *app) printApproval(ap api.Approval) error {
	return a.emit(ap, func() error {
		decided := ""
		if ap.DecidedBy != nil {
			decided = actorName(*ap.DecidedBy)
		}
		tgt := target(ap)
		if ap.TargetName != "" {
			tgt += " (" + ap.TargetID + ")"
		}
		return a.fields("ID", ap.ID, "Action", ap.Action, "Target", tgt,
			"Reason", ap.Reason, "State", ap.State, "Requested by", actorName(ap.RequestedBy),
			"Requested", when(ap.RequestedAt), "Expires", when(ap.ExpiresAt), "Decided by", decided,
			"Decided", optTime(ap.DecidedAt), "Comment", ap.Comment, "Error", ap.Error)
	})
}

// printAccepted tells the requester that nothing happened yet and what a
// second admin runs to approve.
func (a *app) printAccepted(acc api.Accepted) error {
	return a.emit(acc, func() error {
		ap := acc.Approval
		fmt.Fprintf(a.stdout, "Approval %s requested: %s on %s.\n", ap.ID, ap.Action, target(ap))
		fmt.Fprintf(a.stdout, "Nothing changes until a different admin approves it before %s with:\n", when(ap.ExpiresAt))
		fmt.Fprintf(a.stdout, "  keyfleet approvals approve %s\n", ap.ID)
		return nil
	})
}

func (a *app) approvalsListCmd() *cobra.Command {
	var (
		f client.ApprovalFilter
		o listOpts
	)
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List approval requests (pending ones unless --state says otherwise)",
		Example: "  keyfleet approvals list\n  keyfleet approvals list --state all -o json",
		Args:    argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.State == "all" {
				f.State = ""
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				items, next, err := collect(ctx, o, func(ctx context.Context, cur string, n int) (api.Page[api.Approval], error) {
					f.Cursor, f.Limit = cur, n
					return c.ListApprovals(ctx, f)
				})
				if err != nil {
					return err
				}
				return printList(a, items, next, "approvals", approvalHeader, approvalRow)
			})
		},
	}
	cmd.Flags().StringVar(&f.State, "state", api.ApprovalPending,
		"only in this state: pending, approved, denied, expired, cancelled, failed, or all")
	addListFlags(cmd, &o)
	return cmd
}

func (a *app) approvalsShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "show ID",
		Short:   "Show one approval request",
		Example: "  keyfleet approvals show apr_01HV7",
		Args:    argNames("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				ap, err := c.GetApproval(ctx, args[0])
				if err != nil {
					return err
				}
				return a.printApproval(ap)
			})
		},
	}
}

type decideFunc func(c *client.Client, ctx context.Context, id, comment string) (api.Approval, error)

func (a *app) decideCmd(verb, short, example string, call decideFunc) *cobra.Command {
	var comment string
	cmd := &cobra.Command{
		Use:     verb + " ID",
		Short:   short,
		Example: example,
		Args:    argNames("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				ap, err := call(c, ctx, args[0], comment)
				if err != nil {
					return err
				}
				if err := a.printApproval(ap); err != nil {
					return err
				}
				if ap.State == api.ApprovalFailed {
					return fail(fmt.Errorf("approval %s was approved but %s failed: %s", ap.ID, ap.Action, ap.Error),
						"check the target's state, then request the action again")
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&comment, "comment", "", "why, for the requester and the audit log")
	return cmd
}
