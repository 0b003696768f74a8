package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
)

func (a *app) directoryCmd() *cobra.Command {
	cmd := group("directory", "Users from LDAP / Active Directory and SCIM: sync, status and drift, links",
		"  keyfleet directory status\n  keyfleet directory sync --dry-run\n  keyfleet directory link alice --source corp")
	cmd.AddCommand(a.directoryStatusCmd(), a.directorySyncCmd(), a.directoryLinkCmd(), a.directoryUnlinkCmd())
	return cmd
}

func (a *app) directoryStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use: "status", Short: "Each source's last sync, counts, errors and drift", Args: argNames(),
		Long: `status shows, for every directory source (the LDAP sync and each SCIM
client), when it last synced and what that did, its error if it failed, how
many users it provides, and the drift: users it no longer has (disabled,
waiting for someone to ask for their deletion), directory usernames held by
users made by hand, and active people no source provides.`,
		Example: "  keyfleet directory status\n  keyfleet directory status -o json",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				ov, err := c.DirectoryStatus(ctx)
				if err != nil {
					return err
				}
				return a.emit(ov, func() error { return a.printOverview(ov) })
			})
		},
	}
}

func (a *app) printOverview(ov api.DirectoryOverview) error {
	if len(ov.Sources) == 0 {
		fmt.Fprintln(a.stdout, "No directory source is configured or has users (docs/directory.md).")
	}
	var rows [][]string
	for _, s := range ov.Sources {
		last, mode, result := "-", "-", "never synced"
		if s.Last != nil {
			last, mode, result = when(s.Last.FinishedAt), s.Last.Mode, summary(*s.Last)
		}
		if s.Kind == api.DirectorySCIM {
			mode, result = "push", "-"
		}
		rows = append(rows, []string{s.Source, s.Kind, last, mode, result, fmt.Sprintf("%d/%d", s.Active, s.Linked),
			fmt.Sprint(len(s.Gone)), whenp(s.NextSyncAt)})
	}
	if len(rows) > 0 {
		if err := a.table([]string{"SOURCE", "KIND", "LAST SYNC", "MODE", "RESULT", "ACTIVE/LINKED", "GONE", "NEXT"}, rows); err != nil {
			return err
		}
	}
	for _, s := range ov.Sources {
		if s.Last != nil && s.Last.MemoryBytes > 0 && s.Last.Seen > 0 {
			fmt.Fprintf(a.stdout, "%s is kept in keyfleetd's memory between syncs: about %.1f MiB (%d bytes a user)\n", s.Source,
				float64(s.Last.MemoryBytes)/(1<<20), s.Last.MemoryBytes/int64(s.Last.Seen))
		}
		if len(s.Gone) > 0 {
			fmt.Fprintf(a.stdout, "%s no longer has (disabled in keyfleet): %s\n", s.Source, strings.Join(s.Gone, ", "))
		}
		if len(s.Conflicts) > 0 {
			fmt.Fprintf(a.stdout, "%s has usernames held by users made by hand: %s (keyfleet directory link USER --source %s)\n", s.Source, strings.Join(s.Conflicts, ", "), s.Source)
		}
	}
	if ov.Unlinked > 0 {
		fmt.Fprintf(a.stdout, "%d active people come from no directory: %s\n", ov.Unlinked, strings.Join(ov.UnlinkedUsers, ", "))
	}
	return nil
}

// summary is a sync's outcome in a few words.
func summary(r api.DirectorySyncReport) string {
	if r.Error != "" {
		return "FAILED: " + r.Error
	}
	s := fmt.Sprintf("%d seen: %d created, %d updated, %d renamed, %d disabled, %d enabled", r.Seen, r.Created, r.Updated, r.Renamed, r.Disabled, r.Enabled)
	if r.Requested > 0 {
		s += fmt.Sprintf(", %d waiting for approval", r.Requested)
	}
	if r.Conflicts+r.Skipped > 0 {
		s += fmt.Sprintf(", %d conflicts, %d skipped", r.Conflicts, r.Skipped)
	}
	warned := 0
	for _, c := range r.Changes {
		if c.What == api.ChangeWarning {
			warned++
		}
	}
	if warned > 0 {
		s += fmt.Sprintf(", %d warning(s) (the changes list them; -o json)", warned)
	}
	return s
}

