package cli

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	"github.com/keyfleet/keyfleet/internal/csvsafe"
)

// rows prints a report as a table, or as CSV with -o csv; a cell that a
// spreadsheet would run as a formula (a group named "=HYPERLINK(…)") is
// written as text (internal/csvsafe).
func (a *app) rows(header []string, rows [][]string) error {
	if a.output != outputCSV {
		return a.table(header, rows)
	}
	w := csvsafe.NewWriter(a.stdout)
	w.Write(header)
	return w.WriteAll(rows)
}

func (a *app) reportAdoptionCmd() *cobra.Command {
	var grp string
	cmd := &cobra.Command{
		Use:     "adoption [--group G]",
		Short:   "Adoption and compliance by group and by role, and the factor kinds in use",
		Example: "  keyfleet report adoption\n  keyfleet report adoption -o csv > adoption.csv",
		Args:    argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				r, err := c.ComplianceReport(ctx, grp, -1)
				if err != nil {
					return err
				}
				return a.emit(r, func() error {
					rows := [][]string{countsRow("everyone", r.Overall)}
					rows = append(rows, scopeRows("group ", r.ByGroup)...)
					rows = append(rows, scopeRows("role ", r.ByRole)...)
					return a.rows(countsHeader, rows)
				})
			})
		},
	}
	cmd.Flags().StringVar(&grp, "group", "", "only members of this group")
	return cmd
}

func scopeRows(prefix string, m map[string]api.ComplianceCounts) [][]string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out [][]string
	for _, k := range keys {
		out = append(out, countsRow(prefix+k, m[k]))
	}
	return out
}

func (a *app) reportDeadlinesCmd() *cobra.Command {
	var grp string
	var near int
	cmd := &cobra.Command{
		Use:     "deadlines [--group G] [--near-days N]",
		Short:   "Users past their enrolment deadline, and those whose deadline is near",
		Example: "  keyfleet report deadlines --near-days 7\n  keyfleet report deadlines -o csv",
		Args:    argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				r, err := c.ComplianceReport(ctx, grp, near)
				if err != nil {
					return err
				}
				return a.emit(r, func() error {
					var rows [][]string
					for _, u := range r.NonCompliant {
						rows = append(rows, deadlineRow("past", u))
					}
					for _, u := range r.NearDeadline {
						rows = append(rows, deadlineRow("near", u))
					}
					return a.rows([]string{"STATUS", "USERNAME", "USER ID", "DEADLINE"}, rows)
				})
			})
		},
	}
	cmd.Flags().StringVar(&grp, "group", "", "only members of this group")
	cmd.Flags().IntVar(&near, "near-days", 14, "a deadline within this many days is near")
	return cmd
}

func deadlineRow(status string, u api.ReportUser) []string {
	return []string{status, u.Username, u.UserID, whenp(u.Deadline)}
}

func (a *app) reportFactorsCmd(which, short string) *cobra.Command {
	var grp string
	cmd := &cobra.Command{
		Use:     which + " [--group G]",
		Short:   short,
		Example: fmt.Sprintf("  keyfleet report %s\n  keyfleet report %s --group eng -o csv", which, which),
		Args:    argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				items, err := c.FactorReport(ctx, which, grp)
				if err != nil {
					return err
				}
				return a.emit(items, func() error {
					rows := make([][]string, 0, len(items))
					for _, f := range items {
						serial := ""
						if f.Serial != 0 {
							serial = strconv.FormatUint(uint64(f.Serial), 10)
						}
						rows = append(rows, []string{f.Username, f.FactorID, f.Kind, f.Model, serial, f.Firmware, whenp(f.LastUsedAt), f.Why})
					}
					return a.rows([]string{"USERNAME", "FACTOR", "KIND", "MODEL", "SERIAL", "FIRMWARE", "LAST USED", "WHY"}, rows)
				})
			})
		},
	}
	cmd.Flags().StringVar(&grp, "group", "", "only members of this group")
	return cmd
}

var privilegedHeader = []string{"USERNAME", "KIND", "STATUS", "ROLE", "GRANTED BY", "APPROVED BY", "GRANTED", "LAST USED", "TOKENS", "NO EXPIRY"}

func privilegedRow(h api.PrivilegedHolder) []string {
	by := func(ac *api.Actor) string {
		if ac == nil {
			return "-"
		}
		return actorName(*ac)
	}
	return []string{h.Username, h.Kind, h.Status, h.Role, by(h.GrantedBy), by(h.ApprovedBy), whenp(h.GrantedAt),
		whenp(h.LastUsedAt), strconv.Itoa(h.Tokens), strconv.Itoa(h.NoExpiry)}
}

func (a *app) reportPrivilegedCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "privileged",
		Short: "Who holds a role beyond user: granted by whom, approved by whom, last used, live tokens",
		Long: `privileged lists every person and service account holding a role beyond
user, one row per role: who granted it and who approved the grant ("system"
for the founding administrators keyfleetd init made), when, when the
account was last active, and its live tokens, with those that never expire
(a service account's token should name an expiry).`,
		Example: "  keyfleet report privileged\n  keyfleet report privileged -o json | jq '.[] | select(.approved_by == null)'",
		Args:    argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				items, err := c.PrivilegedReport(ctx)
				if err != nil {
					return err
				}
				if items == nil {
					items = []api.PrivilegedHolder{}
				}
				return a.emit(items, func() error {
					rows := make([][]string, 0, len(items))
					for _, h := range items {
						rows = append(rows, privilegedRow(h))
					}
					return a.rows(privilegedHeader, rows)
				})
			})
		},
	}
}
