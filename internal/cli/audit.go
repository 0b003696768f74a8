package cli

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/checkpoint"
	"github.com/spf13/cobra"
)

func (a *app) auditCmd() *cobra.Command {
	cmd := group("audit", "Read, follow, verify and export the hash-chained audit log",
		"  keyfleet audit list --action factor.revoke\n  keyfleet audit tail\n  keyfleet audit verify")
	cmd.AddCommand(a.auditListCmd(), a.auditTailCmd(), a.auditVerifyCmd(), a.auditHeadCmd(), a.auditExportCmd())
	return cmd
}

var auditHeader = []string{"SEQ", "TIME", "ACTOR", "ACTION", "TARGET", "APPROVER", "REASON"}

func auditRow(e api.AuditEvent) []string {
	approver := "-"
	if e.Approver != nil {
		approver = actorName(*e.Approver)
	}
	return []string{strconv.FormatUint(e.Seq, 10), when(e.Time), actorName(e.Actor), e.Action,
		e.Target.Type + " " + firstOf(e.Target.Name, e.Target.ID), approver, dash(e.Reason)}
}

func (a *app) auditListCmd() *cobra.Command {
	var (
		f client.AuditFilter
		o listOpts
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List audit events in sequence order",
		Example: `  keyfleet audit list --limit 20
  keyfleet audit list --after 1200 --action user.disable -o json`,
		Args: argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.cursor = strconv.FormatUint(f.After, 10)
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				items, next, err := collect(ctx, o, func(ctx context.Context, cur string, n int) (api.Page[api.AuditEvent], error) {
					after, err := strconv.ParseUint(cur, 10, 64)
					if err != nil {
						return api.Page[api.AuditEvent]{}, fmt.Errorf("keyfleetd sent a bad audit cursor %q", cur)
					}
					f.After, f.Limit = after, n
					return c.ListAudit(ctx, f)
				})
				if err != nil {
					return err
				}
				return a.printAudit(items, next)
			})
		},
	}
	cmd.Flags().Uint64Var(&f.After, "after", 0, "only events after this sequence number")
	cmd.Flags().StringVar(&f.Target, "target", "", "only events about this target id")
	cmd.Flags().StringVar(&f.Actor, "actor", "", "only events by this actor id")
	cmd.Flags().StringVar(&f.Action, "action", "", "only this action, e.g. factor.revoke")
	cmd.Flags().IntVar(&o.limit, "limit", 100, "show at most this many")
	cmd.Flags().BoolVar(&o.all, "all", false, "show everything, however long")
	return cmd
}

func (a *app) printAudit(items []api.AuditEvent, next string) error {
	err := a.emit(items, func() error {
		rows := make([][]string, len(items))
		for i, e := range items {
			rows[i] = auditRow(e)
		}
		return a.rows(auditHeader, rows)
	})
	if err == nil && next != "" {
		a.note("note: more events remain; add --after %s to see the next ones, or --all", next)
	}
	return err
}

// printEventLine prints one event on one line: NDJSON with -o json.
func (a *app) printEventLine(e api.AuditEvent) error {
	if a.jsonOutput() {
		b, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encoding event %d: %w", e.Seq, err)
		}
		_, err = fmt.Fprintf(a.stdout, "%s\n", b)
		return err
	}
	r := auditRow(e)
	_, err := fmt.Fprintf(a.stdout, "%-6s %s  %-16s %-20s %-24s %s\n", r[0], r[1], r[2], r[3], r[4], r[6])
	return err
}

