package cluster

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/radius"
)

// RadiusChallenges keeps the RADIUS listener's open Access-Challenges in
// the database (table radius_challenges), so that a NAS that lists
// several keyfleetd may send the answer to any of them, and a restart
// keeps them. A challenge is filed by a keyed hash of its State handle
// (never the handle: a dump cannot answer it) and sealed, bound to that
// hash; taking it deletes it in the same statement, so two keyfleetd
// given the same State cannot both take it. One user holds at most
// MaxPerUser open challenges (a new one pushes out the one that expires
// first); expired ones are swept.
type RadiusChallenges struct {
	Pool   *pgxpool.Pool
	Sealer Sealer
	// MaxPerUser bounds one user's open challenges (default 16).
	MaxPerUser int
	Timeout    time.Duration // per statement (default 2s)
}

var _ radius.Challenges = (*RadiusChallenges)(nil)

const challengesTable = "radius_challenges"

func (c *RadiusChallenges) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	d := c.Timeout
	if d <= 0 {
		d = 2 * time.Second
	}
	return context.WithTimeout(ctx, d)
}

func (c *RadiusChallenges) key(state []byte) []byte {
	return c.Sealer.Index("radius_state", string(state))
}

// putSQL files a challenge and trims the user's open challenges to the
// newest $6 (the DELETE sees the table as it was before the INSERT, so
// it keeps $6 - 1 besides the new one).
const putSQL = `WITH ins AS (
	INSERT INTO radius_challenges (k, u, expires, rec) VALUES ($1, $2, $3, $4)
)
DELETE FROM radius_challenges WHERE k IN (
	SELECT k FROM radius_challenges WHERE u = $2 ORDER BY expires DESC OFFSET $5
)`

// Put implements radius.Challenges. Errors wrap core.ErrUnavailable.
func (c *RadiusChallenges) Put(ctx context.Context, state []byte, ch radius.Challenge) error {
	if len(state) != radius.StateLen {
		return fmt.Errorf("radius challenges: a State handle is %d bytes", radius.StateLen)
	}
	plain, err := json.Marshal(ch)
	if err != nil {
		return err
	}
	k := c.key(state)
	keep := c.MaxPerUser
	if keep <= 0 {
		keep = 16
	}
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	_, err = c.Pool.Exec(ctx, putSQL, k, c.Sealer.Index("radius_user", ch.User), ch.Expires,
		c.Sealer.Seal(challengesTable, hex.EncodeToString(k), plain), keep-1)
	if err != nil {
		return fmt.Errorf("%w: keeping a RADIUS challenge in PostgreSQL: %v", core.ErrUnavailable, err)
	}
	return nil
}

// Take implements radius.Challenges. Errors: radius.ErrNoChallenge, or
// one wrapping core.ErrUnavailable when the database did not answer.
func (c *RadiusChallenges) Take(ctx context.Context, state []byte, client, user string, now time.Time) (radius.Challenge, error) {
	if len(state) != radius.StateLen {
		return radius.Challenge{}, radius.ErrNoChallenge
	}
	k := c.key(state)
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	var sealed []byte
	err := c.Pool.QueryRow(ctx, "DELETE FROM radius_challenges WHERE k = $1 RETURNING rec", k).Scan(&sealed)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return radius.Challenge{}, radius.ErrNoChallenge
	case err != nil:
		return radius.Challenge{}, fmt.Errorf("%w: taking a RADIUS challenge from PostgreSQL: %v", core.ErrUnavailable, err)
	}
	plain, err := c.Sealer.Open(challengesTable, hex.EncodeToString(k), sealed)
	if err != nil {
		return radius.Challenge{}, fmt.Errorf("radius challenges: opening a challenge: %w", err)
	}
	var ch radius.Challenge
	if err := json.Unmarshal(plain, &ch); err != nil {
		return radius.Challenge{}, fmt.Errorf("radius challenges: decoding a challenge: %w", err)
	}
	if !ch.Answers(client, user, now) {
		return radius.Challenge{}, radius.ErrNoChallenge
	}
	return ch, nil
}

// Sweep implements radius.Challenges: it deletes expired challenges.
func (c *RadiusChallenges) Sweep(ctx context.Context, now time.Time) error {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	if _, err := c.Pool.Exec(ctx, "DELETE FROM radius_challenges WHERE expires <= $1", now); err != nil {
		return fmt.Errorf("%w: sweeping RADIUS challenges in PostgreSQL: %v", core.ErrUnavailable, err)
	}
	return nil
}
