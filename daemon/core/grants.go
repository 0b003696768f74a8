package core

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/policy"
)

// Granting privilege is itself two-person. A change of a user's roles or
// groups splits in two: what only adds requirements or takes privilege
// away happens at once; what grants a role beyond "user", removes a role
// so that fewer than two people could approve some action, or takes the
// user out of a group or role a policy rule matches on, waits in one
// api.ActionUserAccess request for a different person's approval.

// Approval params of api.ActionUserAccess.
const (
	paramGrantRoles   = "grant_roles"
	paramRemoveRoles  = "remove_roles"
	paramRemoveGroups = "remove_groups"
)

// privilegedRole reports whether granting r needs a second person: every
// role beyond "user" and "service" (a service account's only role, which
// can neither approve, grant nor recover).
func privilegedRole(r string) bool { return r != api.RoleUser && r != api.RoleService }

// accessChange is a change of roles and groups, split into what happens
// at once (next) and what waits for approval (the three lists).
type accessChange struct {
	next                             User
	grant, removeRoles, removeGroups []string
}

func (c accessChange) needsApproval() bool {
	return len(c.grant)+len(c.removeRoles)+len(c.removeGroups) > 0
}

func (c accessChange) params() map[string]string {
	return details(paramGrantRoles, strings.Join(c.grant, ","), paramRemoveRoles, strings.Join(c.removeRoles, ","),
		paramRemoveGroups, strings.Join(c.removeGroups, ","))
}

// splitAccess decides which part of moving cur to want (roles and groups)
// happens at once, for p. cur is the stored user (zero ID for a new one).
// The daemon itself (System: keyfleetd init, a directory sync's own
// bookkeeping, test kits) changes access at once.
func (s *Service) splitAccess(tx ReadTx, p Principal, cur, want User) (accessChange, error) {
	c := accessChange{next: want}
	if p.isSystem() {
		for _, r := range want.Roles {
			if privilegedRole(r) && !slices.Contains(cur.Roles, r) {
				if c.next.Grants == nil {
					c.next.Grants = map[string]RoleGrant{}
				}
				c.next.Grants[r] = RoleGrant{By: System.Actor(), At: s.now()}
			}
		}
		return c, nil
	}
	c.next.Roles = slices.Clone(cur.Roles)
	for _, r := range want.Roles {
		switch {
		case slices.Contains(cur.Roles, r):
		case privilegedRole(r):
			c.grant = append(c.grant, r)
		default:
			c.next.Roles = append(c.next.Roles, r)
		}
	}
	removedRoles := minusOf(cur.Roles, want.Roles)
	removedGroups := minusOf(cur.Groups, want.Groups)
	c.next.Roles = minusOf(c.next.Roles, removedRoles)
	if len(c.next.Roles) == 0 {
		c.next.Roles = defaultRoles(cur.Kind)
	}
	slices.Sort(c.next.Roles)
	if cur.ID == "" || len(removedRoles)+len(removedGroups) == 0 {
		return c, nil
	}
	weaker, err := s.leavesRules(tx, cur, c.next)
	if err != nil {
		return accessChange{}, err
	}
	short, err := s.fewerApprovers(tx, cur, c.next)
	if err != nil {
		return accessChange{}, err
	}
	if weaker || short {
		// Keep what was there; the request takes it away once approved.
		c.removeRoles, c.removeGroups = removedRoles, removedGroups
		c.next.Roles = unionOf(c.next.Roles, removedRoles)
		c.next.Groups = unionOf(c.next.Groups, removedGroups)
	}
	return c, nil
}

func defaultRoles(kind string) []string {
	if kind == api.KindService {
		return []string{api.RoleService}
	}
	return []string{api.RoleUser}
}

// leavesRules reports whether moving from cur to next takes the user out
// of a policy rule.
func (s *Service) leavesRules(tx ReadTx, cur, next User) (bool, error) {
	_, doc, err := s.currentPolicy(tx)
	if err != nil {
		return false, err
	}
	return len(policy.RulesLeft(doc, policyUser(cur), policyUser(next))) > 0, nil
}

// fewerApprovers reports whether moving cur's roles to next leaves fewer
// than two active people able to approve some action, where there were
// more before.
func (s *Service) fewerApprovers(tx ReadTx, cur, next User) (bool, error) {
	if cur.Kind != api.KindPerson || cur.Status != api.UserActive {
		return false, nil
	}
	for _, roles := range approverSets() {
		if !slices.ContainsFunc(roles, func(r string) bool { return slices.Contains(cur.Roles, r) }) ||
			slices.ContainsFunc(roles, func(r string) bool { return slices.Contains(next.Roles, r) }) {
			continue
		}
		n, err := countApprovers(tx, roles)
		if err != nil {
			return false, err
		}
		if n-1 < 2 {
			return true, nil
		}
	}
	return false, nil
}