func (a *app) auditVerifyCmd() *cobra.Command {
	var cpFile, exportFile, key string
	var full bool
	cmd := &cobra.Command{
		Use:   "verify [--full] [--checkpoint FILE --export FILE]",
		Short: "Have keyfleetd check the audit hash chain, or check an export offline; exit 7 if it is broken",
		Long: `verify asks keyfleetd to check the audit log against the newest signed audit
checkpoint: the record at the checkpoint's sequence number must carry the
hash it signed, and every record after it its hash and its link to the one
before. That costs the events since the checkpoint (keyfleetd signs one every
1,000 events or minute), whatever the log's length. With --full keyfleetd
checks every record's hash and link from the first one, which takes about a
second per million events, and compares the log with the checkpoint too. It
exits 0 if the chain is intact and 7 if it is broken, naming the first record
that does not link.

With --checkpoint it needs no keyfleetd: it checks an export (keyfleet audit
export, --export FILE or - for standard input) against a signed checkpoint
(the checkpoint file, a witness's copy, or an audit.checkpoint event's
fields as JSON): the checkpoint's signature, every record's hash from its
content, every link, and that the export passes through the checkpoint's
sequence number with its hash. Pin the signing key with --key (it is in
every audit.checkpoint event); without it, the key the checkpoint names is
used and printed.`,
		Example: "  keyfleet audit verify\n  keyfleet audit verify --full -o json || alert-security-team\n" +
			"  keyfleet audit export --out audit.jsonl && keyfleet audit verify --checkpoint /var/lib/keyfleet.checkpoint --export audit.jsonl",
		Args: argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cpFile != "" || exportFile != "" {
				if cpFile == "" || exportFile == "" {
					return usagef("--checkpoint and --export go together: the checkpoint to check against and the export to check")
				}
				return a.verifyOffline(cpFile, exportFile, key)
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				v, err := c.VerifyAudit(ctx, full)
				if err != nil {
					return err
				}
				return a.printVerification(v)
			})
		},
	}
	cmd.Flags().BoolVar(&full, "full", false, "check every record from the first, not from the newest signed checkpoint")
	cmd.Flags().StringVar(&cpFile, "checkpoint", "", "a signed audit checkpoint (JSON) to check --export against, offline")
	cmd.Flags().StringVar(&exportFile, "export", "", "an audit export (JSON lines) to check, - for standard input")
	cmd.Flags().StringVar(&key, "key", "", "the checkpoint signing key to require (base64 Ed25519 public key)")
	return cmd
}

// verifyOffline checks an export against a checkpoint without keyfleetd.
func (a *app) verifyOffline(cpFile, exportFile, key string) error {
	b, err := os.ReadFile(cpFile)
	if err != nil {
		return fail(err, "give the checkpoint file keyfleetd writes (audit.checkpoint.file) or a copy of it")
	}
	c, err := checkpoint.Parse(b)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", cpFile, err), "give the checkpoint file keyfleetd writes (audit.checkpoint.file) or a copy of it")
	}
	var pub ed25519.PublicKey
	if key != "" {
		if pub, err = base64.StdEncoding.DecodeString(key); err != nil || len(pub) != ed25519.PublicKeySize {
			return usagef("--key %q is not a base64 Ed25519 public key", key)
		}
	}
	if err := c.Verify(pub); err != nil {
		return &cliError{code: ExitAuditBroken, err: fmt.Errorf("%s: %w", cpFile, err), hint: "the checkpoint was altered or signed by another key: do not trust it"}
	}
	in := a.stdin
	if exportFile != "-" {
		f, err := os.Open(exportFile)
		if err != nil {
			return fail(err, "give a file written by keyfleet audit export")
		}
		defer f.Close()
		in = f
	}
	rep, err := checkpoint.VerifyExport(in, c)
	return a.printOffline(c, key != "", rep, err)
}

func (a *app) printOffline(c checkpoint.Checkpoint, pinned bool, rep checkpoint.ExportReport, err error) error {
	var be *audit.BreakError
	switch {
	case errors.As(err, &be):
		return &cliError{code: ExitAuditBroken, err: fmt.Errorf("the export is broken at seq %d: %s", be.Seq, be.Reason),
			hint: "the export was altered, or the log it came from was"}
	case errors.Is(err, checkpoint.ErrMismatch):
		return &cliError{code: ExitAuditBroken, err: err, hint: "the log this export came from is not the one the checkpoint was signed over"}
	case err != nil:
		return fail(err, "check the export and the checkpoint files")
	}
	out := struct {
		OK         bool                  `json:"ok"`
		Checkpoint checkpoint.Checkpoint `json:"checkpoint"`
		Report     checkpoint.ExportReport
	}{true, c, rep}
	return a.emit(out, func() error {
		fmt.Fprintf(a.stdout, "Export intact: %d events checked (seq %d to %d); it passes through the checkpoint at seq %d signed %s, with %d events after it.\n",
			rep.Checked, rep.First, rep.Last, c.Seq, c.Time.UTC().Format(time.RFC3339), rep.Beyond)
		if !pinned {
			fmt.Fprintf(a.stdout, "Signed by key %s (pass --key to require it).\n", c.Key)
		}
		return nil
	})
}

func (a *app) auditHeadCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "head",
		Short: "Print the last audit event's sequence number and chain hash",
		Long: `head prints where the audit chain ends now. Record it somewhere keyfleet
cannot write (a ticket, a notebook, another system): a later chain that does
not pass through this hash at this sequence number was rewritten.`,
		Example: "  keyfleet audit head\n  keyfleet audit head -o json >> audit-heads.jsonl",
		Args:    argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				h, err := c.AuditHead(ctx)
				if err != nil {
					return err
				}
				return a.emit(h, func() error {
					_, err := fmt.Fprintf(a.stdout, "seq %d  hash %s\n", h.Seq, dash(h.Hash))
					return err
				})
			})
		},
	}
}

