package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	"github.com/keyfleet/keyfleet/internal/sharefile"
)

func (a *app) recoveryCmd() *cobra.Command {
	cmd := group("recovery", "Help a user who lost a factor back in, after proving who they are",
		`  keyfleet recovery open --user alice --reason "key lost on a train" --suspend
  keyfleet recovery code rcv_06h1… 7k2qp-x9m4d
  keyfleet recovery pass rcv_06h1… --ttl 30m`)
	cmd.AddCommand(a.recoveryOpenCmd(), a.recoveryListCmd(), a.recoveryShowCmd(), a.recoveryCodeCmd(),
		a.recoveryCheckCmd(), a.recoveryPassCmd(), a.recoveryCancelCmd(), a.recoveryUnlockCmd(), a.recoveryCodesCmd())
	return cmd
}

func (a *app) printCase(c api.RecoveryCase) error {
	return a.emit(c, func() error {
		return a.fields("Case", c.ID, "User", c.Username, "State", c.State, "Reason", c.Reason,
			"Lost factors", list(c.LostFactorIDs), "Identity by", dash(c.Method), "Detail", dash(c.MethodDetail),
			"Opened", when(c.OpenedAt), "Expires", when(c.ExpiresAt), "Pass", dash(c.PassID), "New factor", dash(c.NewFactorID))
	})
}

func (a *app) caseCall(use, short, example string, args []string, run func(ctx context.Context, c *client.Client, args []string) (api.RecoveryCase, error)) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Example: example, Args: argNames(args...),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				rc, err := run(ctx, c, args)
				if err != nil {
					return err
				}
				return a.printCase(rc)
			})
		},
	}
}

func (a *app) recoveryOpenCmd() *cobra.Command {
	var in api.OpenRecovery
	cmd := a.caseCall("open --user NAME --reason TEXT", "Open a recovery case (helpdesk)",
		`  keyfleet recovery open --user alice --reason "key stolen" --suspend
  keyfleet recovery open --user bob --reason "left at home, travelling" --lost fac_06h1…`, nil,
		func(ctx context.Context, c *client.Client, _ []string) (api.RecoveryCase, error) {
			if in.User == "" || in.Reason == "" {
				return api.RecoveryCase{}, usagef("--user and --reason are required")
			}
			return c.OpenRecovery(ctx, in)
		})
	f := cmd.Flags()
	f.StringVar(&in.User, "user", "", "the user who lost a factor")
	f.StringVar(&in.Reason, "reason", "", "what happened")
	f.StringSliceVar(&in.LostFactors, "lost", nil, "the lost factor (repeatable; default every factor)")
	f.BoolVar(&in.Suspend, "suspend", false, "suspend the lost factors now, not when the replacement is enrolled")
	f.StringVar(&in.LostDevice, "lost-device", "", "mark this device lost now (revokes every factor on it)")
	return cmd
}

func (a *app) recoveryListCmd() *cobra.Command {
	var user, state string
	cmd := &cobra.Command{
		Use: "list", Short: "List recovery cases", Args: argNames(),
		Example: "  keyfleet recovery list --state open",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				pg, err := c.ListRecovery(ctx, user, state, "", 500)
				if err != nil {
					return err
				}
				return printList(a, pg.Items, pg.NextCursor, "recovery cases",
					[]string{"CASE", "USER", "STATE", "METHOD", "OPENED", "REASON"},
					func(c api.RecoveryCase) []string {
						return []string{c.ID, c.Username, c.State, dash(c.Method), when(c.OpenedAt), c.Reason}
					})
			})
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "only this user's cases")
	cmd.Flags().StringVar(&state, "state", "", "only in this state: open, confirmed, closed, cancelled")
	return cmd
}

func (a *app) recoveryShowCmd() *cobra.Command {
	return a.caseCall("show CASE", "Show a recovery case", "  keyfleet recovery show rcv_06h1…", []string{"CASE"},
		func(ctx context.Context, c *client.Client, args []string) (api.RecoveryCase, error) {
			return c.GetRecovery(ctx, args[0])
		})
}

