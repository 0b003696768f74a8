package cli

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
)

func (a *app) policyCmd() *cobra.Command {
	cmd := group("policy", "Show, dry-run, apply, compare and roll back the MFA policy",
		"  keyfleet policy dry-run policy.yaml\n  keyfleet policy apply policy.yaml\n  keyfleet policy history")
	cmd.AddCommand(a.policyShowCmd(), a.policyDryRunCmd(), a.policyApplyCmd(), a.policyDiffCmd(),
		a.policyHistoryCmd(), a.policyRollbackCmd())
	return cmd
}

func (a *app) reportCmd() *cobra.Command {
	cmd := group("report", "Compliance reports (table, -o json, or -o csv)", "  keyfleet report compliance --group eng\n  keyfleet report vulnerable -o csv")
	cmd.AddCommand(a.reportComplianceCmd(), a.reportAdoptionCmd(), a.reportDeadlinesCmd(),
		a.reportFactorsCmd("stale", "Active factors unused for longer than the policy allows"),
		a.reportFactorsCmd("vulnerable", "Active factors on hardware with a known advisory (EUCLEAK, ROCA, …)"),
		a.reportPrivilegedCmd())
	return cmd
}

func (a *app) policyShowCmd() *cobra.Command {
	var version int
	cmd := &cobra.Command{
		Use:     "show",
		Short:   "Show the current policy document (or an earlier version)",
		Example: "  keyfleet policy show\n  keyfleet policy show --version 3 -o json",
		Args:    argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				v, err := a.policyVersion(ctx, c, version)
				if err != nil || v == nil {
					return err
				}
				return a.emit(v, func() error {
					fmt.Fprintf(a.stderr, "# policy version %d, applied %s by %s%s; sha256 %s\n", v.Version, when(v.AppliedAt),
						actorName(v.AppliedBy), approvedBy(v), v.SHA256)
					_, err := fmt.Fprint(a.stdout, v.Document)
					return err
				})
			})
		},
	}
	cmd.Flags().IntVar(&version, "version", 0, "show this version instead of the current one")
	return cmd
}

// policyVersion fetches version n, or the current one for 0; nil when no
// policy was ever applied.
func (a *app) policyVersion(ctx context.Context, c *client.Client, n int) (*api.PolicyVersion, error) {
	if n > 0 {
		v, err := c.GetPolicyVersion(ctx, n)
		return &v, err
	}
	cur, err := c.GetPolicy(ctx)
	if err == nil && cur.Current == nil {
		a.note("No policy document has been applied: only the built-in rules apply (admins and security officers need two hardware keys).")
	}
	return cur.Current, err
}

func approvedBy(v *api.PolicyVersion) string {
	if v.ApprovedBy == nil {
		return ""
	}
	return ", approved by " + actorName(*v.ApprovedBy)
}

func readPolicyFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fail(err, "give the path of a policy YAML file (docs/policy.md has an example)")
	}
	return string(b), nil
}

func (a *app) policyDryRunCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "dry-run FILE",
		Short:   "Show what applying a policy file would change, changing nothing",
		Example: "  keyfleet policy dry-run policy.yaml\n  keyfleet policy dry-run policy.yaml -o json",
		Args:    argNames("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			doc, err := readPolicyFile(args[0])
			if err != nil {
				return err
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				dr, err := c.DryRunPolicy(ctx, doc)
				if err != nil {
					return err
				}
				return a.emit(dr, func() error { return a.printDryRun(dr) })
			})
		},
	}
}

func (a *app) printDryRun(dr api.PolicyDryRun) error {
	fmt.Fprintf(a.stdout, "Against policy version %d: %d change(s)", dr.BaseVersion, len(dr.Changes))
	if dr.Weakens {
		fmt.Fprint(a.stdout, "; it WEAKENS the policy, so a second admin or security officer must approve it")
	}
	fmt.Fprintln(a.stdout, ".")
	for _, ch := range dr.Changes {
		fmt.Fprintf(a.stdout, "  %-8s  %s\n", ch.Effect, ch.Message)
	}
	fmt.Fprintf(a.stdout, "%d users evaluated; %d would change status.\n", dr.Users, dr.Changed)
	keys := make([]string, 0, len(dr.Transitions))
	for k := range dr.Transitions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(a.stdout, "  %s: %d\n", k, dr.Transitions[k])
	}
	fmt.Fprintf(a.stdout, "Compliant %d -> %d, in grace %d -> %d, non-compliant %d -> %d.\n", dr.Before.Compliant, dr.After.Compliant,
		dr.Before.Grace, dr.After.Grace, dr.Before.NonCompliant, dr.After.NonCompliant)
	if s := dr.AdminsSignIn; s.Admins > 0 {
		fmt.Fprintf(a.stdout, "Administrators who can sign in with a security key: %d -> %d (%d once every grace has run out).\n", s.Before, s.After, s.AfterGrace)
	}
	for _, w := range dr.Warnings {
		fmt.Fprintf(a.stdout, "WARNING: %s\n", w)
	}
	if len(dr.ChangedUsers) == 0 {
		return nil
	}
	rows := make([][]string, len(dr.ChangedUsers))
	for i, u := range dr.ChangedUsers {
		rows[i] = []string{u.Username, u.From, u.To, whenp(u.Deadline), dash(strings.Join(u.Reasons, "; "))}
	}
	if err := a.table([]string{"USER", "FROM", "TO", "DEADLINE", "WHY"}, rows); err != nil {
		return err
	}
	if dr.Truncated {
		a.note("note: only the first %d users are listed", len(dr.ChangedUsers))
	}
	return nil
}

