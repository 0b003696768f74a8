package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/ratelimit"
)

// Buckets keeps the attempt limiter's token buckets in the database
// (table rate_buckets), so that attempts spread over several keyfleetd
// count together: a ratelimit.Shared, giving the decisions the limiter
// makes in memory. Each bucket is one row holding the time it will be
// full again (the generic cell rate algorithm: a token bucket kept as
// one timestamp); one attempt is one statement that locks its buckets,
// decides, and takes a token from each only when all have one. Buckets
// are filed by a keyed hash of their key (no client address in a dump).
type Buckets struct {
	Pool   *pgxpool.Pool
	Sealer Sealer
}

var _ ratelimit.Shared = (*Buckets)(nil)

// takeSQL decides one attempt. want reads the buckets (made full by the
// INSERT before it when missing) and locks them; an attempt goes ahead
// when, for every bucket, the time it will be full less now is within
// its tolerance ((burst - 1) tokens' worth); then each moves one token's
// time further.
const takeSQL = `WITH want AS (
	SELECT p.i, b.k, greatest(b.full_at, $2::timestamptz) AS base, p.every_us, p.tol_us
	FROM unnest($1::bytea[], $3::bigint[], $4::bigint[]) WITH ORDINALITY AS p(k, every_us, tol_us, i)
	JOIN rate_buckets b ON b.k = p.k
	FOR UPDATE OF b
), ok AS (
	SELECT bool_and(base - $2::timestamptz <= tol_us * interval '1 microsecond') AS ok FROM want
), upd AS (
	UPDATE rate_buckets r SET full_at = w.base + w.every_us * interval '1 microsecond'
	FROM want w, ok WHERE ok.ok AND r.k = w.k
)
SELECT want.i, want.base, ok.ok FROM want, ok ORDER BY want.i`

// Take implements ratelimit.Shared. Errors wrap core.ErrUnavailable:
// the database did not answer, and nothing was counted.
func (s *Buckets) Take(ctx context.Context, now time.Time, buckets []ratelimit.Bucket) (int, time.Duration, error) {
	now = now.Truncate(time.Microsecond) // PostgreSQL's precision
	keys, every, tol := s.args(buckets)
	for attempt := 0; ; attempt++ {
		refused, wait, err := s.take(ctx, now, buckets, keys, every, tol)
		if err == nil || attempt == 3 || !deadlocked(err) {
			if err != nil {
				return 0, 0, fmt.Errorf("%w: counting an attempt in PostgreSQL: %v", core.ErrUnavailable, err)
			}
			return refused, wait, nil
		}
	}
}

// args are the statement's arrays. The buckets are locked in the order
// of their hashes, so that two attempts sharing buckets never wait for
// each other in a circle.
func (s *Buckets) args(buckets []ratelimit.Bucket) (keys [][]byte, every, tol []int64) {
	for _, b := range buckets {
		keys = append(keys, s.Sealer.Index("ratelimit", b.Key))
		every = append(every, b.Every.Microseconds())
		tol = append(tol, int64(b.Burst-1)*b.Every.Microseconds())
	}
	return keys, every, tol
}

func (s *Buckets) take(ctx context.Context, now time.Time, buckets []ratelimit.Bucket, keys [][]byte, every, tol []int64) (int, time.Duration, error) {
	sorted := slices.SortedFunc(slices.Values(keys), func(a, b []byte) int { return slices.Compare(a, b) })
	batch := &pgx.Batch{}
	batch.Queue(`INSERT INTO rate_buckets (k, full_at) SELECT unnest($1::bytea[]), '-infinity' ON CONFLICT (k) DO NOTHING`, sorted)
	batch.Queue(takeSQL, keys, now, every, tol)
	res := s.Pool.SendBatch(ctx, batch) // one implicit transaction
	defer res.Close()
	if _, err := res.Exec(); err != nil {
		return 0, 0, err
	}
	rows, err := res.Query()
	if err != nil {
		return 0, 0, err
	}
	base := make([]time.Time, len(buckets))
	ok := false
	for rows.Next() {
		var i int
		var t time.Time
		if err := rows.Scan(&i, &t, &ok); err != nil {
			return 0, 0, err
		}
		base[i-1] = t
	}
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	if ok {
		return -1, 0, nil
	}
	for i, b := range base {
		if wait := b.Sub(now) - time.Duration(tol[i])*time.Microsecond; wait > 0 {
			return i, wait, nil
		}
	}
	return 0, 0, errors.New("the buckets refused an attempt none of them is full for")
}

func deadlocked(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}
