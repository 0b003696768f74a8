package core

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/keyfleet/keyfleet/api"
)

// A SCIM client (daemon/directory/scim) provisions the users of its own
// source, scim:<account>: a user's SCIM id is their keyfleet id, and a
// user the client deleted reads as not found to it. Its groups live in
// keyfleet (DirectoryGroup); the keyfleet groups and roles of a user are
// what the groups they are in map to (DirectorySource.GroupMap). Unlike a
// sync, every bad entry is an error here: the client is told, and nothing
// changes.

const prefixGroup = "grp_"

// SCIMUser returns a user of p's source. Errors: ErrNotFound,
// *ForbiddenError.
func (s *Service) SCIMUser(ctx context.Context, p Principal, id string) (User, error) {
	source, err := sourceOf(p)
	if err != nil {
		return User{}, err
	}
	var u User
	err = s.store.View(ctx, func(tx ReadTx) error {
		u, err = scimUser(tx, source, id)
		return err
	})
	return u, err
}

// scimUser reads a user of source that the source did not delete.
func scimUser(tx ReadTx, source, id string) (User, error) {
	if !isID(id, prefixUser) {
		return User{}, &NotFoundError{Kind: "user", Ref: id}
	}
	u, err := tx.User(id)
	if err != nil {
		return User{}, err
	}
	if u.External == nil || u.External.Source != source || u.External.Gone {
		return User{}, &NotFoundError{Kind: "user", Ref: id}
	}
	return u, nil
}

// SCIMLookup finds a user of p's source by userName (any case) or, when
// that is empty, by externalId. Errors: ErrNotFound.
func (s *Service) SCIMLookup(ctx context.Context, p Principal, userName, externalID string) (User, error) {
	source, err := sourceOf(p)
	if err != nil {
		return User{}, err
	}
	var u User
	err = s.store.View(ctx, func(tx ReadTx) error {
		if userName != "" {
			u, err = tx.UserByName(strings.ToLower(userName))
		} else {
			u, err = tx.UserByExternal(source, externalID)
		}
		if err == nil {
			u, err = scimUser(tx, source, u.ID)
		}
		return err
	})
	return u, err
}

// SCIMUsers lists the users of p's source that match, by username: those
// from offset (0-based), at most limit, and how many match in all.
func (s *Service) SCIMUsers(ctx context.Context, p Principal, match func(User) bool, offset, limit int) ([]User, int, error) {
	source, err := sourceOf(p)
	if err != nil {
		return nil, 0, err
	}
	var out []User
	total := 0
	err = s.store.View(ctx, func(tx ReadTx) error {
		out, total = nil, 0
		return forEach(tx.Users, UserFilter{}, func(u User) error {
			if u.External == nil || u.External.Source != source || u.External.Gone || !match(u) {
				return nil
			}
			if total >= offset && len(out) < limit {
				out = append(out, u)
			}
			total++
			return nil
		})
	})
	return out, total, err
}

// ProvisionSCIMUser creates a user of p's source from e (id "") or
// replaces the profile and status of one (check, if not nil, sees the
// stored user first: an ETag precondition). A POST for a username the
// source once deleted brings that user back. Errors: *ValidationError,
// ErrAlreadyExists (the username or external id is taken), ErrNotFound,
// *ForbiddenError, and check's error.
func (s *Service) ProvisionSCIMUser(ctx context.Context, p Principal, src DirectorySource, id string, e DirectoryEntry, check func(User) error) (User, error) {
	source, err := sourceOf(p)
	if err != nil {
		return User{}, err
	}
	var out User
	var rep api.DirectorySyncReport
	err = s.directoryUpdate(ctx, p, source, src, &rep, func(tx Tx, b *directoryBatch) error {
		b.strict = true
		cur, err := b.scimTarget(tx, id, e)
		if isNotFound(err) && id == "" {
			out, err = s.createLinked(ctx, tx, b, e)
			return err
		}
		if err != nil {
			return err
		}
		if check != nil {
			if err := check(cur); err != nil {
				return err
			}
		}
		if _, err = s.reconcile(ctx, tx, b, cur, e); err != nil {
			return err
		}
		out, err = tx.User(cur.ID)
		return err
	})
	return out, err
}

