package core

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/keyfleet/keyfleet/api"
)

// MaxImportRows bounds one import: it is one transaction.
const MaxImportRows = 5000

// ImportError lists every bad row of an import. It wraps ErrInvalid.
type ImportError struct{ Rows []api.ImportRowError }

func (e *ImportError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d bad rows; nothing was imported:", len(e.Rows))
	for i, r := range e.Rows {
		if i == 10 {
			fmt.Fprintf(&b, " … and %d more", len(e.Rows)-10)
			break
		}
		fmt.Fprintf(&b, " row %d %s: %s;", r.Row, r.Field, r.Reason)
	}
	return strings.TrimSuffix(b.String(), ";")
}

func (e *ImportError) Unwrap() error { return ErrInvalid }

// ImportUsers creates or updates users in bulk. Every row is validated
// first, and the whole import is one transaction: one bad row, or a
// failure half way, changes nothing. Existing users keep their kind and
// status; their display name, email, groups and roles take the row's
// values where the row gives them.
func (s *Service) ImportUsers(ctx context.Context, p Principal, in api.ImportUsers) (api.ImportResult, error) {
	if err := p.authorize(CreateUsers, ""); err != nil {
		return api.ImportResult{}, err
	}
	if err := p.authorize(UpdateUsers, ""); err != nil {
		return api.ImportResult{}, err
	}
	if len(in.Users) == 0 || len(in.Users) > MaxImportRows {
		return api.ImportResult{}, invalid("users", "an import holds 1 to %d users, not %d; split the file", MaxImportRows, len(in.Users))
	}
	rows, err := s.checkRows(in.Users)
	if err != nil {
		return api.ImportResult{}, err
	}
	out := api.ImportResult{DryRun: in.DryRun}
	err = s.store.Update(ctx, func(tx Tx) error {
		out = api.ImportResult{DryRun: in.DryRun}
		for i, u := range rows {
			if err := s.importRow(ctx, tx, p, u, in.Users[i], &out); err != nil {
				return fmt.Errorf("row %d (%s): %w", i+1, u.Username, err)
			}
		}
		if in.DryRun {
			return errDryRun
		}
		return nil
	})
	if errors.Is(err, errDryRun) {
		err, out.Approvals = nil, nil // rolled back with the rest: nothing to approve
	}
	return out, err
}

var errDryRun = errors.New("dry run")

// checkRows validates every row and reports all the bad ones at once.
func (s *Service) checkRows(in []api.CreateUser) ([]User, error) {
	var bad []api.ImportRowError
	seen := map[string]int{}
	rows := make([]User, len(in))
	for i, row := range in {
		u, err := s.newUser(row)
		var ve *ValidationError
		switch {
		case errors.As(err, &ve):
			bad = append(bad, api.ImportRowError{Row: i + 1, Field: ve.Field, Reason: ve.Reason})
		case err != nil:
			return nil, err
		case seen[u.Username] > 0:
			bad = append(bad, api.ImportRowError{Row: i + 1, Field: "username", Reason: fmt.Sprintf("%q is also on row %d", u.Username, seen[u.Username])})
		}
		seen[row.Username] = i + 1
		rows[i] = u
	}
	if len(bad) > 0 {
		return nil, &ImportError{Rows: bad}
	}
	return rows, nil
}

func (s *Service) importRow(ctx context.Context, tx Tx, p Principal, u User, row api.CreateUser, out *api.ImportResult) error {
	cur, err := tx.UserByName(u.Username)
	if isNotFound(err) {
		return s.importNew(ctx, tx, p, u, out)
	}
	if err != nil {
		return err
	}
	if row.Kind != "" && row.Kind != cur.Kind {
		return invalid("kind", "%s exists as a %s; the kind of a user cannot change", cur.Username, cur.Kind)
	}
	c, err := s.splitAccess(tx, p, cur, mergeImported(cur, u, row))
	if err != nil {
		return err
	}
	next := c.next
	if !userChanged(cur, next) && !c.needsApproval() {
		out.Unchanged++
		return nil
	}
	if userChanged(cur, next) {
		next.UpdatedAt = s.now()
		if err := tx.PutUser(next); err != nil {
			return err
		}
		out.Updated++
		ev := s.event(ctx, p, "user.update", userTarget(next))
		ev.Before, ev.After, ev.Extra = cur.summary(), next.summary(), map[string]string{"import": "true"}
		if err := tx.Audit(ev); err != nil {
			return err
		}
	}
	return s.importRequest(ctx, tx, p, next, c, out)
}

// importNew creates a row's user; roles beyond "user" wait for approval.
func (s *Service) importNew(ctx context.Context, tx Tx, p Principal, u User, out *api.ImportResult) error {
	u, c, err := s.insertUser(ctx, tx, p, u, map[string]string{"import": "true"})
	if err != nil {
		return err
	}
	out.Created++
	return s.importRequest(ctx, tx, p, u, c, out)
}

// importRequest records the part of a row's change that waits for approval.
func (s *Service) importRequest(ctx context.Context, tx Tx, p Principal, u User, c accessChange, out *api.ImportResult) error {
	a, err := s.applyAccess(ctx, tx, p, u, c, "import")
	if err == nil && a.ID != "" {
		out.Approvals = append(out.Approvals, a.ID)
	}
	return err
}

// mergeImported takes the row's values where the row gives them.
func mergeImported(cur, u User, row api.CreateUser) User {
	next := cur
	if row.DisplayName != "" {
		next.DisplayName = u.DisplayName
	}
	if row.Email != "" {
		next.Email = u.Email
	}
	if row.Groups != nil {
		next.Groups = u.Groups
	}
	if row.Roles != nil {
		next.Roles = u.Roles
	}
	return next
}
