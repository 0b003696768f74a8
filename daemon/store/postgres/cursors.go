package postgres

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/keyfleet/keyfleet/daemon/events"
)

// Sink cursors and dead letters: delivery bookkeeping, without audit
// events (as in the Badger store). Each cursor keeps the epoch it was
// saved in.

// Cursor returns the sink's last delivered seq, or events.ErrNoCursor.
func (s *Store) Cursor(ctx context.Context, sink string) (uint64, error) {
	var seq int64
	err := s.pool.QueryRow(ctx, "SELECT seq FROM sink_cursors WHERE sink = $1", sink).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, events.ErrNoCursor
	}
	return uint64(seq), mapErr(err)
}

// CursorEpoch is the epoch saved with the sink's cursor.
func (s *Store) CursorEpoch(ctx context.Context, sink string) (string, error) {
	var epoch string
	err := s.pool.QueryRow(ctx, "SELECT epoch FROM sink_cursors WHERE sink = $1", sink).Scan(&epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return epoch, mapErr(err)
}

// SetCursor records the sink's progress in the current epoch.
func (s *Store) SetCursor(ctx context.Context, sink string, seq uint64) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO sink_cursors (sink, seq, epoch) VALUES ($1, $2, $3)
		ON CONFLICT (sink) DO UPDATE SET seq = EXCLUDED.seq, epoch = EXCLUDED.epoch`, sink, int64(seq), s.Epoch())
	return mapErr(err)
}

// AddDeadLetter records a batch a sink gave up on.
func (s *Store) AddDeadLetter(ctx context.Context, d events.DeadLetter) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	at := d.At.UnixNano()
	_, err = s.pool.Exec(ctx, "INSERT INTO dead_letters (sink, at, rec) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
		d.Sink, at, s.box.seal("dead_letters", d.Sink, b))
	return mapErr(err)
}

// DeadLetters lists a sink's dead letters, oldest first.
func (s *Store) DeadLetters(ctx context.Context, sink string) ([]events.DeadLetter, error) {
	rows, err := s.pool.Query(ctx, "SELECT rec FROM dead_letters WHERE sink = $1 ORDER BY at", sink)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []events.DeadLetter
	for rows.Next() {
		var sealed []byte
		if err := rows.Scan(&sealed); err != nil {
			return nil, err
		}
		plain, err := s.box.open("dead_letters", sink, sealed)
		if err != nil {
			return nil, err
		}
		var d events.DeadLetter
		if err := json.Unmarshal(plain, &d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, mapErr(rows.Err())
}

// Sweep deletes what outlived its use: verifications and their
// used-markers a minute past expiry, expired web sessions and rate-limit
// buckets that have filled up again (they hold nothing a missing one does
// not). The leader runs it (daemon/cluster).
func (s *Store) Sweep(ctx context.Context) error {
	b := &pgx.Batch{}
	b.Queue("DELETE FROM verifications WHERE expires < now()")
	b.Queue("DELETE FROM verifications_used WHERE expires < now()")
	b.Queue("DELETE FROM web_sessions WHERE expires < now()")
	b.Queue("DELETE FROM rate_buckets WHERE full_at < now()")
	return mapErr(s.pool.SendBatch(ctx, b).Close())
}