// scimTarget is the user an entry replaces: by id, or for a creation the
// user the source deleted under that username. Errors: ErrNotFound (a
// creation of a new user), ErrAlreadyExists.
func (b *directoryBatch) scimTarget(tx ReadTx, id string, e DirectoryEntry) (User, error) {
	if id != "" {
		return scimUser(tx, b.source, id)
	}
	u, err := b.linkedUser(tx, e)
	switch {
	case errors.Is(err, errUnlinked):
		return User{}, fmt.Errorf("%w: %q belongs to a user made by hand in keyfleet; an administrator can hand it to this client with 'keyfleet directory link %s --source %s'",
			ErrAlreadyExists, e.Username, e.Username, b.source)
	case err != nil:
		return User{}, err
	case !u.External.Gone:
		return User{}, fmt.Errorf("%w: a user with userName %q or externalId %q exists (id %s)", ErrAlreadyExists, e.Username, e.ExternalID, u.ID)
	}
	return u, nil
}

// DeprovisionSCIMUser is a SCIM client deleting a user: keyfleet disables
// them at once, suspends their factors and takes them out of the client's
// groups; deleting them for good is a request a person asks for and
// another approves. check as for ProvisionSCIMUser.
func (s *Service) DeprovisionSCIMUser(ctx context.Context, p Principal, src DirectorySource, id string, check func(User) error) error {
	source, err := sourceOf(p)
	if err != nil {
		return err
	}
	var rep api.DirectorySyncReport
	return s.directoryUpdate(ctx, p, source, src, &rep, func(tx Tx, b *directoryBatch) error {
		u, err := scimUser(tx, source, id)
		if err != nil {
			return err
		}
		if check != nil {
			if err := check(u); err != nil {
				return err
			}
		}
		if err := s.leaveGroups(tx, b, id); err != nil {
			return err
		}
		return s.markGone(ctx, tx, b, id, "deleted by the SCIM client")
	})
}

// leaveGroups takes a user out of every group of the batch's source.
func (s *Service) leaveGroups(tx Tx, b *directoryBatch, userID string) error {
	for _, g := range b.members[userID] {
		g, err := tx.DirectoryGroup(b.source, g.ID)
		if err != nil {
			return err
		}
		g.Members = slices.DeleteFunc(g.Members, func(m string) bool { return m == userID })
		g.Version++
		g.UpdatedAt = s.now()
		if err := tx.PutDirectoryGroup(g); err != nil {
			return err
		}
	}
	return nil
}

// SCIMGroup returns a group of p's source. Errors: ErrNotFound.
func (s *Service) SCIMGroup(ctx context.Context, p Principal, id string) (DirectoryGroup, error) {
	source, err := sourceOf(p)
	if err != nil {
		return DirectoryGroup{}, err
	}
	var g DirectoryGroup
	err = s.store.View(ctx, func(tx ReadTx) error {
		g, err = tx.DirectoryGroup(source, id)
		return err
	})
	return g, err
}

// SCIMGroups lists the groups of p's source that match, by id, as
// SCIMUsers does.
func (s *Service) SCIMGroups(ctx context.Context, p Principal, match func(DirectoryGroup) bool, offset, limit int) ([]DirectoryGroup, int, error) {
	source, err := sourceOf(p)
	if err != nil {
		return nil, 0, err
	}
	var out []DirectoryGroup
	total := 0
	err = s.store.View(ctx, func(tx ReadTx) error {
		out, total = nil, 0
		return eachGroup(tx, source, func(g DirectoryGroup) error {
			if match(g) {
				if total >= offset && len(out) < limit {
					out = append(out, g)
				}
				total++
			}
			return nil
		})
	})
	return out, total, err
}

func eachGroup(tx ReadTx, source string, fn func(DirectoryGroup) error) error {
	list := func(_ struct{}, pg PageReq) ([]DirectoryGroup, string, error) { return tx.DirectoryGroups(source, pg) }
	return forEach(list, struct{}{}, fn)
}

// SaveSCIMGroup creates (g.ID "") or replaces a group of p's source, and
// brings the access of everyone who joined or left it (or everyone in it,
// when what it maps to changed) in line: what that grants waits for
// approval, what it takes away happens at once. Members must be users of
// the source. Errors: *ValidationError, ErrNotFound, check's error.
func (s *Service) SaveSCIMGroup(ctx context.Context, p Principal, src DirectorySource, g DirectoryGroup, check func(DirectoryGroup) error) (DirectoryGroup, error) {
	source, err := sourceOf(p)
	if err != nil {
		return DirectoryGroup{}, err
	}
	if err := validText("displayName", g.DisplayName, 256); err != nil || g.DisplayName == "" {
		return DirectoryGroup{}, invalid("displayName", "is required: 1 to 256 characters without control characters")
	}
	var out DirectoryGroup
	var rep api.DirectorySyncReport
	err = s.directoryUpdate(ctx, p, source, src, &rep, func(tx Tx, b *directoryBatch) error {
		b.strict = true
		old, err := b.groupBefore(tx, g.ID, check)
		if err != nil {
			return err
		}
		if out, err = s.putGroup(tx, b, old, g); err != nil {
			return err
		}
		return s.regroup(ctx, tx, b, old, out, unionOf(old.Members, out.Members))
	})
	return out, err
}

