package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
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

// takeSQL is the statement that decides one attempt on n buckets. want
// reads the buckets and locks them; an attempt goes ahead when every
// bucket has a row (take inserts the missing ones, made full, and asks
// again) and, for each, the time it will be full less now is within its
// tolerance ((burst - 1) tokens' worth); then each moves one token's
// time further. $1 is now; bucket j's key, token time and tolerance are
// the three parameters after those of bucket j-1. Each bucket is its own
// parameters, not an element of an array: PostgreSQL planned the same
// statement over arrays again at every run, as it cannot size them ahead
// (about 100 µs of its CPU an attempt, more than running it), and its
// generic plan over arrays joins the whole table by hash (seven times
// slower); over parameters it keeps one generic plan, an index look-up
// per bucket.
func takeSQL(n int) string {
	var rows strings.Builder
	for j := range n {
		if j > 0 {
			rows.WriteString(", ")
		}
		fmt.Fprintf(&rows, "($%d::bytea, $%d::bigint, $%d::bigint, %d)", 2+3*j, 3+3*j, 4+3*j, j+1)
	}
	return `WITH p(k, every_us, tol_us, i) AS (VALUES ` + rows.String() + `), want AS (
	SELECT p.i, b.k, greatest(b.full_at, $1::timestamptz) AS base, p.every_us, p.tol_us
	FROM p JOIN rate_buckets b ON b.k = p.k
	FOR UPDATE OF b
), ok AS (
	SELECT bool_and(base - $1::timestamptz <= tol_us * interval '1 microsecond') AND count(*) = ` + strconv.Itoa(n) + ` AS ok FROM want
), upd AS (
	UPDATE rate_buckets r SET full_at = w.base + w.every_us * interval '1 microsecond'
	FROM want w, ok WHERE ok.ok AND r.k = w.k
)
SELECT want.i, want.base, ok.ok FROM want, ok ORDER BY want.i`
}

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

// take decides one attempt in one implicit transaction (takeSQL).
// Buckets seen for the first time
// have no row yet: want then finds fewer than asked, nothing is taken,
// and the attempt is decided again after an INSERT of the missing ones
// (made full), which most attempts, on buckets seen before, do not need.
func (s *Buckets) take(ctx context.Context, now time.Time, buckets []ratelimit.Bucket, keys [][]byte, every, tol []int64) (int, time.Duration, error) {
	base, ok, err := s.decide(ctx, now, keys, every, tol, false)
	if err == nil && !ok && slices.Contains(base, time.Time{}) {
		base, ok, err = s.decide(ctx, now, keys, every, tol, true)
	}
	if err != nil {
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

// decide runs takeSQL (after the INSERT of missing buckets when insert)
// and returns each bucket's base (zero for a bucket with no row) and
// whether the attempt went ahead.
func (s *Buckets) decide(ctx context.Context, now time.Time, keys [][]byte, every, tol []int64, insert bool) ([]time.Time, bool, error) {
	batch := &pgx.Batch{}
	if insert {
		sorted := slices.SortedFunc(slices.Values(keys), func(a, b []byte) int { return slices.Compare(a, b) })
		batch.Queue(`INSERT INTO rate_buckets (k, full_at) SELECT unnest($1::bytea[]), '-infinity' ON CONFLICT (k) DO NOTHING`, sorted)
	}
	args := []any{now}
	for j := range keys {
		args = append(args, keys[j], every[j], tol[j])
	}
	batch.Queue(takeSQL(len(keys)), args...)
	res := s.Pool.SendBatch(ctx, batch) // one implicit transaction
	defer res.Close()
	for range batch.Len() - 1 {
		if _, err := res.Exec(); err != nil {
			return nil, false, err
		}
	}
	rows, err := res.Query()
	if err != nil {
		return nil, false, err
	}
	base := make([]time.Time, len(keys))
	ok := false
	for rows.Next() {
		var i int
		var t time.Time
		if err := rows.Scan(&i, &t, &ok); err != nil {
			return nil, false, err
		}
		base[i-1] = t
	}
	return base, ok, rows.Err() // ok only when every bucket had its row (takeSQL)
}

func deadlocked(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}