func (a *app) policyApplyCmd() *cobra.Command {
	var (
		yes     bool
		comment string
	)
	cmd := &cobra.Command{
		Use:   "apply FILE",
		Short: "Apply a policy file: dry run first, then apply after you confirm",
		Long: `apply shows the dry run (how many users change status, which ones and why),
asks for confirmation (skip it with --yes), then applies the file as the next
policy version and re-evaluates every user. A file that weakens any
requirement is not applied yet: keyfleetd opens an approval request and the
command prints the command a different admin runs to approve it.

Applying (or asking to apply) needs a fresh proof with your own security
key, bound to this document: keyfleet-agent asks for the key's PIN and
touch after you confirm.`,
		Example: "  keyfleet policy apply policy.yaml --comment \"engineering needs hardware keys\"\n  keyfleet policy apply policy.yaml --yes",
		Args:    argNames("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			doc, err := readPolicyFile(args[0])
			if err != nil {
				return err
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				dr, err := c.DryRunPolicy(ctx, doc)
				if err != nil {
					return err
				}
				if !a.jsonOutput() {
					if err := a.printDryRun(dr); err != nil {
						return err
					}
				}
				if err := a.confirm(yes, "Apply this policy?"); err != nil {
					return err
				}
				in := api.PolicyDocument{Document: doc, Comment: comment}
				var res client.PolicyResult
				err = a.withProof(ctx, c, proofOf(actPolicy, "", in), func(c *client.Client) error {
					var err error
					res, err = c.ApplyPolicy(ctx, in)
					return err
				})
				if err != nil {
					return err
				}
				return a.printPolicyResult(res)
			})
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "apply without asking")
	cmd.Flags().StringVar(&comment, "comment", "", "why, for the approver and the audit log")
	return cmd
}

// confirm asks on stderr and reads the answer from stdin, unless yes.
func (a *app) confirm(yes bool, question string) error {
	if yes {
		return nil
	}
	fmt.Fprintf(a.stderr, "%s [y/N] ", question)
	line, _ := bufio.NewReader(a.stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return fail(fmt.Errorf("not confirmed; nothing changed"), "answer y to go ahead, or pass --yes")
}

func (a *app) printPolicyResult(res client.PolicyResult) error {
	if res.Accepted != nil {
		return a.printAccepted(*res.Accepted)
	}
	ap := res.Applied
	return a.emit(ap, func() error {
		r := ap.Reevaluation
		fmt.Fprintf(a.stdout, "Policy version %d applied (sha256 %s).\n", ap.Version.Version, ap.Version.SHA256)
		fmt.Fprintf(a.stdout, "Re-evaluated %d users: %d in grace, %d non-compliant; deadlines started for %d.\n",
			r.Users, r.Grace, r.NonCompliant, r.Started)
		if r.Error != "" {
			a.note("warning: re-evaluation stopped early: %s; each user is evaluated again at their next status check, enrolment or verification", r.Error)
		}
		return nil
	})
}

func (a *app) policyRollbackCmd() *cobra.Command {
	var (
		yes     bool
		comment string
	)
	cmd := &cobra.Command{
		Use:     "rollback VERSION",
		Short:   "Make an earlier version's document current again (as a new version)",
		Long:    "rollback applies an earlier version's document as the next version. A rollback that weakens the\npolicy needs a second approver, like any apply, and every rollback a fresh proof with your own key.",
		Example: "  keyfleet policy rollback 3 --comment \"version 4 locked out the night shift\"",
		Args:    argNames("VERSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 1 {
				return usagef("VERSION must be a version number from 'keyfleet policy history', not %q", args[0])
			}
			if err := a.confirm(yes, fmt.Sprintf("Make version %d's document current again?", n)); err != nil {
				return err
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				in := api.PolicyRollback{Version: n, Comment: comment}
				var res client.PolicyResult
				err := a.withProof(ctx, c, proofOf(actPolicy, "", in), func(c *client.Client) error {
					var err error
					res, err = c.RollbackPolicy(ctx, in)
					return err
				})
				if err != nil {
					return err
				}
				return a.printPolicyResult(res)
			})
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "roll back without asking")
	cmd.Flags().StringVar(&comment, "comment", "", "why, for the approver and the audit log")
	return cmd
}

