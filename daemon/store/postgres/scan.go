package postgres

import (
	"bytes"
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/store"
)

// Bulk reads (re-evaluating every user's compliance, the report, a dry
// run) scan the whole policy facts index in one snapshot. Read in
// batches, PostgreSQL would wait while keyfleetd opens a batch and
// keyfleetd while PostgreSQL reads the next; instead, the snapshot's
// transaction exports it, a second connection takes it and streams the
// whole index in one query, and a goroutine opens and groups the rows
// while the caller's fn handles the users before them: the server, the
// opening and fn run at once. fn may still read in the snapshot on the
// first connection.

// streamBatch is how many users the stream hands over at once, and
// streamBuffer how many such batches may wait for fn.
const streamBatch, streamBuffer = 128, 8

// streamPolicyFacts is ScanPolicyFacts in a View. done is false when the
// snapshot cannot be shared (the caller reads in batches instead).
func (r *readTx) streamPolicyFacts(after string, fn func(core.PolicyFactsRecord) error) (done bool, err error) {
	var snap string
	if err := r.q.QueryRow(r.ctx, "SELECT pg_export_snapshot()").Scan(&snap); err != nil {
		return false, nil
	}
	conn, err := r.s.pool.Acquire(r.ctx)
	if err != nil {
		return true, err
	}
	defer conn.Release()
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	b := &pgx.Batch{}
	b.Queue("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
	b.Queue("SET TRANSACTION SNAPSHOT '" + snap + "'") // a server-made id, not input
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return true, fmt.Errorf("sharing the snapshot for a scan: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
	users := make(chan []core.PolicyFactsRecord, streamBuffer)
	streamErr := make(chan error, 1)
	go func() {
		defer close(users)
		streamErr <- r.stream(ctx, conn.Conn(), after, users)
	}()
	for batch := range users {
		for _, rec := range batch {
			if err := fn(rec); err != nil {
				cancel()
				for range users { // let the stream end
				}
				<-streamErr
				return true, err
			}
		}
	}
	return true, <-streamErr
}

// stream reads the index after the user after on conn, opening and
// grouping the rows, and sends each user's records. It reads the rows'
// bytes as they arrive and opens them into one buffer (the bundle keeps
// a copy): a million users are four million rows.
func (r *readTx) stream(ctx context.Context, conn *pgx.Conn, after string, users chan<- []core.PolicyFactsRecord) error {
	rows, err := conn.Query(ctx, `SELECT user_id, sub, rec FROM policy_facts
		WHERE (user_id, sub) > ($1, $2) ORDER BY user_id, sub`, after, "\uffff")
	if err != nil {
		return err
	}
	defer rows.Close()
	var cur *store.FactsBundle
	var uid, ad, plain []byte
	batch := make([]core.PolicyFactsRecord, 0, streamBatch)
	hand := func() error {
		select {
		case users <- batch:
			batch = make([]core.PolicyFactsRecord, 0, streamBatch)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	send := func() error {
		if cur == nil {
			return nil
		}
		batch, cur = append(batch, cur), nil
		if len(batch) < streamBatch {
			return nil
		}
		return hand()
	}
	for rows.Next() {
		raw := rows.RawValues()
		if len(raw) != 3 {
			return fmt.Errorf("scanning the policy facts: %d columns", len(raw))
		}
		user, sub := raw[0], raw[1]
		ad = appendFactsAAD(ad[:0], user, sub)
		if plain, err = r.s.box.openAppend(plain[:0], raw[2], ad); err != nil {
			return fmt.Errorf("policy_facts %s/%s: %w", user, sub, err)
		}
		switch {
		case len(sub) == 0: // the user's own record starts their bundle
			if err := send(); err != nil {
				return err
			}
			uid = append(uid[:0], user...)
			cur = store.NewFactsBundle(string(user), plain)
		case cur != nil && bytes.Equal(user, uid):
			cur.AddBytes(sub[0], sub[1:], plain)
		}
		// else: records of a user whose own record is missing
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if err := send(); err != nil || len(batch) == 0 {
		return err
	}
	return hand()
}
