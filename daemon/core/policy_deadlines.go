package core

import (
	"context"
	"maps"
	"time"

	"github.com/keyfleet/keyfleet/policy"
)

// deadlineNoted is the entry of a user's first-applied map that remembers
// the last enrolment deadline whose passing was audited. It cannot be a
// rule name (rule names start with a letter or digit), so policy.Evaluate
// never reads it; it travels with the rules' own times, in the same record
// and the same policy facts.
const deadlineNoted = "!deadline_passed"

// SweepDeadlines audits, once per deadline, every user whose enrolment
// deadline has passed while they are still short of the policy: a
// policy.deadline_passed event with the deadline, the rules and the
// reasons. keyfleetd does it every five minutes with its compliance
// gauges (ComplianceSweep); it returns how many users it recorded. Users
// are found in one snapshot and each is evaluated again inside the write
// that records them, so a user who enrolled meanwhile is left alone.
func (s *Service) SweepDeadlines(ctx context.Context) (int, error) {
	_, n, err := s.ComplianceSweep(ctx, 0)
	return n, err
}

// recordDeadlines audits the passed deadlines of the users in due, each
// evaluated again inside the write, a chunk of users per transaction.
func (s *Service) recordDeadlines(ctx context.Context, due []string) (int, error) {
	recorded := 0
	for len(due) > 0 {
		chunk := due[:min(len(due), bulkChunk)]
		due = due[len(chunk):]
		n := 0
		err := s.store.Update(ctx, func(tx Tx) error {
			n = 0
			for _, id := range chunk {
				ok, err := s.noteDeadline(ctx, tx, id)
				if err != nil {
					return err
				}
				n += boolInt(ok)
			}
			return nil
		})
		if err != nil {
			return recorded, err
		}
		recorded += n
	}
	return recorded, nil
}

// deadlinePassed reports whether d is a shortfall past a deadline that was
// not audited yet.
func deadlinePassed(d policy.Decision, firstApplied map[string]time.Time) bool {
	if d.Status != policy.StatusNonCompliant || d.Deadline.IsZero() {
		return false
	}
	noted, ok := firstApplied[deadlineNoted]
	return !ok || !noted.Equal(d.Deadline)
}

// noteDeadline evaluates one user inside tx and, when their deadline
// passed unaudited, audits it and remembers it.
func (s *Service) noteDeadline(ctx context.Context, tx Tx, userID string) (bool, error) {
	version, doc, err := s.currentPolicy(tx)
	if err != nil {
		return false, err
	}
	facts, err := tx.UserPolicyFacts(userID)
	if isNotFound(err) {
		return false, nil // deleted since the snapshot
	}
	if err != nil {
		return false, err
	}
	d := s.decideFacts(doc, facts, "", s.now())
	if !deadlinePassed(d, facts.FirstApplied) {
		return false, nil
	}
	m := maps.Clone(facts.FirstApplied)
	if m == nil {
		m = map[string]time.Time{}
	}
	m[deadlineNoted] = d.Deadline
	if err := tx.PutFirstApplied(userID, m); err != nil {
		return false, err
	}
	u := facts.User
	ev := s.event(ctx, System, "policy.deadline_passed", targetRef{"user", u.ID, u.Username})
	ev.After = map[string]any{"deadline": d.Deadline, "rules": d.Rules, "reasons": reasonTexts(d), "policy_version": version}
	return true, tx.Audit(ev)
}
