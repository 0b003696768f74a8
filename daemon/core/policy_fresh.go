package core

import (
	"encoding/binary"
	"slices"
	"time"

	"github.com/keyfleet/keyfleet/policy"
)

// batchPolicy is a policy version and its document, read once for a
// batch of new users, and what it decided for the kinds of new user seen
// so far.
type batchPolicy struct {
	n   int
	doc *policy.Document
	// fresh holds a decision for each kind of new user (freshKey).
	fresh map[string]freshDecision
}

// freshDecision is the part of a new user's decision that starts their
// rules (startRules), with the deadline as a distance from the time of
// the evaluation.
type freshDecision struct {
	status   policy.Status
	deadline bool          // the decision has one
	within   time.Duration // the deadline less the time of the evaluation
	rules    []string      // the rules newly applied, sorted
}

// newUser decides for a user just created (no factor, no exemption, no
// rule applied yet) at now. The policy decides such users by their kind,
// groups and roles alone (policy.Match), and from now alone: every rule
// starts at now, so each deadline is now plus a rule's enroll_within, and
// the status compares now with it. Users alike (freshKey) therefore get
// the same decision moved by the time between them, and only the first
// of them is evaluated. The Decision holds Status, Deadline and
// NewlyApplied, which is what rulesStarted records; the rest (reasons, next
// steps) is left empty. started names the rules in NewlyApplied, sorted:
// shared by the users alike, it is not to be changed.
func (bp *batchPolicy) newUser(s *Service, u UserFacts, now time.Time) (d policy.Decision, started []string) {
	k := freshKey(u)
	f, ok := bp.fresh[k]
	if !ok {
		d := s.decideFacts(bp.doc, PolicyFacts{User: u}, "", now)
		f = freshDecision{status: d.Status, deadline: !d.Deadline.IsZero(), within: d.Deadline.Sub(now)}
		for r := range d.NewlyApplied {
			f.rules = append(f.rules, r)
		}
		slices.Sort(f.rules)
		if bp.fresh == nil {
			bp.fresh = map[string]freshDecision{}
		}
		bp.fresh[k] = f
	}
	d = policy.Decision{Status: f.status}
	if f.deadline {
		d.Deadline = now.Add(f.within)
	}
	if len(f.rules) > 0 {
		d.NewlyApplied = make(map[string]time.Time, len(f.rules))
		for _, r := range f.rules {
			d.NewlyApplied[r] = now
		}
	}
	return d, f.rules
}

// freshKey is what the policy tells new users apart by: kind, groups and
// roles, each name preceded by its length.
func freshKey(u UserFacts) string {
	b := make([]byte, 0, 64)
	add := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	add(u.Kind)
	b = binary.AppendUvarint(b, uint64(len(u.Groups)))
	for _, g := range u.Groups {
		add(g)
	}
	b = binary.AppendUvarint(b, uint64(len(u.Roles)))
	for _, r := range u.Roles {
		add(r)
	}
	return string(b)
}
