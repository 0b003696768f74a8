package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	"github.com/spf13/cobra"
)

func (a *app) usersCmd() *cobra.Command {
	cmd := group("users", "Manage people and service accounts",
		"  keyfleet users list --group eng\n  keyfleet users show alice")
	cmd.AddCommand(a.usersCreateCmd(), a.usersListCmd(), a.usersShowCmd(), a.usersMFAStatusCmd(), a.usersUpdateCmd(),
		a.usersEnableCmd(), a.usersUnlockCmd(), a.usersPassCmd(), a.twoPersonCmd(userDisable), a.twoPersonCmd(userDelete),
		a.twoPersonCmd(userResetMFA), a.usersExemptCmd(), a.usersImportCmd())
	return cmd
}

var userHeader = []string{"USERNAME", "ID", "KIND", "STATUS", "ROLES", "GROUPS"}

func userRow(u api.User) []string {
	return []string{u.Username, u.ID, u.Kind, u.Status, list(u.Roles), list(u.Groups)}
}

func (a *app) printUser(u api.User) error {
	return a.emit(u, func() error {
		return a.fields("Username", u.Username, "ID", u.ID, "Display name", u.DisplayName,
			"Email", u.Email, "Kind", u.Kind, "Status", u.Status, "Roles", list(u.Roles),
			"Groups", list(u.Groups), "Created", when(u.CreatedAt), "Updated", when(u.UpdatedAt))
	})
}

// printUserResult prints the user, and what waits for a second person.
// With -o json: the user, or the api.Accepted (whose .user is the user as
// it stands).
func (a *app) printUserResult(res client.UserResult) error {
	if res.Accepted == nil {
		return a.printUser(res.User)
	}
	if a.jsonOutput() {
		return a.printJSON(res.Accepted)
	}
	if err := a.printUser(res.User); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout)
	return a.printAccepted(*res.Accepted)
}

const grantLong = `A role beyond user (or service) is not granted at once: the user is saved
without it and keyfleetd opens an approval request; a different person who
may approve it grants it with 'keyfleet approvals approve ID' and their own
key. The command prints the user as it stands and that request, and exits 0.`

func (a *app) usersCreateCmd() *cobra.Command {
	var in api.CreateUser
	cmd := &cobra.Command{
		Use:   "create USERNAME",
		Short: "Create a person or a service account",
		Long:  "create adds a person or a service account.\n\n" + grantLong,
		Example: `  keyfleet users create alice --display-name "Alice Liddell" --email alice@example.com --group eng --role user
  keyfleet users create ci-bot --kind service --role service`,
		Args: argNames("USERNAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if in.Kind != "" && in.Kind != api.KindPerson && in.Kind != api.KindService {
				return usagef("--kind must be %s or %s, not %q", api.KindPerson, api.KindService, in.Kind)
			}
			in.Username = args[0]
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				res, err := c.CreateUser(ctx, in)
				if err != nil {
					return err
				}
				return a.printUserResult(res)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&in.DisplayName, "display-name", "", "full name")
	f.StringVar(&in.Email, "email", "", "email address")
	f.StringSliceVar(&in.Groups, "group", nil, "group to join (repeatable)")
	f.StringSliceVar(&in.Roles, "role", nil, "role to hold (repeatable): "+list(api.AllRoles))
	f.StringVar(&in.Kind, "kind", "", "person or service (default person)")
	return cmd
}

func (a *app) usersListCmd() *cobra.Command {
	var (
		f client.UserFilter
		o listOpts
	)
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List users",
		Example: "  keyfleet users list\n  keyfleet users list --role admin --status active -o json",
		Args:    argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				items, next, err := collect(ctx, o, func(ctx context.Context, cur string, n int) (api.Page[api.User], error) {
					f.Cursor, f.Limit = cur, n
					return c.ListUsers(ctx, f)
				})
				if err != nil {
					return err
				}
				return printList(a, items, next, "users", userHeader, userRow)
			})
		},
	}
	cmd.Flags().StringVarP(&f.Query, "query", "q", "", "the start of the username, email (or @domain), display name or a word of it, in any case")
	cmd.Flags().StringVar(&f.Group, "group", "", "only members of this group")
	cmd.Flags().StringVar(&f.Role, "role", "", "only holders of this role")
	cmd.Flags().StringVar(&f.Status, "status", "", "only users in this status: active or disabled")
	addListFlags(cmd, &o)
	return cmd
}