func (a *app) recoveryCodeCmd() *cobra.Command {
	return a.caseCall("code CASE CODE", "Confirm identity with one of the user's recovery codes (used up)",
		"  keyfleet recovery code rcv_06h1… 7k2qp-x9m4d", []string{"CASE", "CODE"},
		func(ctx context.Context, c *client.Client, args []string) (api.RecoveryCase, error) {
			return c.RecoveryCode(ctx, args[0], args[1])
		})
}

func (a *app) recoveryCheckCmd() *cobra.Command {
	var in api.IdentityCheck
	cmd := &cobra.Command{
		Use:   "identity-check CASE --method M --detail TEXT",
		Short: "Record how you confirmed the user's identity; a security officer or admin approves it",
		Example: `  keyfleet recovery identity-check rcv_06h1… --method in_person_id --detail "passport seen, ends 1234"
  keyfleet recovery identity-check rcv_06h1… --method video_call_manager --detail "call with manager Bea"`,
		Args: argNames("CASE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				acc, err := c.IdentityCheck(ctx, args[0], in)
				if err != nil {
					return err
				}
				return a.printAccepted(acc)
			})
		},
	}
	cmd.Flags().StringVar(&in.Method, "method", "", "in_person_id, video_call_manager, callback_known_number or other")
	cmd.Flags().StringVar(&in.Detail, "detail", "", "what was checked")
	return cmd
}

func (a *app) recoveryPassCmd() *cobra.Command {
	var in api.IssuePass
	cmd := &cobra.Command{
		Use:   "pass CASE",
		Short: "Issue the temporary access pass of a confirmed case (shown once)",
		Long: `pass issues the temporary access pass of a case whose user's identity is
confirmed; the user enrols a new factor with it. It is shown once.

` + staffPassLong,
		Example: `  keyfleet recovery pass rcv_06h1…
  keyfleet recovery pass rcv_06h1… --ttl 30m --hardware-only --attended`,
		Args: argNames("CASE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var res client.PassResult
				err := a.withProof(ctx, c, proofOf(actPass, args[0], in), func(c *client.Client) error {
					var err error
					res, err = c.IssuePass(ctx, args[0], in)
					return err
				})
				if err != nil {
					return err
				}
				return a.printPassResult(res)
			})
		},
	}
	passFlags(cmd, &in)
	return cmd
}

// usersPassCmd issues an onboarding pass: a user's first factor.
func (a *app) usersPassCmd() *cobra.Command {
	var in api.IssuePass
	cmd := &cobra.Command{
		Use:   "pass USER",
		Short: "Issue a temporary access pass for a user's first factor (shown once)",
		Long: `pass issues a temporary access pass to a user who has no active factor yet:
they type it on the self-service page's welcome screen, or give it to
keyfleet-agent enroll --code, and register their first key. A user who has a
factor gets a pass only through a recovery case (keyfleet recovery open).

` + staffPassLong,
		Example: `  keyfleet users pass alice
  keyfleet users pass alice --ttl 8h --hardware-only`,
		Args: argNames("USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var res client.PassResult
				err := a.withProof(ctx, c, userProof(actPass, args[0], in), func(c *client.Client) error {
					var err error
					res, err = c.IssueOnboardingPass(ctx, args[0], in)
					return err
				})
				if err != nil {
					return err
				}
				return a.printPassResult(res)
			})
		},
	}
	passFlags(cmd, &in)
	return cmd
}

const staffPassLong = `For an account with a role beyond user, the pass needs two people: your
request, proved with your own key, and a second officer's approval
('keyfleet approvals approve ID'). The pass then goes to that approver,
shown once in the answer to their approve command, never to you.`