// groupBefore reads the group a save replaces (zero for a new one).
func (b *directoryBatch) groupBefore(tx ReadTx, id string, check func(DirectoryGroup) error) (DirectoryGroup, error) {
	if id == "" {
		return DirectoryGroup{}, nil
	}
	old, err := tx.DirectoryGroup(b.source, id)
	if err != nil {
		return DirectoryGroup{}, err
	}
	if check != nil {
		err = check(old)
	}
	return old, err
}

// putGroup checks g's members and stores it over old.
func (s *Service) putGroup(tx Tx, b *directoryBatch, old, g DirectoryGroup) (DirectoryGroup, error) {
	members := slices.Clone(g.Members)
	slices.Sort(members)
	members = slices.Compact(members)
	for _, m := range members {
		if _, err := scimUser(tx, b.source, m); isNotFound(err) {
			return DirectoryGroup{}, invalid("members", "%q is not a user of this SCIM client", m)
		} else if err != nil {
			return DirectoryGroup{}, err
		}
	}
	now := s.now()
	g.Source, g.Members, g.UpdatedAt, g.Version = b.source, members, now, old.Version+1
	if old.ID == "" {
		g.ID, g.CreatedAt = newID(prefixGroup, now, s.cfg.Rand), now
	} else {
		g.CreatedAt = old.CreatedAt
	}
	return g, tx.PutDirectoryGroup(g)
}

// DeleteSCIMGroup deletes a group of p's source; its members lose what it
// gave them, at once.
func (s *Service) DeleteSCIMGroup(ctx context.Context, p Principal, src DirectorySource, id string, check func(DirectoryGroup) error) error {
	source, err := sourceOf(p)
	if err != nil {
		return err
	}
	var rep api.DirectorySyncReport
	return s.directoryUpdate(ctx, p, source, src, &rep, func(tx Tx, b *directoryBatch) error {
		old, err := b.groupBefore(tx, id, check)
		if err != nil {
			return err
		}
		if err := tx.DeleteDirectoryGroup(old); err != nil {
			return err
		}
		return s.regroup(ctx, tx, b, old, DirectoryGroup{}, old.Members)
	})
}

// regroup brings the access of users in line after a group changed from
// old to g (either may be zero).
func (s *Service) regroup(ctx context.Context, tx Tx, b *directoryBatch, old, g DirectoryGroup, users []string) error {
	for _, x := range []DirectoryGroup{old, g} {
		if x.DisplayName != "" {
			b.manage(x)
		}
	}
	if err := b.loadMembers(tx); err != nil {
		return err
	}
	for _, id := range users {
		u, err := scimUser(tx, b.source, id)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		want := u
		want.Groups, want.Roles = b.access(u, DirectoryEntry{})
		if _, err := s.storeReconciled(ctx, tx, b, u, want); err != nil {
			return err
		}
	}
	return nil
}

// loadMembers reads the source's groups: who is in which, and what they
// map to (the source manages those groups and roles).
func (b *directoryBatch) loadMembers(tx ReadTx) error {
	b.members = map[string][]DirectoryGroup{}
	return eachGroup(tx, b.source, func(g DirectoryGroup) error {
		b.manage(g)
		for _, m := range g.Members {
			b.members[m] = append(b.members[m], g)
		}
		return nil
	})
}

// manage adds what g maps to to the source's managed groups and roles.
func (b *directoryBatch) manage(g DirectoryGroup) {
	group, role := b.src.GroupMap(g)
	if group != "" && !slices.Contains(b.src.ManagedGroups, group) {
		b.src.ManagedGroups = append(slices.Clip(b.src.ManagedGroups), group)
	}
	if role != "" && !slices.Contains(b.src.ManagedRoles, role) {
		b.src.ManagedRoles = append(slices.Clip(b.src.ManagedRoles), role)
	}
}

// fromGroups is the keyfleet groups and roles a user's groups give.
func (b *directoryBatch) fromGroups(userID string) (groups, roles []string) {
	for _, g := range b.members[userID] {
		group, role := b.src.GroupMap(g)
		if group != "" {
			groups = append(groups, group)
		}
		if role != "" {
			roles = append(roles, role)
		}
	}
	return unionOf(groups, nil), unionOf(roles, nil)
}