func (a *app) usersShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show USER",
		Short: "Show one user (by id or username) and their MFA status",
		Long: `show prints the user and, for roles that may read it, their MFA status:
compliant, in grace until a deadline, non-compliant or exempt, why, and
what they must do next. -o json prints the user record alone; 'keyfleet
users mfa-status USER -o json' prints the status.`,
		Example: "  keyfleet users show alice\n  keyfleet users show usr_01HV7 -o json",
		Args:    argNames("USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				u, err := c.GetUser(ctx, args[0])
				if err != nil || a.jsonOutput() {
					if err == nil {
						err = a.printUser(u)
					}
					return err
				}
				if err := a.printUser(u); err != nil {
					return err
				}
				st, err := c.MFAStatus(ctx, u.ID)
				if client.IsForbidden(err) {
					a.note("note: your roles do not show MFA status")
					return nil
				}
				if err != nil {
					return err
				}
				fmt.Fprintln(a.stdout)
				return a.printMFAStatus(st)
			})
		},
	}
}

func (a *app) usersMFAStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "mfa-status USER",
		Short: "Show whether a user meets the policy, why, and what they must do next",
		Long: `mfa-status asks keyfleetd how USER stands with the policy: compliant, in
grace until a deadline, non-compliant, or exempt until a date; the reasons;
the next steps for the user; the factor kinds they may sign in with; and
their active factors. Users may read their own.`,
		Example: "  keyfleet users mfa-status alice\n  keyfleet users mfa-status alice -o json",
		Args:    argNames("USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				st, err := c.MFAStatus(ctx, args[0])
				if err != nil {
					return err
				}
				return a.emit(st, func() error { return a.printMFAStatus(st) })
			})
		},
	}
}

// printMFAStatus prints a status for people: an exempt user reads as
// exempt (until when), not as compliant.
func (a *app) printMFAStatus(st api.MFAStatus) error {
	kinds := list(st.AllowedKinds)
	if st.AllowedKinds != nil && len(st.AllowedKinds) == 0 {
		kinds = "none"
	}
	labels := make([]string, 0, len(st.ActiveFactors))
	for _, f := range st.ActiveFactors {
		labels = append(labels, f.Kind+" "+firstOf(f.Label, f.ID))
	}
	if err := a.fields("MFA status", statusWords(st), "Policy version", fmt.Sprint(st.PolicyVersion),
		"Must enrol", map[bool]string{true: "yes", false: ""}[st.MustEnrol], "Sign in with", kinds,
		"Active factors", list(labels), "Locked until", optTime(st.LockedUntil)); err != nil {
		return err
	}
	for _, l := range []struct {
		title string
		items []string
	}{{"Why", st.Reasons}, {"What they must do", st.NextSteps}} {
		if len(l.items) == 0 {
			continue
		}
		fmt.Fprintf(a.stdout, "%s:\n", l.title)
		for _, s := range l.items {
			fmt.Fprintf(a.stdout, "  - %s\n", s)
		}
	}
	return nil
}

// statusWords says a status in a few words.
func statusWords(st api.MFAStatus) string {
	switch {
	case st.ExemptUntil != nil:
		return "exempt until " + when(*st.ExemptUntil)
	case st.Status == "grace" && st.GraceUntil != nil:
		return "in grace until " + when(*st.GraceUntil)
	case st.Status == "non_compliant" && st.Deadline != nil:
		return "non-compliant (deadline " + when(*st.Deadline) + ")"
	case st.Status == "non_compliant":
		return "non-compliant"
	}
	return st.Status
}

func (a *app) usersUpdateCmd() *cobra.Command {
	var (
		name, email   string
		groups, roles []string
	)
	cmd := &cobra.Command{
		Use:   "update USER",
		Short: "Change a user's name, email, groups or roles",
		Long: `update changes only the fields whose flags are given. --group and --role
replace the whole list; --group "" empties it.

Adding a role beyond user, taking someone out of a group or role that a
stricter policy rule holds, and removing a role so that fewer than two
people could approve something wait for a second person: the rest of the
change applies at once, and the command prints the request.`,
		Example: `  keyfleet users update alice --email alice@new.example.com
  keyfleet users update alice --group eng --group oncall --role user`,
		Args: argNames("USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := userUpdate(cmd, name, email, groups, roles)
			if err != nil {
				return err
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				res, err := c.UpdateUser(ctx, args[0], in)
				if err != nil {
					return err
				}
				return a.printUserResult(res)
			})
		},
	}
	cmd.Flags().StringVar(&name, "display-name", "", "new full name")
	cmd.Flags().StringVar(&email, "email", "", "new email address")
	cmd.Flags().StringSliceVar(&groups, "group", nil, "groups, replacing the current ones (repeatable)")
	cmd.Flags().StringSliceVar(&roles, "role", nil, "roles, replacing the current ones (repeatable)")
	return cmd
}

