package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/events"
)

var (
	_ core.Store          = (*Store)(nil)
	_ events.CursorStore  = (*Store)(nil)
	_ events.EpochSource  = (*Store)(nil)
	_ events.EpochCursors = (*Store)(nil)
)

// maxAttempts bounds retries of a transaction that collides with others.
const maxAttempts = 16

// Options configures Open.
type Options struct {
	// DSN is the database, as a postgres:// URL or key=value string.
	// Required.
	DSN string
	// StoreKey is the 32-byte key records are sealed under (keyfleetd's
	// store key). Required.
	StoreKey []byte
	// MaxConns bounds the connection pool (default 16).
	MaxConns int32
	// NoMigrate opens a database without applying pending migrations; a
	// database behind this keyfleetd's schema is then refused.
	NoMigrate bool
	Logger    *slog.Logger
	// AfterAudit, if set, runs after every commit of this process that
	// appended audit events, with those events.
	AfterAudit func(events []*audit.Event)
	// OnRemoteAudit, if set, runs when another keyfleetd on the same
	// database committed audit events (LISTEN/NOTIFY): the event sinks
	// wake on it. It may run on any goroutine.
	OnRemoteAudit func()
}

// Store is core.Store on PostgreSQL.
type Store struct {
	pool *pgxpool.Pool
	box  *box
	log  *slog.Logger

	afterAudit func([]*audit.Event)
	head       atomic.Pointer[audit.Head] // the last head read; AuditHead falls back to it
	names      nameCache
	epochs     epochCache

	closeOnce sync.Once
	stop      context.CancelFunc
	listening sync.WaitGroup
	closed    atomic.Bool

	// beforeCommit is a fault-injection point for tests: it runs after a
	// transaction's writes are sent and before its audit events are
	// chained and it commits.
	beforeCommit func() error
}

// Open connects, applies pending migrations (unless NoMigrate) and checks
// the store key against the database.
func Open(ctx context.Context, o Options) (*Store, error) {
	b, err := newBox(o.StoreKey)
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(o.DSN)
	if err != nil {
		return nil, fmt.Errorf("postgres store: the connection string does not parse: %w", redact(err))
	}
	cfg.MaxConns = 16
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres store: %w", redact(err))
	}
	s := &Store{pool: pool, box: b, log: o.Logger, afterAudit: o.AfterAudit}
	if err := s.prepare(ctx, o); err != nil {
		pool.Close()
		return nil, err
	}
	lctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	if o.OnRemoteAudit != nil {
		s.listening.Add(1)
		go func() { defer s.listening.Done(); s.listen(lctx, o.OnRemoteAudit) }()
	}
	return s, nil
}

// prepare migrates, checks the key and reads the head and epochs.
func (s *Store) prepare(ctx context.Context, o Options) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("%w: postgres store: cannot reach the database (%v); check store.postgres.dsn and that PostgreSQL runs", core.ErrUnavailable, redact(err))
	}
	if err := checkSchema(ctx, s.pool, !o.NoMigrate, o.Logger); err != nil {
		return err
	}
	if err := s.checkKey(ctx); err != nil {
		return err
	}
	if err := s.backfillAudit(ctx); err != nil {
		return err
	}
	if err := s.ensureEpoch(ctx); err != nil {
		return err
	}
	h, err := s.readHead(ctx, s.pool)
	if err != nil {
		return err
	}
	s.head.Store(&h)
	return nil
}

// Pool is the connection pool, for what keyfleetd shares beside the
// store (daemon/cluster).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close closes the pool. Later calls fail with core.ErrUnavailable.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		if s.stop != nil {
			s.stop()
		}
		s.listening.Wait()
		s.pool.Close()
	})
	return nil
}

// Ready reports nil while the database answers.
func (s *Store) Ready() error {
	if s.closed.Load() {
		return fmt.Errorf("%w: the store is closed", core.ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("%w: PostgreSQL does not answer (%v)", core.ErrUnavailable, redact(err))
	}
	return nil
}

// errConflict: a row this transaction read or writes changed since; the
// transaction runs again.
var errConflict = errors.New("a record changed under the transaction")

// retryable reports whether err is a collision worth running again.
func retryable(err error) bool {
	if errors.Is(err, errConflict) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return true
		}
	}
	return false
}

// mapErr turns a database that cannot be reached into ErrUnavailable.
func mapErr(err error) error {
	if err == nil || errors.Is(err, core.ErrUnavailable) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code[:2] {
		case "08", "57", "53": // connection, operator intervention (shutdown), insufficient resources
			return fmt.Errorf("%w: PostgreSQL: %s", core.ErrUnavailable, pe.Message)
		}
		return err
	}
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) || isConnErr(err) {
		return fmt.Errorf("%w: PostgreSQL: %v", core.ErrUnavailable, redact(err))
	}
	return err
}

func isConnErr(err error) bool {
	var ce *pgconn.ConnectError
	return errors.As(err, &ce) || errors.Is(err, pgx.ErrTxClosed) || errors.Is(err, context.DeadlineExceeded)
}