// printPassResult prints an issued pass, or the request a second officer
// approves for a staff account's pass.
func (a *app) printPassResult(res client.PassResult) error {
	if res.Accepted == nil {
		return a.printPass(res.IssuedPass)
	}
	if err := a.printAccepted(*res.Accepted); err != nil {
		return err
	}
	a.note("The pass is for an account with a role beyond user: it is issued to the approver, shown once in their 'keyfleet approvals approve' output, and never to you.")
	return nil
}

// userProof is the proof request of an action about a user named by id or
// username: the proof's subject is the user's id.
func userProof(action, user string, body any) proofFor {
	return func(ctx context.Context, c *client.Client) (api.ProofRequest, error) {
		u, err := c.GetUser(ctx, user)
		if err != nil {
			return api.ProofRequest{}, err
		}
		return proofOf(action, u.ID, body)(ctx, c)
	}
}

func (a *app) printPass(pass api.IssuedPass) error {
	return a.emit(pass, func() error {
		fmt.Fprintf(a.stdout, "Temporary access pass (shown once, valid until %s, %d use):\n\n  %s\n\n", when(pass.ExpiresAt), pass.Uses, pass.Code)
		fmt.Fprintf(a.stdout, "The user enrols a factor with: keyfleet-agent enroll --code %s\n(or on the self-service page's welcome screen)\n", pass.Code)
		return nil
	})
}

func passFlags(cmd *cobra.Command, in *api.IssuePass) {
	f := cmd.Flags()
	f.StringVar(&in.TTL, "ttl", "", "lifetime, 10m to 8h (default 1h)")
	f.IntVar(&in.Uses, "uses", 0, "how many factors it may enrol (default 1)")
	f.BoolVar(&in.HardwareOnly, "hardware-only", false, "only hardware keys may be enrolled with it")
	f.BoolVar(&in.Attended, "attended", false, "only an enroller at the desk may redeem it")
}

func (a *app) recoveryCancelCmd() *cobra.Command {
	var reason string
	cmd := a.caseCall("cancel CASE", "Cancel a recovery case", "  keyfleet recovery cancel rcv_06h1… --reason \"key found\"", []string{"CASE"},
		func(ctx context.Context, c *client.Client, args []string) (api.RecoveryCase, error) {
			return c.CancelRecovery(ctx, args[0], reason)
		})
	cmd.Flags().StringVar(&reason, "reason", "", "why")
	return cmd
}

func (a *app) recoveryUnlockCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use: "unlock USER", Short: "Clear a user's recovery lock after repeated failures (admin, security officer)",
		Example: "  keyfleet recovery unlock alice --reason \"identity confirmed in person\"",
		Args:    argNames("USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				u, err := c.RecoveryUnlock(ctx, args[0], reason)
				if err != nil {
					return err
				}
				return a.printUser(u)
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why")
	return cmd
}

func (a *app) recoveryCodesCmd() *cobra.Command {
	return &cobra.Command{
		Use: "codes", Short: "Replace your own recovery codes with ten new ones (shown once)",
		Long: `codes makes ten new recovery codes for you and shows them once; the old ones
stop working. It needs a fresh proof with one of your own factors: your
security key through keyfleet-agent, or, if you have only an authenticator
app, the code it shows (asked here, without echo).`,
		Aliases: []string{"regenerate-codes"},
		Example: "  keyfleet recovery codes > my-recovery-codes.txt",
		Args:    argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var codes []string
				err := a.withProof(ctx, c, proofOf(actCodes, "", nil), func(c *client.Client) error {
					var err error
					codes, err = c.RegenerateRecoveryCodes(ctx)
					return err
				})
				if err != nil {
					return err
				}
				return a.emit(api.RecoveryCodesIssued{Codes: codes}, func() error {
					fmt.Fprintf(a.stdout, "Your recovery codes (each works once; the old ones no longer work):\n\n  %s\n\n", strings.Join(codes, "\n  "))
					return nil
				})
			})
		},
	}
}

