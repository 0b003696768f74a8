package cli

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
)

// importColumns are the CSV columns users import understands; username is
// required, the others optional. Groups and roles are separated by ";".
var importColumns = []string{"username", "display_name", "email", "groups", "roles", "kind"}

func (a *app) usersImportCmd() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "import FILE.csv [--dry-run]",
		Short: "Create or update users from a CSV file; one bad row changes nothing",
		Long: `import reads a CSV file with a header row naming some of these columns:
username (required), display_name, email, groups, roles, kind. Groups and
roles are separated by ";". Existing users are updated where a column gives
a value; new ones are created. keyfleetd checks every row before changing
anything, and imports all rows in one transaction (at most 5,000).`,
		Example: `  keyfleet users import staff.csv --dry-run
  keyfleet users import staff.csv

  # staff.csv
  username,display_name,email,groups,roles
  alice,Alice Example,alice@example.org,engineering;oncall,user
  bob,Bob Example,bob@example.org,sales,`,
		Args: argNames("FILE.csv"),
		RunE: func(cmd *cobra.Command, args []string) error {
			rows, err := readImportCSV(args[0])
			if err != nil {
				return err
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				res, err := c.ImportUsers(ctx, api.ImportUsers{Users: rows, DryRun: dryRun})
				if err != nil {
					return err
				}
				return a.emit(res, func() error {
					verb := "Imported"
					if res.DryRun {
						verb = "Dry run, nothing changed: would import"
					}
					fmt.Fprintf(a.stdout, "%s %d rows: %d created, %d updated, %d unchanged.\n", verb, len(rows), res.Created, res.Updated, res.Unchanged)
					switch {
					case len(res.Approvals) > 0 && res.DryRun:
						// The requests a dry run names were rolled back
						// with the rest: there is nothing to approve.
						fmt.Fprintf(a.stdout, "%d change(s) would wait for a second person (roles beyond user, or leaving a stricter rule's group or role).\n",
							len(res.Approvals))
					case len(res.Approvals) > 0:
						fmt.Fprintf(a.stdout, "%d change(s) wait for a second person (roles beyond user, or leaving a stricter rule's group or role): %s\n",
							len(res.Approvals), strings.Join(res.Approvals, ", "))
						fmt.Fprintln(a.stdout, "A different person who may approve them runs, with their own key: keyfleet approvals approve ID --reason TEXT")
					}
					return nil
				})
			})
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "check every row and count the changes, without making them")
	return cmd
}

// readImportCSV turns the file into rows, with errors that name the line.
func readImportCSV(file string) ([]api.CreateUser, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, usagef("reading %s: %v", file, err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err != nil {
		return nil, usagef("%s: no header row (%v); the first line names the columns: %s", file, err, strings.Join(importColumns, ","))
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		if !slices.Contains(importColumns, h) {
			return nil, usagef("%s: unknown column %q; columns are %s", file, h, strings.Join(importColumns, ","))
		}
		col[h] = i
	}
	if _, ok := col["username"]; !ok {
		return nil, usagef("%s: the header has no username column", file)
	}
	var rows []api.CreateUser
	for line := 2; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, usagef("%s line %d: %v", file, line, err)
		}
		rows = append(rows, importRow(rec, col))
	}
}

func importRow(rec []string, col map[string]int) api.CreateUser {
	get := func(name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	list := func(name string) []string {
		v := get(name)
		if v == "" {
			return nil
		}
		var out []string
		for _, x := range strings.Split(v, ";") {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, x)
			}
		}
		return out
	}
	return api.CreateUser{Username: get("username"), DisplayName: get("display_name"), Email: get("email"),
		Groups: list("groups"), Roles: list("roles"), Kind: get("kind")}
}
