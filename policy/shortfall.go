package policy

import (
	"fmt"
	"slices"
	"time"
)

// decideShortfall sets the status, deadline, reasons and next steps of a
// user who does not meet the combined requirements.
func (e *evaluation) decideShortfall(d *Decision) {
	d.Deadline = e.deadline()
	d.MustEnrol = true
	if e.now.Before(d.Deadline) {
		d.Status, d.GraceUntil = StatusGrace, d.Deadline
	} else {
		d.Status = StatusNonCompliant
	}
	when := due(d.Deadline, e.now)
	name := who(e.u)
	var short []Reason
	if d.Counted < e.docMin {
		short = append(short, Reason{Code: CodeTooFewFactors, Message: fmt.Sprintf(
			"%s has %s that the policy accepts; %s %d %s",
			name, plural(d.Counted, "active factor", "active factors"), e.rulesSetting(isMinFactors, d.Deadline),
			e.docMin, when)})
	}
	if d.CountedHardware < e.docHW {
		short = append(short, Reason{Code: CodeTooFewHardware, Message: fmt.Sprintf(
			"%s has %s that the policy accepts; %s %d %s",
			name, plural(d.CountedHardware, "active hardware factor", "active hardware factors"),
			e.rulesSetting(isMinHardware, d.Deadline), e.docHW, when)})
	}
	if Privileged(e.u) && d.CountedHardware < 2 {
		short = append(short, Reason{Code: CodePrivilegedHardware, Message: fmt.Sprintf(
			"%s has %s; admins and security officers %s 2 %s",
			name, plural(d.CountedHardware, "active hardware factor", "active hardware factors"),
			needVerb(d.Deadline, e.now, false), when)})
	}
	d.Reasons = append(short, d.Reasons...)
	d.NextSteps = append(e.enrolSteps(d), e.factorSteps(d)...)
}

// needVerb agrees with its subject and tense: "need", "needs", "needed".
func needVerb(deadline, now time.Time, singular bool) string {
	switch {
	case !now.Before(deadline):
		return "needed"
	case singular:
		return "needs"
	}
	return "need"
}

func isMinFactors(e *evaluation, r *Rule) bool  { return r.Require.MinFactors == e.docMin }
func isMinHardware(e *evaluation, r *Rule) bool { return r.Require.MinHardwareFactors == e.docHW }

// rulesSetting names the document rules that set the binding minimum,
// with the verb: "rule admins needs" or "rules admins, finance need".
func (e *evaluation) rulesSetting(binding func(*evaluation, *Rule) bool, deadline time.Time) string {
	var names []string
	for _, r := range e.rules {
		if r.Name != BuiltinPrivileged && binding(e, r) {
			names = append(names, r.Name)
		}
	}
	slices.Sort(names)
	if len(names) == 1 {
		return "rule " + names[0] + " " + needVerb(deadline, e.now, true)
	}
	return "rules " + joinList(names) + " " + needVerb(deadline, e.now, false)
}

// deadline is the earliest deadline of the rules the user fails on their
// own; when every rule is met alone but not their combination, the
// earliest deadline of all of them.
func (e *evaluation) deadline() time.Time {
	var earliest, earliestAll time.Time
	for i, r := range e.rules {
		t := e.applied[i].Add(r.Require.EnrollWithin)
		if earliestAll.IsZero() || t.Before(earliestAll) {
			earliestAll = t
		}
		if !e.metAlone(r) && (earliest.IsZero() || t.Before(earliest)) {
			earliest = t
		}
	}
	if earliest.IsZero() {
		return earliestAll
	}
	return earliest
}

// metAlone reports whether the user's factors satisfy one rule by itself.
func (e *evaluation) metAlone(r *Rule) bool {
	n, hw := 0, 0
	for i := range e.facts {
		fc := &e.facts[i]
		if fc.f.State != FactorActive || fc.stale(&r.Require, e.now) || len(fc.check(&r.Require, true)) > 0 {
			continue
		}
		n++
		if fc.f.Hardware {
			hw++
		}
	}
	return n >= r.Require.MinFactors && hw >= r.Require.MinHardwareFactors
}

// enrolSteps tells the user how many more factors to enrol, and of what.
func (e *evaluation) enrolSteps(d *Decision) []string {
	needHW := e.docHW
	if Privileged(e.u) {
		needHW = max(needHW, 2)
	}
	moreHW := max(needHW-d.CountedHardware, 0)
	more := max(max(e.docMin, needHW)-d.Counted, moreHW, 1)
	what := plural(more, "more factor", "more factors")
	switch {
	case moreHW == more:
		what = plural(more, "more hardware key", "more hardware keys")
	case moreHW > 0:
		what += fmt.Sprintf(" (at least %s)", plural(moreHW, "hardware key", "hardware keys"))
	}
	step := "Enrol " + what + " " + due(d.Deadline, e.now) + e.describeAcceptable() + "."
	if len(e.conflicts) > 0 {
		step = "Ask a policy administrator for help: the rules that apply to you conflict, so no factor can satisfy them."
	}
	return []string{step}
}

// describeAcceptable says which factors count: "; acceptable: fido2 or
// piv, with attestation, made by Yubico", or nothing.
func (e *evaluation) describeAcceptable() string {
	var parts []string
	if e.req.AllowedKinds != nil {
		parts = append(parts, orList(e.req.AllowedKinds))
	}
	if e.req.AttestationRequired {
		parts = append(parts, "with attestation")
	}
	if e.req.FIPSRequired {
		parts = append(parts, "FIPS-series")
	}
	if e.req.AllowedVendors != nil {
		parts = append(parts, "made by "+orList(e.req.AllowedVendors))
	}
	if len(parts) == 0 {
		return ""
	}
	return "; acceptable: " + joinList(parts)
}

// factorSteps turns factor reasons into what the user can do about them.
func (e *evaluation) factorSteps(d *Decision) []string {
	var out []string
	add := func(s string) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, r := range d.Reasons {
		if r.FactorID == "" {
			continue
		}
		switch r.Code {
		case CodeStale:
			add(fmt.Sprintf("Sign in with factor %s to keep it, or have it removed.", r.FactorID))
		case CodeAdvisoryBlocked, CodeFirmwareTooOld:
			add(fmt.Sprintf("Replace key %s with a key on current firmware.", r.FactorID))
		case CodeAdvisory:
			add(fmt.Sprintf("Plan to replace key %s: it has a known vulnerability.", r.FactorID))
		default:
			add(fmt.Sprintf("Replace factor %s with one the policy accepts.", r.FactorID))
		}
	}
	return out
}
