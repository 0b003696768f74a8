package core

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/proof"
)

// Approver is a person who may still decide a pending request: an active
// person (never a service account), not its requester, holding a role
// that may approve its action, independent of the requester (nobody who
// made, granted, recovered, enrolled or issued a pass to the other within
// the independence window). HasKey says whether they hold an active
// security key to prove the decision with; without one they cannot
// approve yet.
type Approver struct {
	User   api.Actor
	Roles  []string
	HasKey bool
}

// maxApprovers bounds the list: a request with more possible approvers
// than this says so with the first ones.
const maxApprovers = 50

// Approvers lists who may still decide a pending request, in username
// order, at most 50. The same checks as Approve decide who is listed, so
// the list is what a second person sees before asking a colleague.
// Errors: ErrNotFound, ErrApprovalClosed, *ForbiddenError (the caller may
// not read approvals).
func (s *Service) Approvers(ctx context.Context, p Principal, id string) ([]Approver, error) {
	if err := p.authorize(ReadApprovals, ""); err != nil {
		return nil, err
	}
	var out []Approver
	err := s.store.View(ctx, func(tx ReadTx) error {
		a, err := s.pending(tx, id)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, role := range grantApprovers(a) {
			err := forEach(tx.Users, UserFilter{Role: role, Status: api.UserActive}, func(u User) error {
				if seen[u.ID] || len(out) >= maxApprovers {
					return nil
				}
				seen[u.ID] = true
				ok, err := s.mayApprove(tx, u, a)
				if err != nil || !ok {
					return err
				}
				key, err := s.holdsKey(tx, u.ID)
				out = append(out, Approver{User: api.Actor{ID: u.ID, Name: u.Username}, Roles: u.Roles, HasKey: key})
				return err
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	slices.SortFunc(out, func(x, y Approver) int { return strings.Compare(x.User.Name, y.User.Name) })
	return out, err
}

// mayApprove runs the approver checks of a decision for u, without a
// proof: roles, not the requester, an active person, independent.
func (s *Service) mayApprove(tx ReadTx, u User, a Approval) (bool, error) {
	if u.Kind != api.KindPerson {
		return false, nil
	}
	p := Principal{UserID: u.ID, Username: u.Username, Roles: u.Roles, Auth: "token"}
	if s.mayDecideRoles(p, a) != nil {
		return false, nil
	}
	err := s.approverUser(tx, p, a)
	if errors.Is(err, errVoid) || errors.Is(err, ErrNotIndependent) || errors.Is(err, ErrForbidden) {
		return false, nil
	}
	return err == nil, err
}

// holdsKey reports whether the user has an active factor that can prove
// a decision (a security key).
func (s *Service) holdsKey(tx ReadTx, userID string) (bool, error) {
	_, fs, err := s.provingFactors(tx, userID, proof.Catalogue[proof.ApprovalApprove].Strength)
	if err != nil {
		return false, nil // no usable factor: the answer is "no key", not a failure
	}
	return len(fs) > 0, nil
}
