package core

import (
	"context"
	"fmt"
	"time"

	"github.com/keyfleet/keyfleet/api"
)

// A fresh installation has nobody to approve anything, so its first
// administrators are made once, by keyfleetd init, outside the two-person
// rule: Bootstrap refuses a store that has any user, and every account it
// makes is a high-severity event marked bootstrap. Each founding admin
// gets an onboarding pass for their first security key (hardware only);
// the first also gets a token for the command line, which expires.
// docs/security.md ("Bootstrap") says how a one-admin install grows a
// second approver: a second founding admin at init, or the break-glass
// quorum approving the first grant.

// bootstrapPassTTL is how long a founding admin's pass lasts: longer than
// a recovery pass, since the founders enrol in the days after install.
const bootstrapPassTTL = 72 * time.Hour

// Founder is one founding administrator Bootstrap made: their user and
// the code of their onboarding pass (shown once).
type Founder struct {
	User     User
	PassCode string
}

// Bootstrap makes the founding administrators and a token for the first
// one, lasting tokenTTL (0: Config.PersonTokenTTL). Errors:
// ErrAlreadyExists when the store has a user already, *ValidationError.
func (s *Service) Bootstrap(ctx context.Context, usernames []string, tokenTTL time.Duration) ([]Founder, string, error) {
	if len(usernames) == 0 {
		return nil, "", invalid("admins", "name at least one founding administrator")
	}
	if tokenTTL == 0 {
		tokenTTL = s.cfg.PersonTokenTTL
	}
	var founders []Founder
	var secret string
	err := s.store.Update(ctx, func(tx Tx) error {
		founders, secret = nil, ""
		if existing, _, err := tx.Users(UserFilter{}, PageReq{Limit: 1}); err != nil || len(existing) > 0 {
			if err == nil {
				err = fmt.Errorf("%w: this store has users already; bootstrap runs once, at keyfleetd init", ErrAlreadyExists)
			}
			return err
		}
		for i, name := range usernames {
			f, err := s.found(ctx, tx, name)
			if err != nil {
				return err
			}
			founders = append(founders, f)
			if i == 0 {
				if secret, err = s.bootstrapToken(ctx, tx, f.User, tokenTTL); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return founders, secret, err
}

// found makes one founding administrator and their pass.
func (s *Service) found(ctx context.Context, tx Tx, name string) (Founder, error) {
	// The user role too, as every person has: their own factors and tokens.
	u, err := s.newUser(api.CreateUser{Username: name, DisplayName: "Founding administrator", Roles: []string{api.RoleAdmin, api.RoleUser}})
	if err != nil {
		return Founder{}, err
	}
	u.ID = newID(prefixUser, u.CreatedAt, s.cfg.Rand)
	u.Grants = map[string]RoleGrant{api.RoleAdmin: {By: System.Actor(), At: u.CreatedAt}}
	if err := tx.InsertUser(u); err != nil {
		return Founder{}, err
	}
	ev := s.eventCtx(ctx, System, "keyfleetd init: founding administrator")
	ev.extra = map[string]string{"bootstrap": "true"}
	ev.privileged()
	if err := ev.audit(tx, "user.create", userTarget(u), nil, u.summary()); err != nil {
		return Founder{}, err
	}
	pass, err := s.makePass(ctx, tx, System, u.ID, "", api.IssuePass{HardwareOnly: true})
	if err != nil {
		return Founder{}, err
	}
	p, err := tx.AccessPass(pass.PassID)
	if err != nil {
		return Founder{}, err
	}
	p.ExpiresAt = u.CreatedAt.Add(bootstrapPassTTL)
	return Founder{User: u, PassCode: pass.Code}, tx.PutAccessPass(p)
}

func (s *Service) bootstrapToken(ctx context.Context, tx Tx, u User, ttl time.Duration) (string, error) {
	t, secret, err := s.mintToken(u, "bootstrap", u.Roles, ttl, System.UserID)
	if err != nil {
		return "", err
	}
	if err := tx.PutToken(t); err != nil {
		return "", err
	}
	ev := s.eventCtx(ctx, System, "keyfleetd init")
	ev.extra = map[string]string{"bootstrap": "true"}
	ev.privileged()
	return secret, ev.audit(tx, "token.create", targetRef{"token", t.ID, t.Name}, nil, tokenSummary(t))
}
