package core

import (
	"context"
	"errors"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/keyfleet/keyfleet/api"
)

var (
	usernameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]{0,63}$`)
	groupRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
)

const maxGroups = 64

func validUsername(name string) error {
	switch {
	case name == "":
		return invalid("username", "is required")
	case strings.ToLower(name) != name && usernameRE.MatchString(strings.ToLower(name)):
		return invalid("username", "%q has capital letters; usernames are lower case (use %q)", name, strings.ToLower(name))
	case !usernameRE.MatchString(name):
		return invalid("username", "%q is not a username: use 1-64 lower-case letters, digits and . _ @ -, starting with a letter or digit", name)
	case isID(name, prefixUser):
		return invalid("username", "%q looks like a user id; choose another username", name)
	}
	return nil
}

func validText(field, s string, max int) error {
	if len(s) > max {
		return invalid(field, "is %d bytes long; the limit is %d", len(s), max)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return invalid(field, "contains a control character")
		}
	}
	return nil
}

func validEmail(email string) error {
	if email == "" {
		return nil
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || len(email) > 254 {
		return invalid("email", "%q is not an email address like name@example.org", email)
	}
	return nil
}

func cleanGroups(groups []string) ([]string, error) {
	if len(groups) > maxGroups {
		return nil, invalid("groups", "has %d groups; the limit is %d", len(groups), maxGroups)
	}
	out := make([]string, 0, len(groups))
	for _, g := range groups {
		if !groupRE.MatchString(g) {
			return nil, invalid("groups", "%q is not a group name: use 1-64 lower-case letters, digits and . _ -", g)
		}
		out = append(out, g)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func cleanRoles(kind string, roles []string) ([]string, error) {
	if len(roles) == 0 {
		if kind == api.KindService {
			return []string{api.RoleService}, nil
		}
		return []string{api.RoleUser}, nil
	}
	out := slices.Clone(roles)
	for _, r := range out {
		switch {
		case !ValidRole(r):
			return nil, invalid("roles", "%q is not a role; roles are %s", r, strings.Join(api.AllRoles, ", "))
		case kind == api.KindService && !ServiceAccountRole(r):
			return nil, invalid("roles", "a service account can hold only the %q role (or %q for a SCIM client, %q for a login host), not %q",
				api.RoleService, api.RoleScim, api.RoleLoginHost, r)
		case kind == api.KindPerson && ServiceAccountRole(r):
			return nil, invalid("roles", "the %q role is for service accounts; create one with kind %q", r, api.KindService)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// CreateUser adds a user. A role beyond "user" (or "service") is not
// granted at once: the user is created without it, and the returned
// approval asks a different person to grant it (break-glass grants at
// once). Errors: *ValidationError, ErrAlreadyExists, *ForbiddenError.
func (s *Service) CreateUser(ctx context.Context, p Principal, in api.CreateUser) (User, Approval, error) {
	if err := p.authorize(CreateUsers, ""); err != nil {
		return User{}, Approval{}, err
	}
	u, err := s.newUser(in)
	if err != nil {
		return User{}, Approval{}, err
	}
	var a Approval
	err = s.store.Update(ctx, func(tx Tx) error {
		var c accessChange
		var err error
		if u, c, err = s.insertUser(ctx, tx, p, u, nil); err != nil {
			return err
		}
		if a, err = s.applyAccess(ctx, tx, p, u, c, ""); err != nil {
			return err
		}
		u, err = tx.User(u.ID) // a break-glass session's grant ran already
		return err
	})
	return u, a, err
}

// insertUser stores a new user with what of its access p may give at once
// (splitAccess), noting that p made the account, and audits it; the rest
// of the access change is returned for applyAccess.
func (s *Service) insertUser(ctx context.Context, tx Tx, p Principal, u User, extra map[string]string) (User, accessChange, error) {
	c, err := s.splitAccess(tx, p, User{Kind: u.Kind}, u)
	if err != nil {
		return User{}, accessChange{}, err
	}
	u = c.next
	u.ID = newID(prefixUser, u.CreatedAt, s.cfg.Rand)
	s.noteHandling(&u, p, handledCreated)
	if err := tx.InsertUser(u); err != nil {
		return User{}, accessChange{}, err
	}
	ev := s.event(ctx, p, "user.create", userTarget(u))
	ev.After = u.summary()
	for k, v := range extra {
		if ev.Extra == nil {
			ev.Extra = map[string]string{}
		}
		ev.Extra[k] = v
	}
	return u, c, tx.Audit(ev)
}

func (s *Service) newUser(in api.CreateUser) (User, error) {
	if in.Kind == "" {
		in.Kind = api.KindPerson
	}
	if in.Kind != api.KindPerson && in.Kind != api.KindService {
		return User{}, invalid("kind", "%q is not a user kind; use %q or %q", in.Kind, api.KindPerson, api.KindService)
	}
	if err := validUsername(in.Username); err != nil {
		return User{}, err
	}
	if err := validText("display_name", in.DisplayName, 128); err != nil {
		return User{}, err
	}
	if err := validEmail(in.Email); err != nil {
		return User{}, err
	}
	groups, err := cleanGroups(in.Groups)
	if err != nil {
		return User{}, err
	}
	roles, err := cleanRoles(in.Kind, in.Roles)
	if err != nil {
		return User{}, err
	}
	now := s.now()
	return User{
		Username: in.Username, DisplayName: in.DisplayName, Email: in.Email, Kind: in.Kind,
		Groups: groups, Roles: roles, Status: api.UserActive, CreatedAt: now, UpdatedAt: now,
	}, nil
}

// lookupUser finds a user by id or username.
func lookupUser(tx ReadTx, ref string) (User, error) {
	if isID(ref, prefixUser) {
		return tx.User(ref)
	}
	if ref == "" {
		return User{}, invalid("user", "is required: give a user id or username")
	}
	return tx.UserByName(ref)
}

// lookupFor finds the user ref names for p, who needs a on them. To a
// principal who may do a only to their own records, or not at all,
// another user and a name nobody has read the same (*ForbiddenError): the
// answer does not tell which usernames exist.
func lookupFor(tx ReadTx, p Principal, a Action, ref string) (User, error) {
	u, err := lookupUser(tx, ref)
	if p.Scope(a) != All && (errors.Is(err, ErrNotFound) || err == nil && u.ID != p.UserID) {
		return User{}, p.authorize(a, "")
	}
	return u, err
}

// GetUser returns a user by id or username. Errors: ErrNotFound (only to
// a principal who may read other users), *ForbiddenError.
func (s *Service) GetUser(ctx context.Context, p Principal, ref string) (User, error) {
	var u User
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		u, err = lookupFor(tx, p, ReadUsers, ref)
		return err
	})
	if err != nil {
		return User{}, err
	}
	return u, nil
}

// ListUsers lists users by username.
func (s *Service) ListUsers(ctx context.Context, p Principal, f UserFilter, pg PageReq) ([]User, string, error) {
	if err := p.authorize(ReadUsers, ""); err != nil {
		return nil, "", err
	}
	var out []User
	var next string
	err := s.store.View(ctx, func(tx ReadTx) error {
		var err error
		out, next, err = tx.Users(f, pg.Clamp())
		return err
	})
	return out, next, err
}

// UpdateUser changes a user's display name, email, groups or roles. What
// grants privilege or weakens the policy's hold on the user waits in the
// returned approval (see grants.go); the rest changes at once, and a role
// taken away is a high-severity event.
func (s *Service) UpdateUser(ctx context.Context, p Principal, ref string, in api.UpdateUser) (User, Approval, error) {
	if err := p.authorize(UpdateUsers, ""); err != nil {
		return User{}, Approval{}, err
	}
	var u User
	var a Approval
	err := s.store.Update(ctx, func(tx Tx) error {
		cur, err := lookupUser(tx, ref)
		if err != nil {
			return err
		}
		want := cur
		if err := applyUserUpdate(&want, in); err != nil {
			return err
		}
		c, err := s.splitAccess(tx, p, cur, want)
		if err != nil {
			return err
		}
		u = c.next
		for _, r := range minusOf(cur.Roles, u.Roles) {
			delete(u.Grants, r)
		}
		if !userChanged(cur, u) {
			a, err = s.applyAccess(ctx, tx, p, u, c, "")
			return err
		}
		u.UpdatedAt = s.now()
		if err := tx.PutUser(u); err != nil {
			return err
		}
		ev := s.eventCtx(ctx, p, "")
		if in.DisplayName != nil || in.Email != nil {
			ev.extra = map[string]string{"profile": "changed"}
		}
		if len(minusOf(cur.Roles, u.Roles)) > 0 {
			ev.privileged()
		}
		if err := ev.audit(tx, "user.update", userTarget(u), cur.summary(), u.summary()); err != nil {
			return err
		}
		if a, err = s.applyAccess(ctx, tx, p, u, c, ""); err != nil || a.State != api.ApprovalApproved {
			return err
		}
		u, err = tx.User(u.ID) // a break-glass session's change ran already
		return err
	})
	return u, a, err
}

// userChanged reports whether an update changes anything stored.
func userChanged(a, b User) bool {
	return a.DisplayName != b.DisplayName || a.Email != b.Email || !slices.Equal(a.Groups, b.Groups) || !slices.Equal(a.Roles, b.Roles)
}

func applyUserUpdate(u *User, in api.UpdateUser) error {
	if in.DisplayName != nil {
		if err := validText("display_name", *in.DisplayName, 128); err != nil {
			return err
		}
		u.DisplayName = *in.DisplayName
	}
	if in.Email != nil {
		if err := validEmail(*in.Email); err != nil {
			return err
		}
		u.Email = *in.Email
	}
	if in.Groups != nil {
		g, err := cleanGroups(*in.Groups)
		if err != nil {
			return err
		}
		u.Groups = g
	}
	if in.Roles != nil {
		r, err := cleanRoles(u.Kind, *in.Roles)
		if err != nil {
			return err
		}
		u.Roles = r
	}
	return nil
}

// EnableUser makes a disabled user active again.
func (s *Service) EnableUser(ctx context.Context, p Principal, ref string) (User, error) {
	if err := p.authorize(EnableUsers, ""); err != nil {
		return User{}, err
	}
	var u User
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		if u, err = lookupUser(tx, ref); err != nil {
			return err
		}
		if u.Status == api.UserActive {
			return &TransitionError{Kind: "user", ID: u.Username, From: u.Status, Action: "enable", Hint: "it is already active"}
		}
		before := u.summary()
		u.Status, u.UpdatedAt = api.UserActive, s.now()
		if err := tx.PutUser(u); err != nil {
			return err
		}
		ev := s.event(ctx, p, "user.enable", userTarget(u))
		ev.Before, ev.After = before, u.summary()
		return tx.Audit(ev)
	})
	return u, err
}

// disableUser, deleteUser and resetMFA run only from an approved request.

func (s *Service) disableUser(ctx context.Context, tx Tx, ev *eventCtx, u User) error {
	if u.Status == api.UserDisabled {
		return &TransitionError{Kind: "user", ID: u.Username, From: u.Status, Action: "disable", Hint: "it is already disabled"}
	}
	before := u.summary()
	u.Status, u.UpdatedAt = api.UserDisabled, s.now()
	if err := tx.PutUser(u); err != nil {
		return err
	}
	return ev.audit(tx, "user.disable", userTarget(u), before, u.summary())
}

func (s *Service) deleteUser(ctx context.Context, tx Tx, ev *eventCtx, u User) error {
	if err := s.resetMFA(ctx, tx, ev, u); err != nil {
		return err
	}
	if err := forEach(tx.Factors, FactorFilter{UserID: u.ID}, tx.DeleteFactor); err != nil {
		return err
	}
	if err := forEach(tx.Tokens, TokenFilter{UserID: u.ID}, tx.DeleteToken); err != nil {
		return err
	}
	if err := forEach(tx.Enrolments, EnrolmentFilter{UserID: u.ID}, tx.DeleteEnrolment); err != nil {
		return err
	}
	if err := tx.DeletePolicyState(u.ID); err != nil {
		return err
	}
	if err := tx.DeleteUser(u); err != nil {
		return err
	}
	return ev.audit(tx, "user.delete", userTarget(u), u.summary(), nil)
}

// resetMFA revokes every factor of u that is not revoked yet and cancels
// u's open enrolments.
func (s *Service) resetMFA(ctx context.Context, tx Tx, ev *eventCtx, u User) error {
	err := forEach(tx.Factors, FactorFilter{UserID: u.ID}, func(f Factor) error {
		if f.State == api.FactorRevoked {
			return nil
		}
		return s.revokeFactor(tx, ev, f, "user MFA reset")
	})
	if err != nil {
		return err
	}
	return forEach(tx.Enrolments, EnrolmentFilter{UserID: u.ID, State: api.EnrolmentOpen}, func(e Enrolment) error {
		e.State = api.EnrolmentCancelled
		if err := tx.PutEnrolment(e); err != nil {
			return err
		}
		return ev.audit(tx, "enrolment.cancel", targetRef{"enrolment", e.ID, ""}, map[string]any{"state": api.EnrolmentOpen}, map[string]any{"state": e.State})
	})
}

// forEach calls fn for every record a list returns, page by page.
func forEach[T any, F any](list func(F, PageReq) ([]T, string, error), f F, fn func(T) error) error {
	pg := PageReq{Limit: MaxPageSize}
	for {
		items, next, err := list(f, pg)
		if err != nil {
			return err
		}
		for _, it := range items {
			if err := fn(it); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		pg.After = next
	}
}