// Update runs fn in a transaction and commits it, retrying when it
// collides with a concurrent transaction (see tx.go for how collisions
// are found).
func (s *Store) Update(ctx context.Context, fn func(core.Tx) error) error {
	if s.closed.Load() {
		return fmt.Errorf("%w: the store is closed", core.ErrUnavailable)
	}
	hot := map[rowKey]bool{}
	for attempt := range maxAttempts {
		if err := ctx.Err(); err != nil {
			return err
		}
		evs, err := s.attempt(ctx, fn, hot)
		if err == nil {
			if len(evs) > 0 && s.afterAudit != nil {
				s.afterAudit(evs)
			}
			return nil
		}
		if !retryable(err) {
			return mapErr(err)
		}
		var ce *conflictError
		if errors.As(err, &ce) {
			hot[ce.rk] = true
		}
		pause(attempt)
	}
	return fmt.Errorf("%w: gave up after %d attempts; try again", core.ErrConflict, maxAttempts)
}

// pause waits a little, more after each collision, with jitter so that
// colliding writers spread out.
func pause(attempt int) {
	d := time.Duration(50<<min(attempt, 8)) * time.Microsecond
	time.Sleep(d/2 + time.Duration(rand.Int64N(int64(d/2)+1)))
}

// attempt runs fn once in a new transaction and commits it.
func (s *Store) attempt(ctx context.Context, fn func(core.Tx) error, hot map[rowKey]bool) (evs []*audit.Event, err error) {
	ptx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return nil, err
	}
	t := newTx(ctx, s, ptx, hot)
	defer func() {
		if err != nil {
			ptx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if err := fn(t); err != nil {
		return nil, err
	}
	if err := t.err; err != nil { // a failed statement fn did not return
		return nil, err
	}
	if s.beforeCommit != nil {
		if err := s.beforeCommit(); err != nil {
			return nil, err
		}
	}
	if err := s.commit(ctx, t); err != nil {
		return nil, err
	}
	return t.events, nil
}

// commit checks that nothing t read has changed (locking those rows
// until the end), chains t's audit events after the head under the head
// row's lock, and commits. The head row is locked last and held only for
// the last statements and the commit, so writers wait for each other only
// that long; a transaction that fails rolls back whole and leaves no gap.
func (s *Store) commit(ctx context.Context, t *tx) error {
	if err := t.validate(); err != nil {
		return err
	}
	if len(t.events) == 0 {
		return commitErr(t.ptx.Commit(ctx))
	}
	head, err := s.readHead(ctx, t.ptx, "FOR UPDATE")
	if err != nil {
		return err
	}
	chain := audit.Chain{Head: head}
	b := &pgx.Batch{}
	for _, ev := range t.events {
		rec, err := chain.Next(ev)
		if err != nil {
			return err
		}
		key := fmt.Sprint(rec.Seq)
		b.Queue("INSERT INTO audit (seq, target, actor, action, rec) VALUES ($1, $2, $3, $4, $5)",
			int64(rec.Seq), ev.Target.ID, ev.Actor.ID, ev.Action, s.box.seal("audit", key, rec.Marshal()))
	}
	b.Queue("UPDATE audit_head SET seq = $1, hash = $2", int64(chain.Head.Seq), chain.Head.Hash[:])
	b.Queue("SELECT pg_notify('keyfleet_audit', $1)", fmt.Sprint(chain.Head.Seq))
	if err := t.ptx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	if err := commitErr(t.ptx.Commit(ctx)); err != nil {
		return err
	}
	h := chain.Head
	s.head.Store(&h)
	return nil
}

// commitErr marks a commit whose outcome is unknown: the connection went
// while COMMIT was under way.
func commitErr(err error) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return err
	}
	return fmt.Errorf("%w: the connection to PostgreSQL broke while committing (%v): the change may or may not be stored; read it back before trying again", core.ErrUnavailable, redact(err))
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (s *Store) readHead(ctx context.Context, q querier, lock ...string) (audit.Head, error) {
	sql := "SELECT seq, hash FROM audit_head"
	if len(lock) > 0 {
		sql += " " + lock[0]
	}
	var seq int64
	var hash []byte
	if err := q.QueryRow(ctx, sql).Scan(&seq, &hash); err != nil {
		return audit.Head{}, fmt.Errorf("reading the audit head: %w", err)
	}
	if len(hash) != audit.HashSize {
		return audit.Head{}, fmt.Errorf("the audit head's hash is %d bytes, want %d: the database is damaged", len(hash), audit.HashSize)
	}
	h := audit.Head{Seq: uint64(seq)}
	copy(h.Hash[:], hash)
	return h, nil
}

// View runs fn in a read-only snapshot (REPEATABLE READ).
func (s *Store) View(ctx context.Context, fn func(core.ReadTx) error) error {
	if s.closed.Load() {
		return fmt.Errorf("%w: the store is closed", core.ErrUnavailable)
	}
	ptx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return mapErr(err)
	}
	defer ptx.Rollback(context.WithoutCancel(ctx))
	t := &readTx{ctx: ctx, s: s, q: ptx}
	if err := fn(t); err != nil {
		return mapErr(err)
	}
	return mapErr(ptx.Commit(ctx))
}

