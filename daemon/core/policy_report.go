package core

import (
	"context"
	"slices"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/foreground"
	"github.com/keyfleet/keyfleet/policy"
)

// bulkChunk is how many users whose deadlines start are recorded per
// write transaction.
const bulkChunk = 1000

// reevaluateAll evaluates every user against the current policy and
// records the rules that apply to each for the first time, with an audit
// event per user whose deadline started. Users are read from one
// snapshot; the new first-applied times are merged inside each write (see
// recordFirstApplied), so concurrent evaluations are not overwritten.
func (s *Service) reevaluateAll(ctx context.Context) (api.Reevaluation, error) {
	var out api.Reevaluation
	var started []evaluation
	now := s.now()
	record := func() error {
		out.Started += len(started)
		err := s.store.Update(ctx, func(tx Tx) error {
			for _, e := range started {
				if err := s.recordFirstApplied(ctx, tx, e.user, e.version, e.decision); err != nil {
					return err
				}
			}
			return nil
		})
		started = started[:0]
		return err
	}
	err := s.evaluateEveryone(ctx, now, func(version int, subs []bulkSubject) error {
		for i := range subs {
			d := subs[i].d
			out.Users++
			out.Grace += boolInt(d.Status == policy.StatusGrace)
			out.NonCompliant += boolInt(d.Status == policy.StatusNonCompliant)
			if len(d.NewlyApplied) > 0 {
				started = append(started, evaluation{version: version, user: subs[i].facts.User, decision: d})
			}
		}
		if len(started) < bulkChunk {
			return nil
		}
		return record()
	})
	if err == nil && len(started) > 0 {
		err = record()
	}
	return out, err
}

