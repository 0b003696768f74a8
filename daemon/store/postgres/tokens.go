package postgres

import (
	"context"
	"fmt"

	"github.com/keyfleet/keyfleet/daemon/core"
)

var _ core.TokenReader = (*Store)(nil)

// tokenWithUserSQL reads a token and its user in one statement: one
// snapshot (a statement outside a transaction sees what was committed
// when it began) and one round trip, where View would take three (BEGIN
// with the first read, the second read, COMMIT).
const tokenWithUserSQL = `SELECT t.rec, u.k, u.rec FROM tokens t LEFT JOIN users u ON u.k = t.user_id WHERE t.k = $1`

// TokenWithUser is core.TokenReader: token id and its user, read
// together. A missing token is a *core.NotFoundError; a missing user a
// zero User.
func (s *Store) TokenWithUser(ctx context.Context, id string) (core.Token, core.User, error) {
	if s.closed.Load() {
		return core.Token{}, core.User{}, fmt.Errorf("%w: the store is closed", core.ErrUnavailable)
	}
	var tokRec, userRec []byte
	var userID *string
	err := s.pool.QueryRow(ctx, tokenWithUserSQL, id).Scan(&tokRec, &userID, &userRec)
	if isNoRows(err) {
		return core.Token{}, core.User{}, &core.NotFoundError{Kind: "token", Ref: id}
	}
	if err != nil {
		return core.Token{}, core.User{}, mapErr(fmt.Errorf("reading token %s: %w", id, err))
	}
	t, err := decode[core.Token](s.box, tTokens, id, tokRec, "token")
	if err != nil || userID == nil {
		return t, core.User{}, err
	}
	u, err := decode[core.User](s.box, tUsers, *userID, userRec, "user")
	return t, u, err
}