// approverSets are the distinct sets of roles that approve some action.
func approverSets() [][]string {
	var out [][]string
	for _, roles := range approvers {
		if !slices.ContainsFunc(out, func(o []string) bool { return slices.Equal(o, roles) }) {
			out = append(out, roles)
		}
	}
	return out
}

// countApprovers counts active people holding any of roles.
func countApprovers(tx ReadTx, roles []string) (int, error) {
	seen := map[string]bool{}
	for _, r := range roles {
		err := forEach(tx.Users, UserFilter{Role: r, Status: api.UserActive}, func(u User) error {
			if u.Kind == api.KindPerson {
				seen[u.ID] = true
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	return len(seen), nil
}

// accessRequest is the request for the part of a change that waits.
func accessRequest(u User, c accessChange) request {
	return request{action: api.ActionUserAccess, perm: UpdateUsers, target: userTarget(u), owner: u.ID, params: c.params()}
}

// grantApprovers: only an admin approves making an admin; an admin or a
// security officer approves every other access change.
func grantApprovers(a Approval) []string {
	if a.Action == api.ActionUserAccess && slices.Contains(strings.Split(a.Params[paramGrantRoles], ","), api.RoleAdmin) {
		return []string{api.RoleAdmin}
	}
	return approvers[a.Action]
}

// changeAccess carries out an approved access change on the user as it
// is now: roles granted and removed, groups left.
func (s *Service) changeAccess(tx Tx, ev *eventCtx, a Approval) error {
	u, err := tx.User(a.TargetID)
	if err != nil {
		return err
	}
	before := u.summary()
	grant := splitList(a.Params[paramGrantRoles])
	for _, r := range grant {
		if u.Kind == api.KindService && !ServiceAccountRole(r) || u.Kind != api.KindService && ServiceAccountRole(r) {
			return invalid("roles", "%s is a %s account; it cannot hold the %q role", u.Username, u.Kind, r)
		}
		if !slices.Contains(u.Roles, r) {
			u.Roles = append(u.Roles, r)
		}
		if u.Grants == nil {
			u.Grants = map[string]RoleGrant{}
		}
		u.Grants[r] = RoleGrant{By: a.RequestedBy, ApprovedBy: ev.approver, At: s.now()}
	}
	u.Roles = minusOf(u.Roles, splitList(a.Params[paramRemoveRoles]))
	for _, r := range splitList(a.Params[paramRemoveRoles]) {
		delete(u.Grants, r)
	}
	u.Groups = minusOf(u.Groups, splitList(a.Params[paramRemoveGroups]))
	if len(u.Roles) == 0 {
		u.Roles = defaultRoles(u.Kind)
	}
	slices.Sort(u.Roles)
	u.Roles = slices.Compact(u.Roles)
	u.UpdatedAt = s.now()
	if len(grant) > 0 {
		s.noteHandling(&u, ev.p, handledGranted)
	}
	if err := tx.PutUser(u); err != nil {
		return err
	}
	ev.privileged()
	return ev.audit(tx, "user.update", userTarget(u), before, u.summary())
}

// applyAccess stores the at-once part of a change (audited as user.update
// by the caller) and records the rest as a request; it returns the request
// (zero when nothing waits).
func (s *Service) applyAccess(ctx context.Context, tx Tx, p Principal, u User, c accessChange, reason string) (Approval, error) {
	if !c.needsApproval() {
		return Approval{}, nil
	}
	if reason == "" {
		reason = fmt.Sprintf("change the access of %s", u.Username)
	}
	return s.requestTx(ctx, tx, p, reason, accessRequest(u, c))
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// minusOf is a without the elements of b, in a's order.
func minusOf(a, b []string) []string {
	return slices.DeleteFunc(slices.Clone(a), func(x string) bool { return slices.Contains(b, x) })
}

// unionOf is a sorted set of a and b.
func unionOf(a, b []string) []string {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// privileged marks an event as a change of privilege (high severity).
func (e *eventCtx) privileged() {
	if e.extra == nil {
		e.extra = map[string]string{}
	}
	e.extra["privilege"] = "true"
}

// isStaff reports whether a user holds any role beyond "user": such an
// account's keys, passes and codes are never in someone else's hands.
func isStaff(u User) bool {
	return slices.ContainsFunc(u.Roles, func(r string) bool { return r != api.RoleUser })
}