func (a *app) breakglassCmd() *cobra.Command {
	cmd := group("breakglass", "The emergency admin session opened by several share holders together",
		"  keyfleet breakglass status\n  keyfleet breakglass use --share s1.txt --share s2.txt --share s3.txt --reason \"all admins locked out\"")
	cmd.AddCommand(a.breakglassStatusCmd(), a.breakglassUseCmd(), a.breakglassEndCmd(), a.breakglassRotateCmd(), a.breakglassShareCmd())
	return cmd
}

func (a *app) breakglassStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use: "status", Short: "Show the break-glass credential and whether it must be rotated", Args: argNames(),
		Example: "  keyfleet breakglass status",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				st, err := c.BreakGlassStatus(ctx)
				if err != nil {
					return err
				}
				return a.emit(st, func() error {
					state, session := "ready", "none"
					if st.NeedsRotation {
						state = "USED, NOT ROTATED: run 'keyfleet breakglass rotate'"
						session = "ended " + whenp(st.SessionEndsAt)
					}
					if st.SessionActive {
						session = "OPEN until " + whenp(st.SessionEndsAt) + ": every action in it is audited as break-glass"
					}
					return a.fields("Set", st.SetID, "Shares", fmt.Sprintf("%d, any %d open a session", st.Shares, st.Threshold),
						"Created", when(st.CreatedAt), "Used", whenp(st.UsedAt), "State", state, "Session", session)
				})
			})
		},
	}
}

func (a *app) breakglassUseCmd() *cobra.Command {
	var files []string
	var server, ca string
	var in api.BreakGlassUse
	cmd := &cobra.Command{
		Use:   "use --share FILE --share FILE … --reason TEXT",
		Short: "Open a break-glass session with enough shares; it is loudly audited and single use",
		Long: `use combines the shares' holders' files into one emergency admin session that
needs no second approver. Every action in it is audited as break-glass, the
credential cannot be used again until it is rotated, and the session ends
after --duration (default 1h). The session's token is saved as the CLI's
login, so the next commands act with it; 'keyfleet breakglass end' ends it.`,
		Example: `  keyfleet breakglass use --share /media/usb1/share-1-of-5.txt --share share-3-of-5.txt --share share-4-of-5.txt --reason "all admins locked out"`,
		Args:    argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, f := range files {
				sh, err := sharefile.Read(f)
				if err != nil {
					return usagef("reading share: %v", err)
				}
				in.Shares = append(in.Shares, sh)
			}
			return a.useBreakGlass(cmd, in, server, ca)
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "keyfleetd's URL (default: the saved login's)")
	cmd.Flags().StringVar(&ca, "ca", "", "keyfleetd's certificate (default: the saved login's)")
	cmd.Flags().StringSliceVar(&files, "share", nil, "a share file (repeat for each holder)")
	cmd.Flags().StringVar(&in.Reason, "reason", "", "the emergency")
	cmd.Flags().StringVar(&in.Duration, "duration", "", "how long the session lasts (default 1h, at most 4h)")
	return cmd
}

func (a *app) breakglassEndCmd() *cobra.Command {
	return &cobra.Command{
		Use: "end", Short: "End the break-glass session now", Args: argNames(),
		Example: "  keyfleet breakglass end",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				if err := c.EndBreakGlass(ctx); err != nil {
					return err
				}
				a.note("break-glass session ended; sign in again with your key: keyfleet login --user NAME")
				return nil
			})
		},
	}
}

