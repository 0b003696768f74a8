package cluster

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// AttemptLimiter counts attempts per client in fixed windows: the
// shared-state side of the per-address limits on guessing codes and
// passes. An implementation in memory serves one keyfleetd; [Attempts]
// serves several.
type AttemptLimiter interface {
	// Allow records an attempt by client (an address or any key) at now
	// and reports whether it is within limit per window.
	Allow(ctx context.Context, client string, now time.Time) (bool, error)
}

// Attempts is an AttemptLimiter in the database (table attempts): one
// counter per client and window, incremented in one statement, so that
// attempts spread over several keyfleetd add up. Clients are filed by a
// keyed hash (no address in a dump).
type Attempts struct {
	Pool   *pgxpool.Pool
	Sealer Sealer
	// Name separates limits ("passes", "web-signin"); Limit is how many
	// attempts a window allows (default 10) and Window its length
	// (default 1m).
	Name   string
	Limit  int
	Window time.Duration
}

var _ AttemptLimiter = (*Attempts)(nil)

// Allow implements AttemptLimiter. It fails closed: an error means the
// attempt was not counted, and the caller should refuse it.
func (a *Attempts) Allow(ctx context.Context, client string, now time.Time) (bool, error) {
	if host, _, err := net.SplitHostPort(client); err == nil {
		client = host
	}
	limit, window := a.Limit, a.Window
	if limit <= 0 {
		limit = 10
	}
	if window <= 0 {
		window = time.Minute
	}
	key := fmt.Sprintf("%x", a.Sealer.Index("attempts", a.Name, client))
	var n int
	err := a.Pool.QueryRow(ctx, `INSERT INTO attempts (k, window_start, n) VALUES ($1, $2, 1)
		ON CONFLICT (k, window_start) DO UPDATE SET n = attempts.n + 1 RETURNING n`,
		key, now.Truncate(window)).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("counting an attempt: %w", err)
	}
	return n <= limit, nil
}
