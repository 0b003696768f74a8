package core

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/policy"
)

// bulkChunk is how many users bulk evaluation reads per snapshot and
// writes per transaction: memory stays flat however many users there are.
const bulkChunk = 1000

// chunk is one page of users read from one snapshot.
type chunk struct {
	version int
	doc     *policy.Document
	subs    []PolicySubject
	err     error
}

// eachChunk calls fn with every user, a chunk at a time, each chunk read
// from one snapshot with the policy current in it. The next chunk is read
// while fn works on this one: decoding records and evaluating them are
// about equal halves of the work.
func (s *Service) eachChunk(ctx context.Context, fn func(version int, doc *policy.Document, subs []PolicySubject) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan chunk, 1)
	go s.readChunks(ctx, chunks)
	for c := range chunks {
		if c.err != nil {
			return c.err
		}
		if err := fn(c.version, c.doc, c.subs); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// readChunks sends every chunk, then closes out; it stops early when ctx
// is done or a read fails (the failure is the last chunk sent).
func (s *Service) readChunks(ctx context.Context, out chan<- chunk) {
	defer close(out)
	after := ""
	for {
		var c chunk
		var next string
		c.err = s.store.View(ctx, func(tx ReadTx) error {
			var err error
			if c.version, c.doc, err = s.currentPolicy(tx); err != nil {
				return err
			}
			c.subs, next, err = tx.PolicySubjects(PageReq{After: after, Limit: bulkChunk})
			return err
		})
		select {
		case out <- c:
		case <-ctx.Done():
			return
		}
		if c.err != nil || next == "" {
			return
		}
		after = next
	}
}

// evaluateAll evaluates a chunk on every CPU: policy.Evaluate is pure and
// the service's kinds are read-only.
func (s *Service) evaluateAll(doc *policy.Document, subs []PolicySubject, now time.Time) []policy.Decision {
	out := make([]policy.Decision, len(subs))
	workers := min(runtime.GOMAXPROCS(0), max(len(subs)/64, 1))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(subs); i += workers {
				out[i] = s.evaluate(doc, subs[i], now)
			}
		}()
	}
	wg.Wait()
	return out
}

// reevaluateAll evaluates every user against the current policy and
// records the rules that apply to each for the first time, with an audit
// event per user whose deadline started.
func (s *Service) reevaluateAll(ctx context.Context) (api.Reevaluation, error) {
	var out api.Reevaluation
	now := s.now()
	err := s.eachChunk(ctx, func(version int, doc *policy.Document, subs []PolicySubject) error {
		var started []evaluation
		for i, d := range s.evaluateAll(doc, subs, now) {
			sub := subs[i]
			out.Users++
			switch d.Status {
			case policy.StatusGrace:
				out.Grace++
			case policy.StatusNonCompliant:
				out.NonCompliant++
			}
			if len(d.NewlyApplied) > 0 {
				started = append(started, evaluation{version: version, subject: sub, decision: d})
			}
		}
		if len(started) == 0 {
			return nil
		}
		out.Started += len(started)
		return s.store.Update(ctx, func(tx Tx) error {
			for _, e := range started {
				if err := s.recordFirstApplied(ctx, tx, e.subject.User, e.version, e.decision); err != nil {
					return err
				}
			}
			return nil
		})
	})
	return out, err
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
	var before, after policy.Tally
	now := s.now()
	err = s.eachChunk(ctx, func(_ int, cur *policy.Document, subs []PolicySubject) error {
		for _, sub := range subs {
			pu, pf, ex := policyUser(sub.User), s.policyFactors(sub.Factors), policyExemptions(sub.Exemptions)
			d0 := policy.Evaluate(cur, pu, pf, sub.FirstApplied, ex, now)
			d1 := policy.Evaluate(doc, pu, pf, sub.FirstApplied, ex, now)
			before.Add(pu, pf, d0)
			after.Add(pu, pf, d1)
			out.Users++
			if d0.Status != d1.Status {
				noteChange(&out, sub.User, d0, d1)
			}
		}
		return nil
	})
	out.Before, out.After = apiCounts(before.Compliance().Counts), apiCounts(after.Compliance().Counts)
	return out, err
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
	now := s.now()
	out := api.ComplianceReport{GeneratedAt: now, Group: group, NearDays: int(near.Hours() / 24),
		NonCompliant: []api.ReportUser{}, NearDeadline: []api.ReportUser{}}
	var t policy.Tally
	err := s.eachChunk(ctx, func(version int, doc *policy.Document, subs []PolicySubject) error {
		out.PolicyVersion = version
		for _, sub := range subs {
			if group != "" && !slices.Contains(sub.User.Groups, group) {
				continue
			}
			pu, pf := policyUser(sub.User), s.policyFactors(sub.Factors)
			d := policy.Evaluate(doc, pu, pf, sub.FirstApplied, policyExemptions(sub.Exemptions), now)
			t.Add(pu, pf, d)
			listUser(&out, sub.User, d, now.Add(near))
		}
		return nil
	})
	c := t.Compliance()
	out.Overall, out.KindsInUse, out.PrivilegedShort = apiCounts(c.Counts), c.KindsInUse, c.PrivilegedShort
	out.ByGroup, out.ByRole = apiCountsMap(c.ByGroup), apiCountsMap(c.ByRole)
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
func noteChange(out *api.PolicyDryRun, u User, d0, d1 policy.Decision) {
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
func listUser(out *api.ComplianceReport, u User, d policy.Decision, nearBy time.Time) {
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
