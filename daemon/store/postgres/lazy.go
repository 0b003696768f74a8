package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Every round trip to PostgreSQL costs both sides about as much CPU as a
// simple statement does (docs/benchmarks.md), so a transaction sends as
// few as it can:
//
//   - its BEGIN goes with its first write, not in a round trip of its
//     own; reads before it run outside the transaction (at READ
//     COMMITTED a statement sees what was committed when it began,
//     inside a transaction or not), and a transaction that wrote nothing
//     ends without a round trip;
//   - its writes wait, in order, for the next statement that needs an
//     answer (a read, an insert whose conflict the caller wants to know
//     at once, the checks before the commit) and travel with it; a write
//     that finds its record changed is reported there, and fails the
//     transaction.

// pendingWrite is a write not sent yet; check judges its result.
type pendingWrite struct {
	sql   string
	args  []any
	check func(pgconn.CommandTag) error
}

// lazyConn runs a transaction's statements on a pooled connection. Its
// own methods run statements in the transaction (beginning it if
// needed); reads() gives those that may run before it.
type lazyConn struct {
	conn    *pgxpool.Conn
	begin   string // the BEGIN still to send; "" once sent
	pending []pendingWrite
}

var _ dbtx = (*lazyConn)(nil)

// begun reports whether BEGIN was sent: the transaction must be ended.
func (c *lazyConn) begun() bool { return c.begin == "" }

// write queues a write for the next statement sent.
func (c *lazyConn) write(sql string, args []any, check func(pgconn.CommandTag) error) {
	c.pending = append(c.pending, pendingWrite{sql, args, check})
}

// send sends b after the pending BEGIN (when inTx, or when writes are
// pending) and the pending writes, reads their results, and returns the
// results of b's statements. A pending write whose check fails ends it:
// that error is what every result of b answers.
func (c *lazyConn) send(ctx context.Context, b *pgx.Batch, inTx bool) pgx.BatchResults {
	begin := c.begin != "" && (inTx || len(c.pending) > 0)
	if !begin && len(c.pending) == 0 {
		return c.conn.SendBatch(ctx, b)
	}
	nb := &pgx.Batch{}
	if begin {
		nb.Queue(c.begin)
		c.begin = ""
	}
	pend := c.pending
	c.pending = nil
	for _, w := range pend {
		nb.Queue(w.sql, w.args...)
	}
	nb.QueuedQueries = append(nb.QueuedQueries, b.QueuedQueries...)
	res := c.conn.SendBatch(ctx, nb)
	if begin {
		if _, err := res.Exec(); err != nil {
			res.Close()
			return failedBatch{err}
		}
	}
	for _, w := range pend {
		tag, err := res.Exec()
		if err == nil && w.check != nil {
			err = w.check(tag)
		}
		if err != nil {
			res.Close()
			return failedBatch{err}
		}
	}
	return res
}

func (c *lazyConn) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return c.send(ctx, b, true)
}

func (c *lazyConn) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return execOn(ctx, c, true, sql, args)
}

func (c *lazyConn) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return queryRowOn(ctx, c, true, sql, args)
}

func (c *lazyConn) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return queryOn(ctx, c, true, sql, args)
}

// reads are the statements that may run before the transaction begins.
func (c *lazyConn) reads() dbtx { return readsConn{c} }

type readsConn struct{ c *lazyConn }

// direct reports whether a statement can go straight to the connection.
func (r readsConn) direct() bool { return len(r.c.pending) == 0 }

func (r readsConn) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return r.c.send(ctx, b, false)
}

func (r readsConn) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if r.direct() {
		return r.c.conn.Exec(ctx, sql, args...)
	}
	return execOn(ctx, r.c, false, sql, args)
}

func (r readsConn) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if r.direct() {
		return r.c.conn.QueryRow(ctx, sql, args...)
	}
	return queryRowOn(ctx, r.c, false, sql, args)
}

func (r readsConn) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if r.direct() {
		return r.c.conn.Query(ctx, sql, args...)
	}
	return queryOn(ctx, r.c, false, sql, args)
}

func execOn(ctx context.Context, c *lazyConn, inTx bool, sql string, args []any) (pgconn.CommandTag, error) {
	if c.begun() && len(c.pending) == 0 {
		return c.conn.Exec(ctx, sql, args...)
	}
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	res := c.send(ctx, b, inTx)
	defer res.Close()
	return res.Exec()
}

func queryRowOn(ctx context.Context, c *lazyConn, inTx bool, sql string, args []any) pgx.Row {
	if c.begun() && len(c.pending) == 0 {
		return c.conn.QueryRow(ctx, sql, args...)
	}
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	res := c.send(ctx, b, inTx)
	return rowThenClose{res.QueryRow(), res}
}

func queryOn(ctx context.Context, c *lazyConn, inTx bool, sql string, args []any) (pgx.Rows, error) {
	if c.begun() && len(c.pending) == 0 {
		return c.conn.Query(ctx, sql, args...)
	}
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	res := c.send(ctx, b, inTx)
	rows, err := res.Query()
	if err != nil {
		res.Close()
		return nil, err
	}
	return &rowsThenClose{Rows: rows, res: res}, nil
}

// rowThenClose closes the batch a row came from once it is read.
type rowThenClose struct {
	row pgx.Row
	res pgx.BatchResults
}

func (r rowThenClose) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if cerr := r.res.Close(); err == nil {
		err = cerr
	}
	return err
}

// rowsThenClose closes the batch rows came from with them.
type rowsThenClose struct {
	pgx.Rows
	res pgx.BatchResults
}

func (r *rowsThenClose) Close() {
	r.Rows.Close()
	r.res.Close()
}

// failedBatch answers every result with the error that ended its batch.
type failedBatch struct{ err error }

func (f failedBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, f.err }
func (f failedBatch) Query() (pgx.Rows, error)         { return nil, f.err }
func (f failedBatch) QueryRow() pgx.Row                { return errorRow{f.err} }
func (f failedBatch) Close() error                     { return f.err }
func (f failedBatch) Tx() pgx.Tx                       { return nil }

type errorRow struct{ err error }

func (r errorRow) Scan(...any) error { return r.err }
