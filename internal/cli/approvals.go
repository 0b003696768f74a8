package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	"github.com/spf13/cobra"
)

func (a *app) approvalsCmd() *cobra.Command {
	cmd := group("approvals", "Approve or deny sensitive actions another person requested",
		"  keyfleet approvals list\n  keyfleet approvals approve apr_01HV7 --reason \"confirmed by phone\"")
	cmd.AddCommand(a.approvalsListCmd(), a.approvalsShowCmd(),
		a.decideCmd(decision{verb: "approve", action: actApprove, call: (*client.Client).Approve,
			short:   "Approve a request with your own key; its action runs at once",
			example: `  keyfleet approvals approve apr_01HV7 --reason "confirmed with the user by phone"`}),
		a.decideCmd(decision{verb: "deny", action: actDeny, call: (*client.Client).Deny,
			short:   "Deny a request with your own key; nothing changes",
			example: `  keyfleet approvals deny apr_01HV7 -m "no ticket"`}),
		a.decideCmd(decision{verb: "cancel", call: (*client.Client).CancelApproval,
			short:   "Withdraw a request you made",
			example: `  keyfleet approvals cancel apr_01HV7 --reason "wrong user"`}))
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
		fmt.Fprintf(a.stdout, "Nothing changes until a different person who may approve it does so before %s, with their own key:\n", when(ap.ExpiresAt))
		fmt.Fprintf(a.stdout, "  keyfleet approvals approve %s --reason TEXT\n", ap.ID)
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

// decision is one of the approval verbs; action is the proof it needs
// ("" for cancel, which the requester does without one).
type decision struct {
	verb, action, short, example string
	call                         func(c *client.Client, ctx context.Context, id, reason string) (api.Approval, error)
}

const decideLong = `%s

Approving and denying need a reason (--reason or -m; the requester and the
audit log see it) and a fresh proof with your own security key, bound to
this one request: keyfleet shows what you are about to %s, and
keyfleet-agent asks for your key's PIN and touch. The requester cannot
decide their own request, nor can anyone not independent of them
(docs/security.md). Approving a staff account's access pass shows the pass
once, to you.`

func (a *app) decideCmd(d decision) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:     d.verb + " ID --reason TEXT",
		Short:   d.short,
		Example: d.example,
		Args:    argNames("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if d.action != "" && strings.TrimSpace(reason) == "" {
				return usagef("--reason is required: say why you %s it (the requester and the audit log see it)", d.verb)
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var ap api.Approval
				act := func(c *client.Client) error {
					var err error
					ap, err = d.call(c, ctx, args[0], reason)
					return err
				}
				var err error
				if d.action == "" {
					err = act(c)
				} else {
					err = a.provedFirst(ctx, c, proofOf(d.action, args[0], nil), act)
				}
				if err != nil {
					return err
				}
				return a.printDecision(ap)
			})
		},
	}
	if d.action != "" {
		cmd.Long = fmt.Sprintf(decideLong, d.short+".", d.verb)
	}
	cmd.Flags().StringVarP(&reason, "reason", "m", "", "why, for the requester and the audit log")
	cmd.Flags().StringVar(&reason, "comment", "", "the same as --reason")
	_ = cmd.Flags().MarkHidden("comment")
	return cmd
}

// printDecision prints a decided approval, and the pass an approved
// staff account's pass request issued, shown this once.
func (a *app) printDecision(ap api.Approval) error {
	if err := a.printApproval(ap); err != nil {
		return err
	}
	if ap.IssuedPass != nil && !a.jsonOutput() {
		fmt.Fprintln(a.stdout)
		if err := a.printPass(*ap.IssuedPass); err != nil {
			return err
		}
	}
	if ap.State == api.ApprovalFailed {
		return fail(fmt.Errorf("approval %s was approved but %s failed: %s", ap.ID, ap.Action, ap.Error),
			"check the target's state, then request the action again")
	}
	return nil
}