// AuditHead is the last committed link of the chain, read from the
// database (several keyfleetd append to it); the last one read if the
// database does not answer.
func (s *Store) AuditHead() audit.Head {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	h, err := s.readHead(ctx, s.pool)
	if err != nil {
		if p := s.head.Load(); p != nil {
			return *p
		}
		return audit.Head{}
	}
	s.head.Store(&h)
	return h
}

// auditBatch is how many records AuditScan reads per query.
const auditBatch = 1000

// AuditScan reads audit records with seq > after in order, up to the
// head when it starts.
func (s *Store) AuditScan(ctx context.Context, after uint64, fn func(uint64, audit.Record) (bool, error)) error {
	last := s.AuditHead().Seq
	for after < last {
		recs, err := s.auditRange(ctx, after, last)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			return nil
		}
		for _, r := range recs {
			if err := ctx.Err(); err != nil {
				return err
			}
			cont, err := fn(r.key, r.rec)
			if err != nil || !cont {
				return err
			}
			after = r.key
		}
	}
	return nil
}

type keyedRecord struct {
	key uint64
	rec audit.Record
}

func (s *Store) auditRange(ctx context.Context, after, last uint64) ([]keyedRecord, error) {
	rows, err := s.pool.Query(ctx, "SELECT seq, rec FROM audit WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3", int64(after), int64(last), auditBatch)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []keyedRecord
	for rows.Next() {
		var seq int64
		var sealed []byte
		if err := rows.Scan(&seq, &sealed); err != nil {
			return nil, err
		}
		r, err := s.openAudit(uint64(seq), sealed)
		if err != nil {
			return nil, err
		}
		out = append(out, keyedRecord{uint64(seq), r})
	}
	return out, mapErr(rows.Err())
}

// openAudit opens a stored audit record; a record that does not open or
// decode is a break in the chain at that seq.
func (s *Store) openAudit(seq uint64, sealed []byte) (audit.Record, error) {
	b, err := s.box.open("audit", fmt.Sprint(seq), sealed)
	if err != nil {
		return audit.Record{}, &audit.BreakError{Seq: seq, Reason: err.Error()}
	}
	r, err := audit.Unmarshal(b)
	if err != nil {
		return audit.Record{}, &audit.BreakError{Seq: seq, Reason: err.Error()}
	}
	return r, nil
}

// listen waits for other keyfleetd's commits and calls fn for each,
// reconnecting after a lost connection.
func (s *Store) listen(ctx context.Context, fn func()) {
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, fn)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("listening for other keyfleetd's audit events; retrying", "err", redact(err))
		fn() // something may have been missed meanwhile
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// listenOnce holds a connection of its own, outside the pool.
func (s *Store) listenOnce(ctx context.Context, fn func()) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN keyfleet_audit"); err != nil {
		return err
	}
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		fn()
	}
}

// redact keeps a password in a connection string out of an error.
func redact(err error) error {
	if err == nil {
		return nil
	}
	return errors.New(redactString(err.Error()))
}

// backfillAudit fills the actor and action columns of events written
// before schema version 2 (migrations/00002_audit_actor_action.sql), a
// thousand at a time, opening each, once: meta's audit_index_filled
// records that it is done, so later starts do not look. Every event has
// an action, so an empty one marks an event not filled yet; several
// keyfleetd doing it at once write the same values.
func (s *Store) backfillAudit(ctx context.Context) error {
	var done string
	err := s.pool.QueryRow(ctx, "SELECT v FROM meta WHERE k = 'audit_index_filled'").Scan(&done)
	if err == nil {
		return nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("postgres store: %w", err)
	}
	if err := s.fillAudit(ctx); err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, "INSERT INTO meta (k, v) VALUES ('audit_index_filled', '2') ON CONFLICT (k) DO NOTHING")
	return err
}

func (s *Store) fillAudit(ctx context.Context) error {
	for {
		rows, err := s.pool.Query(ctx, "SELECT seq, rec FROM audit WHERE action = '' ORDER BY seq LIMIT 1000")
		if err != nil {
			return fmt.Errorf("postgres store: filling the audit index: %w", err)
		}
		b := &pgx.Batch{}
		for rows.Next() {
			var seq int64
			var sealed []byte
			if err := rows.Scan(&seq, &sealed); err != nil {
				rows.Close()
				return err
			}
			r, err := s.openAudit(uint64(seq), sealed)
			if err != nil {
				rows.Close()
				return err
			}
			ev, err := r.Event()
			if err != nil {
				rows.Close()
				return err
			}
			b.Queue("UPDATE audit SET actor = $2, action = $3 WHERE seq = $1", seq, ev.Actor.ID, ev.Action)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if b.Len() == 0 {
			return nil
		}
		if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("postgres store: filling the audit index: %w", err)
		}
	}
}
