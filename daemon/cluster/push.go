package cluster

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/push"
	"github.com/keyfleet/keyfleet/daemon/store/postgres"
)

// Pushes keeps pending pushes in the database (table push_pending), so
// that every keyfleetd on it sees them: a push begun on one reaches the
// companions connected to any (a notice on channel keyfleet_push carries
// only the push's opaque id and, when filed, its factor's keyed hash, so a
// keyfleetd looks up only pushes for phones connected to it), the companion's answer may reach any, and
// the application waiting on any learns the outcome. A push is filed by a
// keyed hash of its verification and factor ids, the push (ticket, user,
// delivery) and its outcome sealed and bound to that hash: a dump shows
// no username, number, delivery or ticket. A push is claimed for answering
// once (UPDATE … WHERE state = 0 … RETURNING), so two keyfleetd given the
// same answer cannot both record it, and its outcome is taken once.
type Pushes struct {
	Pool    *pgxpool.Pool
	Sealer  Sealer
	Logger  *slog.Logger
	Timeout time.Duration // per statement (default 2s)
}

var _ push.Board = (*Pushes)(nil)

const (
	pushTable    = "push_pending"
	pushOutTable = "push_outcomes"
	pushChannel  = "keyfleet_push"
)

// Push states (column state).
const (
	pushPending  = 0
	pushClaimed  = 1
	pushDecided  = 2
	pushTakenOut = 3
)

func (c *Pushes) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	d := c.Timeout
	if d <= 0 {
		d = 2 * time.Second
	}
	return context.WithTimeout(ctx, d)
}

func (c *Pushes) key(vid, fid string) []byte { return c.Sealer.Index("push", vid, fid) }

// ID implements push.Board: the hex of the push's keyed hash.
func (c *Pushes) ID(vid, fid string) string { return hex.EncodeToString(c.key(vid, fid)) }

// Tag implements push.Board: the hex of the factor's keyed hash (column f).
func (c *Pushes) Tag(fid string) string { return hex.EncodeToString(c.factorKey(fid)) }

func (c *Pushes) factorKey(fid string) []byte { return c.Sealer.Index("push_factor", fid) }

func unavailable(what string, err error) error {
	return fmt.Errorf("%w: %s in PostgreSQL: %v", core.ErrUnavailable, what, err)
}

const putPushSQL = `WITH ins AS (
	INSERT INTO push_pending (k, f, deadline, expires, rec) VALUES ($1, $2, $3, $4, $5) RETURNING k
)
SELECT pg_notify('keyfleet_push', 'p' || encode(k, 'hex') || ':' || encode($2, 'hex')) FROM ins`

// Put implements push.Board. Errors wrap core.ErrUnavailable.
func (c *Pushes) Put(ctx context.Context, p core.Pending) error {
	plain, err := json.Marshal(p)
	if err != nil {
		return err
	}
	k := c.key(p.VerificationID, p.FactorID)
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	_, err = c.Pool.Exec(ctx, putPushSQL, k, c.factorKey(p.FactorID), p.Deadline,
		p.Deadline.Add(time.Hour), c.Sealer.Seal(pushTable, hex.EncodeToString(k), plain))
	if err != nil {
		return unavailable("keeping a pending push", err)
	}
	return nil
}

func (c *Pushes) open(k, sealed []byte) (core.Pending, error) {
	plain, err := c.Sealer.Open(pushTable, hex.EncodeToString(k), sealed)
	if err != nil {
		return core.Pending{}, fmt.Errorf("pending pushes: opening a push: %w", err)
	}
	var p core.Pending
	if err := json.Unmarshal(plain, &p); err != nil {
		return core.Pending{}, fmt.Errorf("pending pushes: decoding a push: %w", err)
	}
	return p, nil
}

func (c *Pushes) openOutcome(k, sealed []byte) (push.Outcome, error) {
	var o push.Outcome
	plain, err := c.Sealer.Open(pushOutTable, hex.EncodeToString(k), sealed)
	if err == nil {
		err = json.Unmarshal(plain, &o)
	}
	if err != nil {
		return o, fmt.Errorf("pending pushes: opening an outcome: %w", err)
	}
	return o, nil
}