func (a *app) breakglassRotateCmd() *cobra.Command {
	var in api.BreakGlassRotate
	cmd := &cobra.Command{
		Use:   "rotate --holders A,B,C [--threshold N]",
		Short: "Ask for a new break-glass credential, one share per named holder (a second admin approves)",
		Long: `rotate asks for a new break-glass credential split among the named holders,
one share each, of which --threshold open a session. It needs a fresh proof
with your own key, and a different administrator approves it with theirs.
Once approved, the old shares stop working and each holder collects their
own share with 'keyfleet breakglass share' (with their own key): nobody,
the requester included, ever sees another holder's share.`,
		Example: "  keyfleet breakglass rotate --holders alice,bob,carol --threshold 2",
		Args:    argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(in.Holders) == 0 {
				return usagef("--holders is required: the people who will each keep one share")
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var acc api.Accepted
				err := a.withProof(ctx, c, proofOf(actRotate, "", in), func(c *client.Client) error {
					var err error
					acc, err = c.RotateBreakGlass(ctx, in)
					return err
				})
				if err != nil {
					return err
				}
				if err := a.printAccepted(acc); err != nil {
					return err
				}
				a.note("Once it is approved, each holder collects their own share: keyfleet breakglass share --out FILE")
				return nil
			})
		},
	}
	cmd.Flags().StringSliceVar(&in.Holders, "holders", nil, "the people who each keep one share (usernames, comma-separated)")
	cmd.Flags().IntVar(&in.Threshold, "threshold", 0, "how many shares open a session (default: a majority)")
	return cmd
}

func (a *app) breakglassShareCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "share [--out FILE]",
		Short: "Collect your own share of the break-glass credential (once, with your key)",
		Long: `share gives you your own share of the current break-glass credential, after
a fresh proof with your own key. keyfleetd gives each holder's share once,
to that holder only. With --out it goes only to FILE (created with mode
0600; an existing file is never overwritten), in the format 'keyfleet
breakglass use --share FILE' reads; without it, it is printed once on
standard output. Keep it offline, apart from the other holders' shares.`,
		Example: "  keyfleet breakglass share --out /media/usb/keyfleet-share.txt",
		Args:    argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var sh api.BreakGlassShare
				err := a.withProof(ctx, c, proofOf(actShare, "", nil), func(c *client.Client) error {
					var err error
					sh, err = c.CollectBreakGlassShare(ctx)
					return err
				})
				if err != nil {
					return err
				}
				return a.printShare(sh, out)
			})
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "write the share to this new file (mode 0600) instead of printing it")
	return cmd
}

// printShare writes a collected share to a new private file, or prints it
// once.
func (a *app) printShare(sh api.BreakGlassShare, out string) error {
	if out != "" {
		if err := sharefile.WriteOne(out, sh.SetID, sh.Threshold, sh.Share); err != nil {
			return fail(fmt.Errorf("your share of set %s was collected but could not be saved: %w", sh.SetID, err),
				"it is not given twice: ask an administrator to rotate the credential again ('keyfleet breakglass rotate')")
		}
		fmt.Fprintf(a.stdout, "Your break-glass share (set %s; any %d shares open a session) is in %s (mode 0600). Keep it offline.\n", sh.SetID, sh.Threshold, out)
		return nil
	}
	a.note("warning: this is the only time your share of break-glass set %s is shown; store it offline now", sh.SetID)
	return a.emit(sh, func() error {
		_, err := fmt.Fprintln(a.stdout, sh.Share)
		return err
	})
}

// useBreakGlass opens the session without a token and saves its token as
// the CLI's login.
func (a *app) useBreakGlass(cmd *cobra.Command, in api.BreakGlassUse, server, caFile string) error {
	c, cfg, err := a.anonClient(server, caFile)
	if err != nil {
		return err
	}
	sess, err := c.UseBreakGlass(cmd.Context(), in)
	if err != nil {
		return err
	}
	cfg.Server, cfg.Token = c.Server(), sess.Token
	path, err := a.saveConfig(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "BREAK-GLASS SESSION OPEN until %s.\nEvery action is audited as break-glass and acts without a second approver.\n", when(sess.ExpiresAt))
	fmt.Fprintf(a.stdout, "Its token is saved in %s; 'keyfleet breakglass end' ends it. Rotate the credential afterwards: 'keyfleet breakglass rotate'.\n", path)
	return nil
}