// evaluateEveryone is a bulk pass that evaluates every user against the
// current policy, read in the pass's own snapshot, at now: collect gets
// each batch in id order with the decisions in d, and the policy version.
func (s *Service) evaluateEveryone(ctx context.Context, now time.Time, collect func(version int, subs []bulkSubject) error) error {
	var version int
	var doc *policy.Document
	return s.runBulk(ctx, bulkPass{
		read: s.readStore(nil, func(tx ReadTx) (err error) {
			version, doc, err = s.currentPolicy(tx)
			return err
		}),
		eval: func(_ int, sub *bulkSubject) {
			sub.d = policy.Evaluate(doc, sub.user, sub.factors, sub.facts.FirstApplied, sub.facts.Exemptions, now)
		},
		collect: func(subs []bulkSubject) error { return collect(version, subs) },
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Reevaluate re-evaluates every user against the current policy, as
// applying a policy does, and records deadlines that start.
func (s *Service) Reevaluate(ctx context.Context, p Principal) (api.Reevaluation, error) {
	if err := p.authorize(ApplyPolicy, ""); err != nil {
		return api.Reevaluation{}, err
	}
	return s.reevaluateAll(ctx)
}

// DryRunPolicy says what applying a document would do: the changes
// against the current policy, whether they need a second approver, and
// every user whose status would change and why. It changes nothing, first-
// applied times included.
func (s *Service) DryRunPolicy(ctx context.Context, p Principal, in api.PolicyDocument) (api.PolicyDryRun, error) {
	if err := p.authorize(ApplyPolicy, ""); err != nil {
		return api.PolicyDryRun{}, err
	}
	doc, err := parseDocument(in.Document)
	if err != nil {
		return api.PolicyDryRun{}, err
	}
	out := api.PolicyDryRun{SHA256: hashDocument(in.Document), Transitions: map[string]int{}, ChangedUsers: []api.PolicyUserChange{}}
	err = s.store.View(ctx, func(tx ReadTx) error {
		var cur *policy.Document
		var err error
		if out.BaseVersion, cur, err = s.currentPolicy(tx); err != nil {
			return err
		}
		out.Changes, out.Weakens = apiChanges(policy.Diff(cur, doc)), policy.Weakens(cur, doc)
		return nil
	})
	if err != nil {
		return api.PolicyDryRun{}, err
	}
	before, after, err := s.dryRunUsers(ctx, doc, &out)
	out.Before, out.After = apiCounts(before.Counts), apiCounts(after.Counts)
	return out, err
}

// dryRunUsers evaluates every user against the current document and doc,
// counting both and noting each user whose status changes.
func (s *Service) dryRunUsers(ctx context.Context, doc *policy.Document, out *api.PolicyDryRun) (before, after policy.Compliance, err error) {
	var cur *policy.Document
	var admins adminSignIn
	t0, t1 := newTallies(), newTallies()
	now := s.now()
	err = s.runBulk(ctx, bulkPass{
		read: s.readStore(nil, func(tx ReadTx) (err error) {
			_, cur, err = s.currentPolicy(tx)
			return err
		}),
		eval: func(w int, sub *bulkSubject) {
			sub.d = policy.Evaluate(cur, sub.user, sub.factors, sub.facts.FirstApplied, sub.facts.Exemptions, now)
			sub.d2 = policy.Evaluate(doc, sub.user, sub.factors, sub.facts.FirstApplied, sub.facts.Exemptions, now)
			t0[w].Add(sub.user, sub.factors, sub.d)
			t1[w].Add(sub.user, sub.factors, sub.d2)
		},
		collect: func(subs []bulkSubject) error {
			for i := range subs {
				out.Users++
				if subs[i].d.Status != subs[i].d2.Status {
					noteChange(out, subs[i].facts.User, subs[i].d, subs[i].d2)
				}
				admins.add(cur, doc, subs[i].user, subs[i].factors, subs[i].facts.FirstApplied, now)
			}
			return nil
		},
	})
	out.AdminsSignIn = api.AdminsSignIn{Admins: admins.admins, Before: admins.before, After: admins.now, AfterGrace: admins.last}
	out.Warnings = admins.warnings()
	return t0.merged(), t1.merged(), err
}

func apiCounts(c policy.Counts) api.ComplianceCounts {
	return api.ComplianceCounts{Users: c.Users, WithFactor: c.WithFactor, Adoption: c.Adoption, Compliant: c.Compliant,
		Grace: c.Grace, NonCompliant: c.NonCompliant, Exempt: c.Exempt, StaleFactors: c.StaleFactors,
		VulnerableFactors: c.VulnerableFactors}
}

func reasonTexts(d policy.Decision) []string {
	out := make([]string, 0, len(d.Reasons))
	for _, r := range d.Reasons {
		out = append(out, r.Message)
	}
	return out
}

// ComplianceReport evaluates every user (or a group's members) against
// the current policy: adoption and status counts overall, by group and by
// role, factor kinds in use, stale and vulnerable factors, and the users
// past or within near of their deadline. It records nothing.
func (s *Service) ComplianceReport(ctx context.Context, p Principal, group string, near time.Duration) (api.ComplianceReport, error) {
	if err := p.authorize(ReadReports, ""); err != nil {
		return api.ComplianceReport{}, err
	}
	return s.complianceReport(ctx, group, near, false, nil)
}

// ComplianceSweep is keyfleetd's periodic pass: the compliance report of
// everyone (for the gauges) and, from the same evaluation, the audit of
// enrolment deadlines that passed (as SweepDeadlines does). It returns
// the report (zero when the evaluation failed) and how many deadlines it
// recorded. Between batches of users it gives way to the requests being
// served (Config.Foreground).
func (s *Service) ComplianceSweep(ctx context.Context, near time.Duration) (api.ComplianceReport, int, error) {
	var due []string
	out, err := s.complianceReport(ctx, "", near, true, func(sub *bulkSubject) {
		if deadlinePassed(sub.d, sub.facts.FirstApplied) {
			due = append(due, sub.facts.User.ID)
		}
	})
	if err != nil {
		return api.ComplianceReport{}, 0, err
	}
	n, err := s.recordDeadlines(ctx, due)
	return out, n, err
}

// complianceReport is ComplianceReport without the permission check;
// each, if not nil, sees every user's decision, in id order. A background
// report (the periodic sweep) gives way to the requests in flight.
func (s *Service) complianceReport(ctx context.Context, group string, near time.Duration, background bool, each func(*bulkSubject)) (api.ComplianceReport, error) {
	now := s.now()
	out := api.ComplianceReport{GeneratedAt: now, Group: group, NearDays: int(near.Hours() / 24),
		NonCompliant: []api.ReportUser{}, NearDeadline: []api.ReportUser{}}
	ts := newTallies()
	var doc *policy.Document
	var fg *foreground.Gate // a report asked for never waits
	if background {
		fg = s.cfg.Foreground
	}
	err := s.runBulk(ctx, bulkPass{
		read: s.readStore(fg, func(tx ReadTx) (err error) {
			out.PolicyVersion, doc, err = s.currentPolicy(tx)
			return err
		}),
		eval: func(w int, sub *bulkSubject) {
			if sub.skip = group != "" && !slices.Contains(sub.user.Groups, group); sub.skip {
				return
			}
			sub.d = policy.Evaluate(doc, sub.user, sub.factors, sub.facts.FirstApplied, sub.facts.Exemptions, now)
			ts[w].Add(sub.user, sub.factors, sub.d)
		},
		collect: func(subs []bulkSubject) error {
			for i := range subs {
				if !subs[i].skip {
					listUser(&out, subs[i].facts.User, subs[i].d, now.Add(near))
					if each != nil {
						each(&subs[i])
					}
				}
			}
			return nil
		},
	})
	if err == nil {
		err = s.recoveryReport(ctx, &out)
	}
	if err == nil {
		out.ServiceTokensWithoutExpiry, err = s.EverlastingServiceTokens(ctx, System)
	}
	if err == nil {
		out.IgnoredPushes, err = s.ignoredPushes(ctx, group)
	}
	c := ts.merged()
	out.Overall, out.KindsInUse, out.PrivilegedShort = apiCounts(c.Counts), c.KindsInUse, c.PrivilegedShort
	out.ByGroup, out.ByRole = apiCountsMap(c.ByGroup), apiCountsMap(c.ByRole)
	return out, err
}

// ignoredPushes lists the active out-of-band factors (of group's
// members, when group is set) whose last api.IgnoredPushesThreshold or
// more prompts ran out unanswered.
func (s *Service) ignoredPushes(ctx context.Context, group string) ([]api.IgnoredPushes, error) {
	out := []api.IgnoredPushes{}
	err := s.store.View(ctx, func(tx ReadTx) error {
		for _, kind := range s.OutOfBandKinds() {
			err := forEach(tx.Factors, FactorFilter{Kind: kind, State: api.FactorActive}, func(f Factor) error {
				if f.Unanswered < api.IgnoredPushesThreshold || len(out) >= api.MaxListedUsers {
					return nil
				}
				u, err := tx.User(f.UserID)
				if err != nil || (group != "" && !slices.Contains(u.Groups, group)) {
					return err
				}
				out = append(out, api.IgnoredPushes{UserID: u.ID, Username: u.Username, FactorID: f.ID, Label: f.Label,
					Unanswered: f.Unanswered, LastUnansweredAt: f.LastUnansweredAt})
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

func apiCountsMap(m map[string]policy.Counts) map[string]api.ComplianceCounts {
	out := make(map[string]api.ComplianceCounts, len(m))
	for k, c := range m {
		out[k] = apiCounts(c)
	}
	return out
}

// noteChange counts a user whose status a dry run changes, and lists them
// while there is room.
func noteChange(out *api.PolicyDryRun, u UserFacts, d0, d1 policy.Decision) {
	out.Changed++
	out.Transitions[string(d0.Status)+"->"+string(d1.Status)]++
	if len(out.ChangedUsers) >= api.MaxListedUsers {
		out.Truncated = true
		return
	}
	out.ChangedUsers = append(out.ChangedUsers, api.PolicyUserChange{UserID: u.ID, Username: u.Username,
		From: string(d0.Status), To: string(d1.Status), Deadline: timePtr(d1.Deadline), Reasons: reasonTexts(d1)})
}

// listUser adds a non-compliant user, or one in grace whose deadline is
// before nearBy, to the report's lists.
func listUser(out *api.ComplianceReport, u UserFacts, d policy.Decision, nearBy time.Time) {
	var l *[]api.ReportUser
	switch {
	case d.Status == policy.StatusNonCompliant:
		l = &out.NonCompliant
	case d.Status == policy.StatusGrace && d.GraceUntil.Before(nearBy):
		l = &out.NearDeadline
	default:
		return
	}
	if len(*l) >= api.MaxListedUsers {
		out.Truncated = true
		return
	}
	*l = append(*l, api.ReportUser{UserID: u.ID, Username: u.Username, Status: string(d.Status),
		Deadline: timePtr(d.Deadline), Reasons: reasonTexts(d)})
}

// recoveryReport adds recovery-code counts and the break-glass state.
func (s *Service) recoveryReport(ctx context.Context, out *api.ComplianceReport) error {
	return s.store.View(ctx, func(tx ReadTx) error {
		err := tx.EachRecoveryCodes(func(rc RecoveryCodes) error {
			n := rc.Remaining()
			out.RecoveryCodes.UnusedTotal += n
			switch {
			case n == 0:
				out.RecoveryCodes.AllUsed++
			case n <= 2:
				out.RecoveryCodes.Low++
				out.RecoveryCodes.WithCodes++
			default:
				out.RecoveryCodes.WithCodes++
			}
			return nil
		})
		if err != nil {
			return err
		}
		bg, err := tx.BreakGlass()
		if isNotFound(err) {
			return nil
		}
		out.BreakGlass = &api.BreakGlassStatus{SetID: bg.SetID, Shares: bg.Shares, Threshold: bg.Threshold,
			CreatedAt: bg.CreatedAt, UsedAt: bg.UsedAt, NeedsRotation: bg.UsedAt != nil}
		return err
	})
}
