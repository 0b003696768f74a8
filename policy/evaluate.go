package policy

import (
	"slices"
	"time"
)

// Evaluate decides whether a user complies with the document at now.
//
// firstApplied maps rule names to when each rule first applied to the
// user (the daemon's record; nil is fine). Rules applying for the first
// time are reported in Decision.NewlyApplied at now; the daemon must
// persist them, or deadlines never start. exemptions may hold any user's
// exemptions; only the user's unexpired ones count.
//
// The combination of every matching rule must be met (see combine). When
// it is not, the deadline is the earliest of the deadlines
// (first applied + enroll_within) of the rules the user fails on their
// own, or of every matching rule when each is met alone but their
// combination is not. Before the deadline the user is in grace; from it
// on, non-compliant. Evaluate never fails: a nil document applies only the
// built-in rules.
func Evaluate(doc *Document, u User, factors []Factor, firstApplied map[string]time.Time, exemptions []Exemption, now time.Time) Decision {
	if doc == nil {
		doc = &Document{Version: SchemaVersion}
	}
	e := newEvaluation(doc, u, firstApplied, now)
	d := Decision{Status: StatusCompliant, Rules: e.ruleNames(), NewlyApplied: e.newly}
	e.analyse(factors, &d)
	if len(e.rules) == 0 {
		d.Reasons = append(d.Reasons, Reason{Code: CodeNotRequired,
			Message: "no rule of the policy applies to " + who(u) + "; MFA is not required"})
		return d
	}
	kinds, later, from := VerificationKinds(e.doc, u, firstApplied, now)
	d.AcceptableKinds = kinds
	d.Reasons = append(d.Reasons, e.conflictReasons()...)
	if x, ok := activeExemption(u, exemptions, now); ok {
		d.ExemptUntil = x.Until
		d.Reasons = append([]Reason{{Code: CodeExempt, Message: who(u) + " is exempt from the policy until " +
			formatTime(x.Until) + ": " + x.Reason}}, d.Reasons...)
		return d
	}
	if e.met(&d) {
		d.NextSteps = e.factorSteps(&d)
	} else {
		e.decideShortfall(&d)
	}
	if step := narrowingStep(kinds, later, from); step != "" && !holdsKind(factors, later) {
		d.NextSteps = append(d.NextSteps, step)
	}
	return d
}

// evaluation holds what Evaluate works out once per user.
type evaluation struct {
	doc       *Document
	u         User
	now       time.Time
	rules     []*Rule
	applied   []time.Time // when each of rules first applied
	newly     map[string]time.Time
	req       Requirements // every rule combined
	conflicts []string
	docMin    int // min_factors over the document's rules (not built-in)
	docHW     int // min_hardware_factors over the document's rules
	facts     []facts
}

func newEvaluation(doc *Document, u User, firstApplied map[string]time.Time, now time.Time) *evaluation {
	e := &evaluation{doc: doc, u: u, now: now, rules: doc.matching(u)}
	e.applied = make([]time.Time, len(e.rules))
	for i, r := range e.rules {
		t, ok := firstApplied[r.Name]
		if !ok || t.IsZero() {
			if e.newly == nil {
				e.newly = make(map[string]time.Time)
			}
			t, e.newly[r.Name] = now, now
		}
		e.applied[i] = t
		if r.Name != BuiltinPrivileged {
			e.docMin = max(e.docMin, r.Require.MinFactors)
			e.docHW = max(e.docHW, r.Require.MinHardwareFactors)
		}
	}
	e.req, e.conflicts = combine(e.rules)
	return e
}

func (e *evaluation) ruleNames() []string {
	if len(e.rules) == 0 {
		return nil
	}
	names := make([]string, len(e.rules))
	for i, r := range e.rules {
		names[i] = r.Name
	}
	slices.Sort(names)
	return names
}

// analyse looks at every factor once: vulnerable, stale, refused by a
// requirement, or counted.
func (e *evaluation) analyse(factors []Factor, d *Decision) {
	e.facts = make([]facts, 0, len(factors))
	for _, f := range factors {
		if f.State == FactorRevoked {
			continue
		}
		e.facts = append(e.facts, factFor(f))
		fc := &e.facts[len(e.facts)-1]
		if len(fc.advisories) > 0 {
			d.Vulnerable = append(d.Vulnerable, f.ID)
		}
		if f.State != FactorActive {
			continue
		}
		problems := fc.check(&e.req, false)
		d.Reasons = append(d.Reasons, problems...)
		d.Reasons = append(d.Reasons, e.advisoryNotices(fc)...)
		if fc.stale(&e.req, e.now) {
			d.Stale = append(d.Stale, f.ID)
			d.Reasons = append(d.Reasons, Reason{Code: CodeStale, FactorID: f.ID,
				Message: fc.name() + " has not been used since " + formatTime(fc.lastActive) +
					"; the policy counts a factor unused for " + formatDuration(e.req.MaxInactivity) + " as stale"})
			continue
		}
		if len(problems) == 0 {
			d.Counted++
			if f.Hardware {
				d.CountedHardware++
			}
		}
	}
}

// advisoryNotices reports advisories the policy does not block.
func (e *evaluation) advisoryNotices(fc *facts) []Reason {
	var out []Reason
	for _, a := range fc.advisories {
		if !slices.Contains(e.req.BlockAdvisories, a.ID) {
			out = append(out, Reason{Code: CodeAdvisory, FactorID: fc.f.ID,
				Message: fc.name() + " is affected by advisory " + a.ID + " (" + a.Summary + "); the policy does not block it"})
		}
	}
	return out
}

func (e *evaluation) conflictReasons() []Reason {
	if len(e.conflicts) == 0 {
		return nil
	}
	return []Reason{{Code: CodeConflictingRules, Message: "the rules " + joinList(e.ruleNames()) +
		" that apply to " + who(e.u) + " have nothing in common for " + joinList(e.conflicts) +
		"; ask a policy administrator to fix the policy"}}
}

// met reports whether the counted factors satisfy every rule combined.
func (e *evaluation) met(d *Decision) bool {
	privOK := !Privileged(e.u) || d.CountedHardware >= 2
	return d.Counted >= e.docMin && d.CountedHardware >= e.docHW && privOK
}

func activeExemption(u User, exemptions []Exemption, now time.Time) (Exemption, bool) {
	var best Exemption
	for _, x := range exemptions {
		if x.UserID == u.ID && now.Before(x.Until) && x.Until.After(best.Until) {
			best = x
		}
	}
	return best, !best.Until.IsZero()
}

// acceptableKinds at verification: verification_kinds within
// allowed_kinds; nil when neither restricts.
func acceptableKinds(req *Requirements) []string {
	return slices.Clone(intersect(req.AllowedKinds, req.VerificationKinds))
}
