package core

import (
	"context"
	"slices"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/policy"
)

// MFAStatus answers "must this user enrol?" for applications, from the
// policy's decision: status, deadline, reasons, next steps, the kinds the
// user may verify with, and their active factors (no secrets). Rules that
// apply to the user for the first time are recorded, so their deadlines
// start now.
func (s *Service) MFAStatus(ctx context.Context, p Principal, ref string) (api.MFAStatus, error) {
	var u User
	var e evaluation
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		if u, err = lookupFor(tx, p, ReadMFAStatus, ref); err != nil {
			return err
		}
		if err := p.authorize(ReadMFAStatus, u.ID); err != nil {
			return err
		}
		e, err = s.evaluateUser(tx, u, s.now())
		return err
	})
	if err != nil {
		return api.MFAStatus{}, err
	}
	if len(e.decision.NewlyApplied) > 0 {
		err = s.store.Update(ctx, func(tx Tx) error { return s.recordFirstApplied(ctx, tx, UserFactsOf(u), e.version, e.decision) })
		if err != nil {
			return api.MFAStatus{}, err
		}
	}
	return s.statusOf(u, e), nil
}

func (s *Service) statusOf(u User, e evaluation) api.MFAStatus {
	d := e.decision
	st := api.MFAStatus{UserID: u.ID, MustEnrol: d.MustEnrol, Status: string(d.Status), AllowedKinds: s.allowedKinds(d),
		ActiveFactors: []api.Factor{}, LockedUntil: u.LockedUntil, PolicyVersion: e.version, NextSteps: d.NextSteps,
		GraceUntil: timePtr(d.GraceUntil), Deadline: timePtr(d.Deadline), ExemptUntil: timePtr(d.ExemptUntil),
		StaleFactors: d.Stale, VulnerableFactors: d.Vulnerable}
	for _, f := range e.subject.Factors {
		if f.State == api.FactorActive {
			st.ActiveFactors = append(st.ActiveFactors, f.API())
		}
	}
	for _, r := range d.Reasons {
		st.Reasons = append(st.Reasons, r.Message)
		st.ReasonDetails = append(st.ReasonDetails, api.PolicyReason(r))
	}
	return st
}

// allowedKinds are the registered kinds the decision accepts, sorted.
func (s *Service) allowedKinds(d policy.Decision) []string {
	out := []string{}
	for _, k := range s.Kinds() {
		if d.AcceptableKinds == nil || slices.Contains(d.AcceptableKinds, k) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