// events says n events, or one event.
func events(n uint64) string {
	if n == 1 {
		return "1 event"
	}
	return fmt.Sprintf("%d events", n)
}

func (a *app) printVerification(v api.AuditVerification) error {
	cp := v.Checkpoint
	err := a.emit(v, func() error {
		switch {
		case v.OK && v.Full:
			fmt.Fprintf(a.stdout, "Audit chain intact: %s checked from the first; head seq %d, hash %s.\n", events(v.Checked), v.HeadSeq, dash(v.HeadHash))
		case v.OK:
			fmt.Fprintf(a.stdout, "Audit chain intact from the newest signed checkpoint: %s checked after seq %d; head seq %d, hash %s.\n",
				events(v.Checked), v.FromSeq, v.HeadSeq, dash(v.HeadHash))
		}
		if cp != nil && cp.OK {
			fmt.Fprintf(a.stdout, "It passes through the newest signed checkpoint: seq %d, signed %s (%s).\n", cp.Seq, when(cp.Time), dash(cp.Source))
		}
		if v.OK && !v.Full {
			fmt.Fprintf(a.stdout, "What comes up to it (%s) is sealed by its signature; keyfleet audit verify --full checks each event too.\n", events(v.FromSeq))
		}
		return nil
	})
	if err != nil || v.OK {
		return err
	}
	if v.BrokenAt == 0 && cp != nil && !cp.OK {
		return &cliError{code: ExitAuditBroken, err: fmt.Errorf("audit log does not match its newest signed checkpoint: %s", cp.Problem),
			hint: "restore the newest backup of the store, or accept the loss on the keyfleetd host (keyfleetd recover --accept-loss)"}
	}
	return &cliError{code: ExitAuditBroken,
		err:  fmt.Errorf("audit chain broken at seq %d: %s (%d events checked)", v.BrokenAt, dash(v.Problem), v.Checked),
		hint: "events from there on cannot be trusted; keep a copy of keyfleetd's data folder untouched and investigate"}
}

func (a *app) auditExportCmd() *cobra.Command {
	var (
		after uint64
		out   string
	)
	cmd := &cobra.Command{
		Use:   "export [--after SEQ] [--out FILE]",
		Short: "Write the audit log as JSON lines, one event per line",
		Example: `  keyfleet audit export --out audit-2024.jsonl
  keyfleet audit export --after 5000 | gzip > audit-since-5000.jsonl.gz`,
		Args: argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				if out == "" {
					return c.ExportAudit(ctx, after, a.stdout)
				}
				return a.exportToFile(ctx, c, after, out)
			})
		},
	}
	cmd.Flags().Uint64Var(&after, "after", 0, "only events after this sequence number")
	cmd.Flags().StringVar(&out, "out", "", "write to this new file (mode 0600) instead of standard output")
	return cmd
}

func (a *app) exportToFile(ctx context.Context, c *client.Client, after uint64, out string) error {
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fail(fmt.Errorf("creating %s: %w", out, err), "choose a new file with --out")
	}
	err = c.ExportAudit(ctx, after, f)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fail(fmt.Errorf("writing %s: %w", out, cerr), "check the disk and try again")
	}
	if err != nil {
		os.Remove(out)
		return err
	}
	a.note("Audit events written to %s.", out)
	return nil
}

func (a *app) auditTailCmd() *cobra.Command {
	var o tailOpts
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Print the latest audit events, then new ones as they happen",
		Long: `tail prints the last --lines events, then asks keyfleetd for new ones every
--interval until interrupted (Ctrl-C). With -o json it prints one JSON
object per line. If keyfleetd goes away, tail warns and keeps trying.`,
		Example: "  keyfleet audit tail\n  keyfleet audit tail --after 0 --interval 5s -o json | jq -c 'select(.action==\"factor.revoke\")'",
		Args:    argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.interval <= 0 {
				return usagef("--interval must be positive")
			}
			o.fromHead = !cmd.Flags().Changed("after")
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				return a.tail(ctx, c, o)
			})
		},
	}
	cmd.Flags().DurationVar(&o.interval, "interval", time.Second, "how often to ask for new events")
	cmd.Flags().Uint64Var(&o.after, "after", 0, "start after this sequence number instead of the last --lines events")
	cmd.Flags().IntVar(&o.lines, "lines", 10, "how many past events to print first")
	return cmd
}