// userUpdate builds the PATCH body from the flags that were given.
func userUpdate(cmd *cobra.Command, name, email string, groups, roles []string) (api.UpdateUser, error) {
	var in api.UpdateUser
	changed := cmd.Flags().Changed
	if changed("display-name") {
		in.DisplayName = &name
	}
	if changed("email") {
		in.Email = &email
	}
	if changed("group") {
		g := nonEmpty(groups)
		in.Groups = &g
	}
	if changed("role") {
		r := nonEmpty(roles)
		in.Roles = &r
	}
	if in == (api.UpdateUser{}) {
		return in, usagef("nothing to update; give --display-name, --email, --group or --role")
	}
	return in, nil
}

func nonEmpty(s []string) []string {
	out := []string{}
	for _, v := range s {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

func (a *app) usersEnableCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "enable USER",
		Short:   "Enable a disabled user",
		Example: "  keyfleet users enable alice",
		Args:    argNames("USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				u, err := c.EnableUser(ctx, args[0])
				if err != nil {
					return err
				}
				return a.printUser(u)
			})
		},
	}
}

func (a *app) usersUnlockCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "unlock USER --reason TEXT",
		Short: "Clear a user's verification lockout, and their factors' (admin, security officer, helpdesk)",
		Long: `unlock clears the lock that failed verifications put on a user and on
their factors before it runs out by itself (verify.lockout in
keyfleetd.yaml, 15 minutes by default). The unlock is audited with the
reason.`,
		Example: `  keyfleet users unlock alice --reason "called the helpdesk; identity checked"`,
		Args:    argNames("USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if reason == "" {
				return usagef("--reason is required: say why the lock may go")
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				u, err := c.UnlockUser(ctx, args[0], reason)
				if err != nil {
					return err
				}
				return a.printUser(u)
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the lock may go (audited)")
	return cmd
}

// twoPerson describes a command whose action needs a second approver.
type twoPerson struct {
	use, short, example string
	call                func(c *client.Client, ctx context.Context, target, reason string) (api.Accepted, error)
	// withBody, when set, replaces call and adds --replacement-planned
	// (a factor's revoke and delete).
	withBody func(c *client.Client, ctx context.Context, target string, in api.StateChange) (api.Accepted, error)
}

var (
	userDisable = twoPerson{"disable USER", "Ask for a user to be disabled (needs a second approver)",
		`  keyfleet users disable bob --reason "left the company"`, (*client.Client).DisableUser, nil}
	userDelete = twoPerson{"delete USER", "Ask for a user to be deleted (needs a second approver)",
		`  keyfleet users delete bob --reason "duplicate account"`, (*client.Client).DeleteUser, nil}
	userResetMFA = twoPerson{"reset-mfa USER", "Ask for all of a user's factors to be revoked (needs a second approver)",
		`  keyfleet users reset-mfa alice --reason "lost phone and key; identity checked by helpdesk ticket 4711"`,
		(*client.Client).ResetUserMFA, nil}
)

func (a *app) twoPersonCmd(tp twoPerson) *cobra.Command {
	var reason string
	var planned bool
	cmd := &cobra.Command{
		Use:     tp.use,
		Short:   tp.short,
		Long:    tp.short + ".\n\n" + twoPersonLong,
		Example: tp.example,
		Args:    argNames(strings.Fields(tp.use)[1]),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var acc api.Accepted
				var err error
				if tp.withBody != nil {
					acc, err = tp.withBody(c, ctx, args[0], api.StateChange{Reason: reason, ReplacementPlanned: planned})
				} else {
					acc, err = tp.call(c, ctx, args[0], reason)
				}
				if err != nil {
					return err
				}
				return a.printAccepted(acc)
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the approver and the audit log")
	if tp.withBody != nil {
		cmd.Flags().BoolVar(&planned, "replacement-planned", false, "a replacement is arranged: lets the user's last active factor go (the policy refuses it otherwise)")
	}
	return cmd
}

const twoPersonLong = `Nothing changes yet: keyfleetd opens an approval request, and the action
runs when a different admin approves it with 'keyfleet approvals approve ID'.
The command prints the request's id and that command.`

// withClient builds the client and runs f with the command's context.
func (a *app) withClient(cmd *cobra.Command, f func(context.Context, *client.Client) error) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	return f(cmd.Context(), c)
}
