package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
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
	head       atomic.Pointer[audit.Head] // the last durable head read; AuditHead falls back to it
	flush      flusher                    // group commit (durable.go)
	app        *appender                  // how commits reach the chain's head (append.go)
	cache      recordCache                // records by key, as last seen (cache.go)
	retries    atomic.Uint64              // transactions run again after a collision
	group      grouper                    // group commit (group.go)
	grouped    atomic.Uint64              // transactions sent in groups of two or more
	names      nameCache
	epochs     epochCache
	full       fullState // the last refusal for lack of space (full.go)

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
	s := &Store{pool: pool, box: b, log: o.Logger, afterAudit: o.AfterAudit, app: newAppender()}
	s.flush.run = s.runBarrier
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

// Ready reports nil while the database answers and takes writes: a
// *StorageFullError for 30 seconds after a write was refused for lack of
// space, an error wrapping core.ErrUnavailable while it does not answer.
func (s *Store) Ready() error {
	if s.closed.Load() {
		return fmt.Errorf("%w: the store is closed", core.ErrUnavailable)
	}
	if fe := s.Full(); fe != nil {
		return fe
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
	if errors.Is(err, errConflict) || errors.Is(err, errChainMoved) || errors.Is(err, errGroupFailed) {
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
		switch {
		case pe.Code == sqlDiskFull:
			return &StorageFullError{Message: pe.Message}
		case pe.Code == sqlOutOfMemory:
			return fmt.Errorf("%w: PostgreSQL is out of memory (%s); try again, and check the database server's memory settings", core.ErrUnavailable, pe.Message)
		case pe.Code == sqlTooManyConnections:
			return fmt.Errorf("%w: PostgreSQL has no connection to spare (%s); try again, and raise max_connections or lower store.postgres.max_conns times the keyfleetd sharing it", core.ErrUnavailable, pe.Message)
		case len(pe.Code) == 5 && strings.Contains("08 57 53", pe.Code[:2]): // connection, operator intervention (shutdown), insufficient resources
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
	alone := false // after a group commit failed (group.go)
	for attempt := range maxAttempts {
		if err := ctx.Err(); err != nil {
			return err
		}
		evs, wrote, err := s.attempt(ctx, fn, hot, attempt == 0, alone)
		alone = alone || errors.Is(err, errGroupFailed)
		if err == nil && len(evs) > 0 {
			// Committed without waiting for the disk: wait for a barrier
			// (durable.go), whatever happens to ctx meanwhile, so that
			// the answer is definite.
			if err := s.durable(context.WithoutCancel(ctx)); err != nil {
				return err
			}
			if s.afterAudit != nil {
				s.afterAudit(evs)
			}
		}
		if err == nil {
			if wrote {
				s.noteWrite(nil)
			}
			return nil
		}
		if !retryable(err) {
			return s.noteWrite(mapErr(err))
		}
		var ce *conflictError
		if errors.As(err, &ce) {
			hot[ce.rk] = true
		}
		s.retries.Add(1)
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

// attempt runs fn once in a new transaction and commits it, with others
// (group.go) unless alone. The
// transaction is begun with its first statement and ended by hand, so
// that its COMMIT travels in the same batch as its last writes (commit).
// wrote says whether it wrote anything.
func (s *Store) attempt(ctx context.Context, fn func(core.Tx) error, hot map[rowKey]bool, useCache, alone bool) (evs []*audit.Event, wrote bool, err error) {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, err
	}
	// A connection released inside a transaction (a rollback that failed)
	// is closed by the pool rather than reused.
	defer pc.Release()
	conn := &lazyConn{conn: pc, begin: "BEGIN ISOLATION LEVEL READ COMMITTED"}
	t := newTx(ctx, s, conn, conn.reads(), hot, useCache)
	ended := false
	defer func() {
		if !ended && conn.begun() {
			pc.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	if err := fn(t); err != nil {
		return nil, false, s.checkCached(ctx, t, err)
	}
	if err := t.err; err != nil { // a failed statement fn did not return
		return nil, false, err
	}
	if s.beforeCommit != nil {
		if err := s.beforeCommit(); err != nil {
			return nil, false, err
		}
	}
	if !alone && groupable(t) {
		own := slices.Clone(t.events)
		if err := s.commitGrouped(ctx, t, &ended); err != nil {
			return nil, false, err
		}
		return own, true, nil
	}
	xid, err := s.commit(ctx, t, &ended)
	s.cacheWritten(t, xid, err)
	if err != nil {
		return nil, false, err
	}
	return t.events, t.dirty || len(t.events) > 0, nil
}

// checkCached answers err, the error fn ended with, unless fn read a
// record from the cache that is no longer current: then the transaction
// runs again without the cache (cache.go).
func (s *Store) checkCached(ctx context.Context, t *tx, err error) error {
	if !t.track.cached || t.err != nil {
		return err
	}
	if lc, ok := t.conn.(*lazyConn); ok && err != nil {
		lc.pending = nil // the transaction is given up: its writes need not go
	}
	b := &pgx.Batch{}
	order, byTable, _ := t.queueValidate(b, false)
	if len(order) == 0 {
		return err
	}
	// Outside the transaction if it has not begun: a check of versions
	// needs no snapshot of its own.
	if verr := s.sendValidate(ctx, t, b, order, byTable, trailer{on: t.q}); verr != nil {
		return verr
	}
	return err
}

// cacheWritten puts the records a committed transaction wrote into the
// cache with their new version (the transaction's id), and drops them
// when the commit failed or its outcome is unknown.
func (s *Store) cacheWritten(t *tx, xid uint64, err error) {
	for rk, sealed := range t.track.written {
		if err != nil || sealed == nil || xid == 0 {
			s.cache.drop(rk)
			continue
		}
		s.cache.put(rk, version{strconv.FormatUint(xid%(1<<32), 10), sealed})
	}
}

// commit checks that nothing t read has changed (locking those rows
// until the end) and commits; a commit with audit events appends them to
// the chain on the way, locked or pipelined (append.go), with its last
// writes, the new head and COMMIT in one batch. The commit does not wait
// for the disk (synchronous_commit off; Update waits for a barrier
// afterwards, durable.go). A transaction that fails rolls back whole and
// leaves no gap. *ended is set once COMMIT was sent and PostgreSQL
// refused nothing before it. It returns the transaction's id when it
// wrote something (the version of the rows it wrote, for the cache).
func (s *Store) commit(ctx context.Context, t *tx, ended *bool) (xid uint64, err error) {
	defer func() {
		var pe *pgconn.PgError
		*ended = *ended && (err == nil || !errors.As(err, &pe)) // refused: roll back
	}()
	if !t.dirty && len(t.events) == 0 {
		// Read only: nothing to check, as with Badger, whose read-only
		// transactions never collide, unless what fn saw came from the
		// cache: then it is checked before it is the answer.
		if err := s.checkCached(ctx, t, nil); err != nil {
			return 0, err
		}
		*ended = true
		if lc, ok := t.conn.(*lazyConn); ok && !lc.begun() {
			return 0, nil
		}
		_, err := t.conn.Exec(ctx, "COMMIT")
		return 0, commitErr(err)
	}
	b := &pgx.Batch{}
	order, byTable, generic := t.queueValidate(b, true)
	tr := trailer{xid: &xid, generic: generic}
	if len(t.events) == 0 {
		if err := s.sendValidate(ctx, t, b, order, byTable, tr); err != nil {
			return 0, err
		}
		*ended = true
		_, err := t.conn.Exec(ctx, "COMMIT")
		return xid, commitErr(err)
	}
	key, pipelined := s.app.ticket()
	var from audit.Head
	if pipelined {
		tr.key = key // the ordering lock, held from here to the end (append.go)
	} else {
		tr.head = &from
	}
	if err := s.sendValidate(ctx, t, b, order, byTable, tr); err != nil {
		if !pipelined {
			s.app.lockedEnded(nil)
		}
		return 0, err
	}
	if pipelined {
		*ended = true
		if sent, err := s.appendPipelined(ctx, t, key); sent || err != nil {
			return xid, err
		}
		*ended = false // the tail was forgotten: append the locked way
		if from, err = s.readHead(ctx, t.conn, "FOR UPDATE"); err != nil {
			s.app.lockedEnded(nil)
			return 0, err
		}
	}
	*ended = true
	head, err := s.appendLocked(ctx, t, from)
	if err != nil {
		s.app.lockedEnded(nil)
		return 0, err
	}
	s.app.lockedEnded(&head)
	return xid, nil
}

// trailer is what commit queues after the validation: the ordering lock
// (key), the head's row lock (read into head) and the transaction's id
// (read into xid), each when set.
type trailer struct {
	key  int32
	head *audit.Head
	xid  *uint64
	on   dbtx // where to send it (default the transaction's connection)
	// generic: the batch begins with genericPlansSQL (queueValidate).
	generic bool
}

// sendValidate sends b, the validation and then what tr asks for, and
// reads the results.
func (s *Store) sendValidate(ctx context.Context, t *tx, b *pgx.Batch, order []*table, byTable map[*table][]string, tr trailer) (err error) {
	// The transaction's id comes with the ordering lock when both are
	// asked for: one statement less.
	keyXid := tr.key != 0 && tr.xid != nil && tr.head == nil
	switch {
	case keyXid:
		b.Queue("SELECT pg_current_xact_id()::text FROM pg_advisory_xact_lock($1, $2)", s.app.node, tr.key)
	case tr.key != 0:
		b.Queue("SELECT pg_advisory_xact_lock($1, $2)", s.app.node, tr.key)
	}
	if tr.head != nil {
		b.Queue("SELECT seq, hash FROM audit_head FOR UPDATE")
	}
	if tr.xid != nil && !keyXid {
		b.Queue("SELECT pg_current_xact_id()::text")
	}
	if b.Len() == 0 {
		return nil
	}
	on := tr.on
	if on == nil {
		on = t.conn
	}
	res := on.SendBatch(ctx, b)
	defer func() {
		if cerr := res.Close(); err == nil {
			err = cerr
		}
	}()
	if tr.generic {
		if _, err := res.Exec(); err != nil {
			return err
		}
	}
	if err := t.checkValidate(res, order, byTable); err != nil {
		return err
	}
	if tr.key != 0 && !keyXid {
		if _, err := res.Exec(); err != nil {
			return err
		}
	}
	if tr.head != nil {
		if *tr.head, err = s.readHead(ctx, batchRow{res}); err != nil {
			return err
		}
	}
	if tr.xid != nil {
		var x string
		if err := res.QueryRow().Scan(&x); err != nil {
			return err
		}
		*tr.xid, _ = strconv.ParseUint(x, 10, 64)
	}
	return nil
}

// batchRow reads the next result of a batch as a row.
type batchRow struct{ res pgx.BatchResults }

func (r batchRow) QueryRow(context.Context, string, ...any) pgx.Row { return r.res.QueryRow() }

// commitBatchErr is commitErr for a batch that ends with COMMIT: a
// statement PostgreSQL refused means nothing was committed (the caller
// rolls back); a broken connection leaves the outcome unknown.
func commitBatchErr(err error) error {
	var pe *pgconn.PgError
	if err == nil || errors.As(err, &pe) {
		return err
	}
	return commitErr(err)
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
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return mapErr(err)
	}
	defer pc.Release()
	conn := &lazyConn{conn: pc, begin: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"}
	t := &readTx{ctx: ctx, s: s, q: conn, w: conn}
	err = fn(t)
	if !conn.begun() {
		return mapErr(err) // nothing was read from the database
	}
	end := "COMMIT"
	if err != nil {
		end = "ROLLBACK"
	}
	if _, eerr := pc.Exec(context.WithoutCancel(ctx), end); err == nil {
		err = eerr
	}
	return mapErr(err)
}

// AuditHead is the last durable link of the chain, read from the
// database (several keyfleetd append to it) by a barrier (durable.go);
// the last one read if the database does not answer.
func (s *Store) AuditHead() audit.Head {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	h, err := s.flush.latest(ctx)
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

// Redact keeps a password in a connection string (key=value or URL form)
// out of an error, for packages that log errors of their own connections
// to the same database.
func Redact(err error) error { return redact(err) }

// redact keeps a password in a connection string out of an error.
func redact(err error) error {
	if err == nil {
		return nil
	}
	return errors.New(redactString(err.Error()))
}

// backfillAudit fills the actor and action columns of events written
// before schema version 4 (migrations/00004_audit_actor_action.sql), a
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
