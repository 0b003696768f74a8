package core

import (
	"context"
	"slices"

	"github.com/keyfleet/keyfleet/api"
)

// MFAStatus answers "must this user enrol?" for applications: whether the
// user has to enrol now, the kinds they may use, and their active factors
// (no secrets).
func (s *Service) MFAStatus(ctx context.Context, p Principal, ref string) (api.MFAStatus, error) {
	var u User
	var active []Factor
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		if u, err = lookupUser(tx, ref); err != nil {
			return err
		}
		if err := p.authorize(ReadMFAStatus, u.ID); err != nil {
			return err
		}
		active, _, err = tx.Factors(FactorFilter{UserID: u.ID, State: api.FactorActive}, PageReq{Limit: MaxPageSize})
		return err
	})
	if err != nil {
		return api.MFAStatus{}, err
	}
	kinds := s.Kinds()
	slices.Sort(kinds)
	st := api.MFAStatus{UserID: u.ID, AllowedKinds: kinds, ActiveFactors: []api.Factor{}, LockedUntil: u.LockedUntil}
	for _, f := range active {
		st.ActiveFactors = append(st.ActiveFactors, f.API())
	}
	st.MustEnrol = u.Kind == api.KindPerson && len(active) == 0
	st.Status = "compliant"
	if st.MustEnrol {
		st.Status = "non_compliant"
		st.Reasons = []string{u.Username + " has no active factor"}
		st.NextSteps = []string{"enrol a factor: a hardware key with keyfleet-agent, or another enabled kind"}
	}
	return st, nil
}