func (a *app) directorySyncCmd() *cobra.Command {
	var in api.DirectorySync
	cmd := &cobra.Command{
		Use:   "sync [--dry-run] [--incremental] [--force]",
		Short: "Sync the LDAP directory now, or show what a sync would create, change and disable",
		Long: `sync reads the LDAP / Active Directory source keyfleetd is configured with and
applies it: new users created, renamed and moved users brought in line,
users disabled in or gone from the directory disabled with their factors
suspended. Roles the directory's groups give wait for a second person's
approval. With --dry-run it shows what would happen and changes nothing.

A sync reads the whole directory before it changes anything: if the
directory fails half way, nothing is applied. It refuses to disable more
than max_disable_percent of the users unless --force is given.`,
		Example: "  keyfleet directory sync --dry-run\n  keyfleet directory sync\n  keyfleet directory sync --incremental -o json",
		Args:    argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				rep, err := c.SyncDirectory(ctx, in)
				if err != nil {
					return err
				}
				return a.emit(rep, func() error { return a.printSync(rep) })
			})
		},
	}
	f := cmd.Flags()
	f.BoolVar(&in.DryRun, "dry-run", false, "show what would be created, changed and disabled, without doing it")
	f.BoolVar(&in.Incremental, "incremental", false, "read only what changed since the last sync, where the directory allows")
	f.BoolVar(&in.Force, "force", false, "disable the users who left even if they are more than the configured limit")
	f.StringVar(&in.Source, "source", "", "the LDAP source's name (default: the configured one)")
	return cmd
}

func (a *app) printSync(rep api.DirectorySyncReport) error {
	head := "Synced"
	if rep.DryRun {
		head = "Dry run, nothing changed; a sync would do this"
	}
	fmt.Fprintf(a.stdout, "%s (%s, %s): %s.\n", head, rep.Source, rep.Mode, summary(rep))
	if len(rep.Changes) > 0 {
		rows := make([][]string, len(rep.Changes))
		for i, ch := range rep.Changes {
			rows[i] = []string{ch.What, dash(ch.Username), dash(ch.Detail)}
		}
		if err := a.table([]string{"WHAT", "USER", "DETAIL"}, rows); err != nil {
			return err
		}
	}
	if rep.ChangesOmitted > 0 {
		fmt.Fprintf(a.stdout, "… and %d more (-o json lists the first %d; the audit log has every change).\n", rep.ChangesOmitted, api.MaxSyncChanges)
	}
	if rep.Requested > 0 && !rep.DryRun {
		a.note("%d access change(s) wait for a second approver: keyfleet approvals list", rep.Requested)
	}
	return nil
}

func (a *app) directoryLinkCmd() *cobra.Command {
	var in api.DirectoryLink
	cmd := &cobra.Command{
		Use:   "link USER --source NAME [--external-id ID]",
		Short: "Hand a user made by hand to a directory source, which manages them from then on",
		Long: `link hands a user made by hand to a directory source: by the entry's stable
id there (--external-id: entryUUID, objectGUID), or by username at the
source's next sync. From then on the source decides their profile, the
groups and roles its maps name, and whether they are active. Audited as a
change of privilege. For a SCIM client the source is scim:<account>.`,
		Example: "  keyfleet directory link alice --source corp\n  keyfleet directory link bob --source scim:okta",
		Args:    argNames("USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if in.Source == "" {
				return usagef("--source is required: the LDAP source's name, or scim:<account>")
			}
			in.User = args[0]
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				u, err := c.LinkUser(ctx, in)
				if err != nil {
					return err
				}
				return a.emit(u, func() error {
					fmt.Fprintf(a.stdout, "%s is linked to %s%s.\n", u.Username, u.Source, map[bool]string{true: " (matched by username at its next sync)"}[u.ExternalID == ""])
					return nil
				})
			})
		},
	}
	cmd.Flags().StringVar(&in.Source, "source", "", "the directory source")
	cmd.Flags().StringVar(&in.ExternalID, "external-id", "", "the entry's stable id in the source")
	return cmd
}

func (a *app) directoryUnlinkCmd() *cobra.Command {
	return &cobra.Command{
		Use: "unlink USER", Short: "Take a user away from their directory source; keyfleet keeps them as they are",
		Example: "  keyfleet directory unlink alice",
		Args:    argNames("USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				u, err := c.UnlinkUser(ctx, args[0])
				if err != nil {
					return err
				}
				return a.emit(u, func() error {
					fmt.Fprintf(a.stdout, "%s is no longer linked to a directory.\n", u.Username)
					return nil
				})
			})
		},
	}
}
