package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyfleet/keyfleet/daemon/audit"

	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyfleet/keyfleet/daemon/core"
)

// queued runs a transaction's writes without waiting for each: every
// statement is queued and sent in large batches. It answers every write
// as one row affected and refuses reads; LoadForBench uses it to build
// benchmark data with the store's own write methods.
type queued struct {
	ctx   context.Context
	tx    pgx.Tx
	batch *pgx.Batch
}

func (q *queued) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	q.batch.Queue(sql, args...)
	if q.batch.Len() >= 5000 {
		return pgconn.NewCommandTag("INSERT 0 1"), q.flush()
	}
	return pgconn.NewCommandTag("INSERT 0 1"), nil
}

func (q *queued) flush() error {
	if q.batch.Len() == 0 {
		return nil
	}
	err := q.tx.SendBatch(q.ctx, q.batch).Close()
	q.batch = &pgx.Batch{}
	return err
}

var errWriteOnly = errors.New("LoadForBench: the fill function may only write")

func (q *queued) Query(context.Context, string, ...any) (pgx.Rows, error) { return nil, errWriteOnly }
func (q *queued) QueryRow(context.Context, string, ...any) pgx.Row        { return errRow{} }
func (q *queued) SendBatch(context.Context, *pgx.Batch) pgx.BatchResults  { panic(errWriteOnly) }

type errRow struct{}

func (errRow) Scan(...any) error { return errWriteOnly }

// LoadForBench calls fill(tx, i) for every i < n, on two connections at
// once, committing every 10,000: for benchmarks that need a million users
// in minutes. fill may only write.
func (s *Store) LoadForBench(ctx context.Context, n int, fill func(tx core.Tx, i int) error) error {
	const chunk = 10_000
	errs := make(chan error, 2)
	for w := range 2 {
		go func() {
			for from := w * chunk; from < n; from += 2 * chunk {
				if err := s.loadChunk(ctx, from, min(from+chunk, n), fill); err != nil {
					errs <- fmt.Errorf("users %d…: %w", from, err)
					return
				}
			}
			errs <- nil
		}()
	}
	return errors.Join(<-errs, <-errs)
}

func (s *Store) loadChunk(ctx context.Context, from, to int, fill func(core.Tx, int) error) error {
	ptx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer ptx.Rollback(context.WithoutCancel(ctx))
	q := &queued{ctx: ctx, tx: ptx, batch: &pgx.Batch{}}
	t := newTx(ctx, s, q, nil, nil, false)
	for i := from; i < to; i++ {
		if err := fill(t, i); err != nil {
			return err
		}
	}
	if err := q.flush(); err != nil {
		return err
	}
	return ptx.Commit(ctx)
}

// AppendStats counts the commits appended pipelined and locked, and the
// guesses of the head that failed (append.go).
func (s *Store) AppendStats() (pipelined, locked, moved uint64) {
	return s.app.pipelined.Load(), s.app.lockedN.Load(), s.app.moved.Load()
}

// Grouped is how many transactions were committed in groups of two or
// more (group.go).
func (s *Store) Grouped() uint64 { return s.grouped.Load() }

// GuessTail makes this store believe the chain ends at h.
func (s *Store) GuessTail(h audit.Head) {
	s.app.mu.Lock()
	defer s.app.mu.Unlock()
	s.app.tail, s.app.until = &h, time.Time{}
}

// Retries counts the transactions run again after a collision.
func (s *Store) Retries() uint64 { return s.retries.Load() }