func (a *app) policyDiffCmd() *cobra.Command {
	var from, to int
	cmd := &cobra.Command{
		Use:     "diff",
		Short:   "Compare two policy versions requirement by requirement",
		Example: "  keyfleet policy diff                 # the current version against the one before\n  keyfleet policy diff --from 2 --to 5",
		Args:    argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				d, err := c.DiffPolicy(ctx, from, to)
				if err != nil {
					return err
				}
				return a.emit(d, func() error {
					fmt.Fprintf(a.stdout, "Version %d -> %d: %d change(s)%s.\n", d.From, d.To, len(d.Changes),
						map[bool]string{true: ", weaker (needed a second approver)"}[d.Weakens])
					rows := make([][]string, len(d.Changes))
					for i, ch := range d.Changes {
						rows[i] = []string{ch.Effect, dash(ch.Rule), ch.Field, dash(ch.Old), dash(ch.New)}
					}
					return a.rows([]string{"EFFECT", "RULE", "FIELD", "OLD", "NEW"}, rows)
				})
			})
		},
	}
	cmd.Flags().IntVar(&from, "from", -1, "older version (default: the one before --to; 0 is the empty document)")
	cmd.Flags().IntVar(&to, "to", 0, "newer version (default: the current one)")
	return cmd
}

func (a *app) policyHistoryCmd() *cobra.Command {
	var o listOpts
	cmd := &cobra.Command{
		Use:     "history",
		Short:   "List every policy version: who applied it, when, who approved it",
		Example: "  keyfleet policy history\n  keyfleet policy history -o json",
		Args:    argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				items, next, err := collect(ctx, o, func(ctx context.Context, cur string, n int) (api.Page[api.PolicyVersion], error) {
					return c.ListPolicyVersions(ctx, cur, n)
				})
				if err != nil {
					return err
				}
				return printList(a, items, next, "versions", []string{"VERSION", "APPLIED", "BY", "APPROVED BY", "RULES", "ROLLBACK OF", "COMMENT"},
					func(v api.PolicyVersion) []string {
						approver := "-"
						if v.ApprovedBy != nil {
							approver = actorName(*v.ApprovedBy)
						}
						rb := "-"
						if v.RollbackOf > 0 {
							rb = strconv.Itoa(v.RollbackOf)
						}
						return []string{strconv.Itoa(v.Version), when(v.AppliedAt), actorName(v.AppliedBy), approver,
							strconv.Itoa(v.Rules), rb, dash(v.Comment)}
					})
			})
		},
	}
	addListFlags(cmd, &o)
	return cmd
}

func (a *app) reportComplianceCmd() *cobra.Command {
	var (
		grp  string
		near int
	)
	cmd := &cobra.Command{
		Use:     "compliance",
		Short:   "Adoption and compliance overall and by group, stale and vulnerable factors, users past or near their deadline",
		Example: "  keyfleet report compliance\n  keyfleet report compliance --group eng --near-days 7 -o json",
		Args:    argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				r, err := c.ComplianceReport(ctx, grp, near)
				if err != nil {
					return err
				}
				return a.emit(r, func() error { return a.printCompliance(r) })
			})
		},
	}
	cmd.Flags().StringVar(&grp, "group", "", "only members of this group")
	cmd.Flags().IntVar(&near, "near-days", 14, "list users in grace whose deadline is within this many days")
	return cmd
}

var countsHeader = []string{"SCOPE", "USERS", "ADOPTION", "COMPLIANT", "GRACE", "NON-COMPLIANT", "EXEMPT", "STALE", "VULNERABLE"}

func countsRow(scope string, c api.ComplianceCounts) []string {
	return []string{scope, strconv.Itoa(c.Users), fmt.Sprintf("%.1f%%", 100*c.Adoption), strconv.Itoa(c.Compliant),
		strconv.Itoa(c.Grace), strconv.Itoa(c.NonCompliant), strconv.Itoa(c.Exempt), strconv.Itoa(c.StaleFactors),
		strconv.Itoa(c.VulnerableFactors)}
}