// Waiting implements push.Board.
func (c *Pushes) Waiting(ctx context.Context, fid string, now time.Time) ([]core.Pending, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	rows, err := c.Pool.Query(ctx, "SELECT k, rec FROM push_pending WHERE f = $1 AND state = 0 AND deadline > $2 ORDER BY seq",
		c.factorKey(fid), now)
	if err != nil {
		return nil, unavailable("listing pending pushes", err)
	}
	var out []core.Pending
	for rows.Next() {
		var k, sealed []byte
		if err := rows.Scan(&k, &sealed); err != nil {
			return nil, unavailable("listing pending pushes", err)
		}
		p, err := c.open(k, sealed)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("listing pending pushes", err)
	}
	return out, nil
}

// Claim implements push.Board.
func (c *Pushes) Claim(ctx context.Context, vid, fid string, now time.Time) (core.Pending, error) {
	k := c.key(vid, fid)
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	var sealed []byte
	err := c.Pool.QueryRow(ctx, "UPDATE push_pending SET state = 1, claimed = $2 WHERE k = $1 AND state = 0 AND deadline > $2 RETURNING rec",
		k, now).Scan(&sealed)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return core.Pending{}, push.ErrNotPending
	case err != nil:
		return core.Pending{}, unavailable("claiming a pending push", err)
	}
	p, err := c.open(k, sealed)
	if err == nil && (p.VerificationID != vid || p.FactorID != fid) {
		err = errors.New("pending pushes: a push filed under another's id")
	}
	return p, err
}

// Release implements push.Board.
func (c *Pushes) Release(ctx context.Context, vid, fid string) error {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	if _, err := c.Pool.Exec(ctx, "UPDATE push_pending SET state = 0, claimed = NULL WHERE k = $1 AND state = 1", c.key(vid, fid)); err != nil {
		return unavailable("putting back a pending push", err)
	}
	return nil
}

const decidePushSQL = `WITH up AS (
	UPDATE push_pending SET state = 2, out = $2, expires = $3 WHERE k = $1 AND state = 1 RETURNING k
)
SELECT pg_notify('keyfleet_push', 'd' || encode(k, 'hex')) FROM up`

// Decide implements push.Board.
func (c *Pushes) Decide(ctx context.Context, vid, fid string, o push.Outcome, until time.Time) error {
	plain, err := json.Marshal(o)
	if err != nil {
		return err
	}
	k := c.key(vid, fid)
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	if _, err := c.Pool.Exec(ctx, decidePushSQL, k, c.Sealer.Seal(pushOutTable, hex.EncodeToString(k), plain), until); err != nil {
		return unavailable("recording a push's outcome", err)
	}
	return nil
}

// Result implements push.Board: the outcome is taken once (state 2 to 3
// in one statement); the row stays until swept, for the other keyfleetd's
// closed events.
func (c *Pushes) Result(ctx context.Context, vid, fid string) (push.Outcome, bool, error) {
	k := c.key(vid, fid)
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	var sealed []byte
	var state int16
	err := c.Pool.QueryRow(ctx, `WITH took AS (
		UPDATE push_pending SET state = 3 WHERE k = $1 AND state = 2 RETURNING out
	)
	SELECT 2::smallint, out FROM took
	UNION ALL SELECT state, NULL FROM push_pending WHERE k = $1 AND state IN (0, 1)`, k).Scan(&state, &sealed)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return push.Outcome{}, false, push.ErrNotPending
	case err != nil:
		return push.Outcome{}, false, unavailable("reading a push's outcome", err)
	case state != pushDecided:
		return push.Outcome{}, false, nil
	}
	o, err := c.openOutcome(k, sealed)
	return o, err == nil, err
}

const duePushSQL = `UPDATE push_pending SET state = 1, claimed = $1 WHERE k IN (
	SELECT k FROM push_pending WHERE (state = 0 AND deadline <= $1) OR (state = 1 AND claimed <= $2)
	ORDER BY deadline LIMIT $3 FOR UPDATE SKIP LOCKED
) RETURNING k, rec`

// Due implements push.Board.
func (c *Pushes) Due(ctx context.Context, now, stale time.Time, n int) ([]core.Pending, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	if _, err := c.Pool.Exec(ctx, "DELETE FROM push_pending WHERE expires <= $1", now); err != nil {
		return nil, unavailable("sweeping push outcomes", err)
	}
	if _, err := c.Pool.Exec(ctx, "DELETE FROM push_seen WHERE expires <= $1", now); err != nil {
		return nil, unavailable("sweeping companions' requests", err)
	}
	rows, err := c.Pool.Query(ctx, duePushSQL, now, stale, n)
	if err != nil {
		return nil, unavailable("claiming pushes past their deadline", err)
	}
	defer rows.Close()
	var out []core.Pending
	for rows.Next() {
		var k, sealed []byte
		if err := rows.Scan(&k, &sealed); err != nil {
			return out, unavailable("claiming pushes past their deadline", err)
		}
		p, err := c.open(k, sealed)
		if err != nil {
			c.warn("a pending push that does not open is left to its sweep", err)
			continue
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return out, unavailable("claiming pushes past their deadline", err)
	}
	return out, nil
}

func (c *Pushes) warn(what string, err error) {
	if c.Logger != nil {
		c.Logger.Warn(what, "err", err)
	}
}

// FirstSeen implements push.Board: the request is filed by a keyed hash
// of the device and its signing time; a second insert finds it.
func (c *Pushes) FirstSeen(ctx context.Context, fid string, signedAt int64, until time.Time) (bool, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	k := c.Sealer.Index("push_request", fid, strconv.FormatInt(signedAt, 10))
	tag, err := c.Pool.Exec(ctx, "INSERT INTO push_seen (k, expires) VALUES ($1, $2) ON CONFLICT (k) DO NOTHING", k, until)
	if err != nil {
		return false, unavailable("recording a companion's request", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Count implements push.Board.
func (c *Pushes) Count(ctx context.Context, now time.Time) (int, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	var n int
	if err := c.Pool.QueryRow(ctx, "SELECT count(*) FROM push_pending WHERE state = 0 AND deadline > $1", now).Scan(&n); err != nil {
		return 0, unavailable("counting pending pushes", err)
	}
	return n, nil
}

// Lookup implements push.Board.
func (c *Pushes) Lookup(ctx context.Context, id string) (core.Pending, *push.Outcome, error) {
	k, err := hex.DecodeString(id)
	if err != nil {
		return core.Pending{}, nil, push.ErrNotPending
	}
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	var rec, out []byte
	err = c.Pool.QueryRow(ctx, "SELECT rec, out FROM push_pending WHERE k = $1", k).Scan(&rec, &out)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return core.Pending{}, nil, push.ErrNotPending
	case err != nil:
		return core.Pending{}, nil, unavailable("reading a pending push", err)
	}
	p, err := c.open(k, rec)
	if err != nil || out == nil {
		return p, nil, err
	}
	o, err := c.openOutcome(k, out)
	return p, &o, err
}

// Listen implements push.Board on a connection of its own, outside the
// pool, reconnecting a second after a lost one.
func (c *Pushes) Listen(ctx context.Context, ready func(), fn func(push.BoardNotice)) {
	for ctx.Err() == nil {
		err := c.listenOnce(ctx, ready, fn)
		if ctx.Err() != nil {
			return
		}
		c.warn("listening for pushes of other keyfleetd; retrying", postgres.Redact(err))
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (c *Pushes) listenOnce(ctx context.Context, ready func(), fn func(push.BoardNotice)) error {
	conn, err := pgx.ConnectConfig(ctx, c.Pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pushChannel); err != nil {
		return err
	}
	ready()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if len(n.Payload) < 2 || (n.Payload[0] != 'p' && n.Payload[0] != 'd') {
			continue
		}
		id, tag, _ := strings.Cut(n.Payload[1:], ":")
		fn(push.BoardNotice{ID: id, Decided: n.Payload[0] == 'd', Tag: tag})
	}
}