func (a *app) printCompliance(r api.ComplianceReport) error {
	fmt.Fprintf(a.stdout, "Compliance with policy version %d at %s.\n", r.PolicyVersion, r.GeneratedAt.UTC().Format(time.RFC3339))
	rows := [][]string{countsRow("all", r.Overall)}
	for _, g := range slices.Sorted(maps.Keys(r.ByGroup)) {
		rows = append(rows, countsRow("group "+g, r.ByGroup[g]))
	}
	for _, role := range slices.Sorted(maps.Keys(r.ByRole)) {
		rows = append(rows, countsRow("role "+role, r.ByRole[role]))
	}
	if err := a.table(countsHeader, rows); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Admins and security officers short of two hardware keys: %d.\n", r.PrivilegedShort)
	rc := r.RecoveryCodes
	fmt.Fprintf(a.stdout, "Recovery codes: %d users hold some (%d with 1 or 2 left), %d used them all.\n", rc.WithCodes, rc.Low, rc.AllUsed)
	if bg := r.BreakGlass; bg != nil && bg.NeedsRotation {
		fmt.Fprintf(a.stdout, "BREAK-GLASS USED, NOT ROTATED (used %s): run 'keyfleet breakglass rotate'.\n", whenp(bg.UsedAt))
	}
	for _, l := range []struct {
		title string
		users []api.ReportUser
	}{{"Non-compliant users", r.NonCompliant}, {fmt.Sprintf("Deadline within %d days", r.NearDays), r.NearDeadline}} {
		fmt.Fprintf(a.stdout, "%s: %d\n", l.title, len(l.users))
		if len(l.users) == 0 {
			continue
		}
		urows := make([][]string, len(l.users))
		for i, u := range l.users {
			urows[i] = []string{u.Username, u.Status, whenp(u.Deadline), dash(strings.Join(u.Reasons, "; "))}
		}
		if err := a.table([]string{"USER", "STATUS", "DEADLINE", "WHY"}, urows); err != nil {
			return err
		}
	}
	return a.printIgnoredPushes(r.IgnoredPushes)
}

// printIgnoredPushes lists push companions whose pushes go unanswered,
// when there are any.
func (a *app) printIgnoredPushes(list []api.IgnoredPushes) error {
	if len(list) == 0 {
		return nil
	}
	fmt.Fprintf(a.stdout, "Push companions with %d or more pushes in a row unanswered: %d\n", api.IgnoredPushesThreshold, len(list))
	rows := make([][]string, len(list))
	for i, p := range list {
		rows[i] = []string{p.Username, p.FactorID, dash(p.Label), strconv.Itoa(p.Unanswered), whenp(p.LastUnansweredAt)}
	}
	return a.table([]string{"USER", "FACTOR", "NAME", "UNANSWERED", "LAST"}, rows)
}

func (a *app) usersExemptCmd() *cobra.Command {
	var until, reason string
	cmd := &cobra.Command{
		Use:   "exempt USER",
		Short: "Ask for a user to be exempt from the policy until a date (needs a second approver)",
		Long: `exempt asks for a time-boxed exemption: while it runs, the user counts as
compliant (enrolment still accepts only keys the policy allows). --until
takes a date (2026-07-01, midnight UTC), an RFC 3339 time, or a number of
days from now (90d); --reason is required.

` + twoPersonLong,
		Example: `  keyfleet users exempt alice --until 90d --reason "parental leave; key ordered"
  keyfleet users exempt alice --until 2027-07-01 --reason "on a ship until July"`,
		Args: argNames("USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := parseUntil(until, time.Now())
			if err != nil {
				return err
			}
			if reason == "" {
				return usagef("--reason is required: say why the user is exempt")
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				acc, err := c.ExemptUser(ctx, args[0], api.CreateExemption{Until: t, Reason: reason})
				if err != nil {
					return err
				}
				return a.printAccepted(acc)
			})
		},
	}
	cmd.Flags().StringVar(&until, "until", "", "when the exemption ends: 2026-07-01, 2026-07-01T12:00:00Z, or days from now like 90d")
	cmd.Flags().StringVar(&reason, "reason", "", "why, shown in the user's status and the audit log")
	return cmd
}

// parseUntil reads --until: a date (midnight UTC), an RFC 3339 time, or a
// whole number of days after now ("90d").
func parseUntil(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, usagef("--until is required: when the exemption ends, like 2026-07-01 or 90d")
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	if n, err := strconv.Atoi(strings.TrimSuffix(s, "d")); err == nil && strings.HasSuffix(s, "d") && n > 0 {
		return now.UTC().AddDate(0, 0, n).Truncate(time.Second), nil
	}
	return time.Time{}, usagef("--until %q is not a date like 2026-07-01, a time like 2026-07-01T12:00:00Z, or days from now like 90d", s)
}
