package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// How a read-write transaction finds collisions, as Badger's does: it
// runs at READ COMMITTED and notes the row version (xmin) of every record
// it reads. A record it then writes is written only if its version is
// still the one read (else errConflict, and Update runs fn again); at
// commit, every record read and not written is checked again, and share-
// locked until the commit, so that no concurrent transaction changes what
// this one decided on. Two transactions that each read what the other
// writes cannot both commit.

type dbtx interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

type rowKey struct {
	t *table
	k string
}

// tracker is a read-write transaction's read and write sets.
type tracker struct {
	reads map[rowKey]string // xmin as read; "" when the record was absent
	wrote map[rowKey]bool
	// hot are records an earlier attempt collided on: this attempt reads
	// them FOR UPDATE, so that a record many write at once (a counter)
	// is taken in turn instead of colliding again and again.
	hot map[rowKey]bool
	// cache says whether this attempt may read records from the cache
	// (cache.go); cached whether it did.
	cache, cached bool
	// written are the sealed records this transaction wrote (nil: it
	// deleted the record), for the cache once it has committed.
	written map[rowKey][]byte
	// touched are rows written by execRow; opaque says whether exec wrote
	// rows no key names (group.go).
	touched map[rowKey]bool
	opaque  bool
}

// conflictError names the record a collision was found on. It wraps
// errConflict.
type conflictError struct{ rk rowKey }

func (e *conflictError) Error() string {
	return errConflict.Error() + ": " + e.rk.t.name + " " + e.rk.k
}
func (e *conflictError) Unwrap() error { return errConflict }

type readTx struct {
	ctx context.Context
	s   *Store
	// q runs reads; in an Update, reads before the first write run
	// outside the transaction (at READ COMMITTED each statement sees
	// what was committed when it began, in a transaction or not), and
	// w runs the reads that must be in it (locking ones).
	q, w  dbtx
	track *tracker // nil in View
	err   *error   // the first failed statement (read-write only)
}

type tx struct {
	readTx
	// conn runs the transaction's statements: a pooled connection on
	// which Update began it (and commits it in the last batch, store.go),
	// or a pgx.Tx (Import).
	conn   dbtx
	events []*audit.Event
	err    error
	dirty  bool // it wrote something
}

var (
	_ core.ReadTx = (*readTx)(nil)
	_ core.Tx     = (*tx)(nil)
)

// newTx makes a read-write transaction whose statements run on conn and
// whose reads before the first write run on reads (conn itself when nil).
func newTx(ctx context.Context, s *Store, conn, reads dbtx, hot map[rowKey]bool, cache bool) *tx {
	if reads == nil {
		reads = conn
	}
	t := &tx{conn: conn}
	t.readTx = readTx{ctx: ctx, s: s, q: reads, w: conn, err: &t.err,
		track: &tracker{reads: map[rowKey]string{}, wrote: map[rowKey]bool{}, hot: hot, cache: cache, written: map[rowKey][]byte{}, touched: map[rowKey]bool{}}}
	return t
}

// fail remembers a failed statement: PostgreSQL refuses every further
// statement of the transaction, so it must not commit even if fn goes on.
func (r *readTx) fail(err error) error {
	if r.err != nil && *r.err == nil {
		var nf *core.NotFoundError
		if !errors.As(err, &nf) && !errors.Is(err, core.ErrAlreadyExists) {
			*r.err = err
		}
	}
	return err
}

func (r *readTx) noteRead(t *table, k, xmin string) {
	if r.track == nil {
		return
	}
	rk := rowKey{t, k}
	if r.track.wrote[rk] {
		return
	}
	if _, ok := r.track.reads[rk]; !ok {
		r.track.reads[rk] = xmin
	}
}

// getRaw reads and opens one record; *core.NotFoundError when absent.
func (r *readTx) getRaw(t *table, k, kind, ref string) ([]byte, error) {
	rk := rowKey{t, k}
	if v, ok := r.fromCache(rk); ok {
		r.noteRead(t, k, v.xmin)
		if v.xmin == "" {
			return nil, &core.NotFoundError{Kind: kind, Ref: ref}
		}
		return r.s.box.open(t.name, k, v.sealed)
	}
	var xmin string
	var sealed []byte
	q, sql := r.q, t.get
	if r.track != nil && r.track.hot[rk] {
		q, sql = r.w, t.getLock
	}
	err := q.QueryRow(r.ctx, sql, k).Scan(&xmin, &sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		r.noteRead(t, k, "")
		switch {
		case r.track == nil:
			r.s.cache.add(rk, version{}) // a snapshot may be older: only where the cache holds nothing
		case !r.track.wrote[rk]:
			r.s.cache.put(rk, version{}) // absent, and checked as such
		}
		return nil, &core.NotFoundError{Kind: kind, Ref: ref}
	}
	if err != nil {
		return nil, r.fail(fmt.Errorf("reading %s %s: %w", kind, ref, err))
	}
	r.noteRead(t, k, xmin)
	switch {
	case r.track == nil:
		// A snapshot may be older than what the cache holds.
		r.s.cache.add(rk, version{xmin, sealed})
	case !r.track.wrote[rk]:
		r.s.cache.put(rk, version{xmin, sealed})
	}
	return r.s.box.open(t.name, k, sealed)
}

// fromCache reads a record from the cache, in a read-write transaction
// that may (cache.go): not one it wrote or must lock.
func (r *readTx) fromCache(rk rowKey) (version, bool) {
	if r.track == nil || !r.track.cache || r.track.hot[rk] || r.track.wrote[rk] {
		return version{}, false
	}
	v, ok := r.s.cache.get(rk)
	if ok {
		r.track.cached = true
	}
	return v, ok
}

func get[T any](r *readTx, t *table, k, kind, ref string) (T, error) {
	var v T
	b, err := r.getRaw(t, k, kind, ref)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("decoding %s %s: %w", kind, ref, err)
	}
	return v, nil
}

// put writes v under k with the index column values cols. A record this
// transaction read is written only if it has not changed since.
func (t *tx) put(tb *table, k string, v any, cols ...any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s %s: %w", tb.name, k, err)
	}
	return t.putRaw(tb, k, b, cols...)
}

func (t *tx) putRaw(tb *table, k string, plain []byte, cols ...any) error {
	t.dirty = true
	sealed := t.s.box.seal(tb.name, k, plain)
	args := append(append([]any{k}, cols...), sealed)
	rk := rowKey{tb, k}
	t.track.written[rk] = sealed
	read, wasRead := t.track.reads[rk]
	sql := tb.update
	switch {
	case t.track.wrote[rk] || !wasRead:
		sql = tb.upsert
	case read == "":
		sql = tb.insert
	default:
		args = append(args, read)
	}
	t.track.wrote[rk] = true
	return t.write(sql, args, func(tag pgconn.CommandTag) error {
		if tag.RowsAffected() == 0 {
			return &conflictError{rk}
		}
		return nil
	}, "writing "+tb.name+" "+k)
}

// write sends a write, or queues it for the next statement (lazy.go);
// check judges its result. what names it in an error.
func (t *tx) write(sql string, args []any, check func(pgconn.CommandTag) error, what string) error {
	failed := func(err error) error {
		var ce *conflictError
		if errors.As(err, &ce) {
			return t.fail(err)
		}
		return t.fail(fmt.Errorf("%s: %w", what, err))
	}
	if lc, ok := t.conn.(*lazyConn); ok {
		lc.write(sql, args, func(tag pgconn.CommandTag) error {
			if check == nil {
				return nil
			}
			if err := check(tag); err != nil {
				return failed(err)
			}
			return nil
		})
		return nil
	}
	tag, err := t.conn.Exec(t.ctx, sql, args...)
	if err == nil && check != nil {
		err = check(tag)
	}
	if err != nil {
		return failed(err)
	}
	return nil
}

// insert adds a record that must be new: ErrAlreadyExists (with msg) if
// a record with its key or unique columns exists.
func (t *tx) insert(tb *table, k string, v any, msg string, cols ...any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s %s: %w", tb.name, k, err)
	}
	t.dirty = true
	sealed := t.s.box.seal(tb.name, k, b)
	args := append(append([]any{k}, cols...), sealed)
	tag, err := t.conn.Exec(t.ctx, tb.insert, args...)
	if err != nil {
		return t.fail(fmt.Errorf("writing %s %s: %w", tb.name, k, err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: %s", core.ErrAlreadyExists, msg)
	}
	t.track.wrote[rowKey{tb, k}] = true
	t.track.written[rowKey{tb, k}] = sealed
	return nil
}

func (t *tx) del(tb *table, k string) error {
	t.dirty = true
	rk := rowKey{tb, k}
	t.track.written[rk] = nil
	t.s.cache.drop(rk)
	read, wasRead := t.track.reads[rk]
	checked := wasRead && read != "" && !t.track.wrote[rk]
	t.track.wrote[rk] = true
	if !checked {
		return t.write(tb.del, []any{k}, nil, "deleting "+tb.name+" "+k)
	}
	return t.write(tb.delIf, []any{k, read}, func(tag pgconn.CommandTag) error {
		if tag.RowsAffected() == 0 {
			return &conflictError{rk}
		}
		return nil
	}, "deleting "+tb.name+" "+k)
}

// exec sends a write to rows the transaction does not track: such a
// transaction does not share its commit with others (group.go).
func (t *tx) exec(sql string, args ...any) error {
	t.dirty = true
	t.track.opaque = true
	return t.write(sql, args, nil, "writing")
}

// execRow is exec for a write to one row, named by rk for the group
// commit (group.go); its version is not tracked.
func (t *tx) execRow(rk rowKey, sql string, args ...any) error {
	t.dirty = true
	t.track.touched[rk] = true
	return t.write(sql, args, nil, "writing")
}

// unchanged returns the records read and not written, by table.
func (t *tx) unchanged() map[*table][]string {
	byTable := map[*table][]string{}
	for rk := range t.track.reads {
		if !t.track.wrote[rk] {
			byTable[rk.t] = append(byTable[rk.t], rk.k)
		}
	}
	return byTable
}

// queueValidate queues the statement that checks, and share-locks until
// the commit, every record read and not written, in every table at once;
// checkValidate reads its result: a changed record is errConflict. In a
// transaction (inTx) whose check names several keys of a table, it first
// queues genericPlansSQL (generic says so; its result comes first).
func (t *tx) queueValidate(b *pgx.Batch, inTx bool) (order []*table, byTable map[*table][]string, generic bool) {
	byTable = t.unchanged()
	if len(byTable) == 0 {
		return nil, byTable, false
	}
	for tb, keys := range byTable {
		order = append(order, tb)
		generic = generic || (inTx && len(keys) > 1)
	}
	if generic {
		b.Queue(genericPlansSQL)
	}
	slices.SortFunc(order, func(a, b *table) int { return strings.Compare(a.name, b.name) })
	args := make([]any, len(order))
	for i, tb := range order {
		if keys := byTable[tb]; len(keys) == 1 {
			args[i] = keys[0]
		} else {
			args[i] = keys
		}
	}
	b.Queue(validateSQL(order, byTable), args...)
	return order, byTable, generic
}

// genericPlansSQL has the rest of the transaction run its prepared
// statements with generic plans. PostgreSQL plans a statement with
// = ANY($n) again at every run (a custom plan for the array it is given
// costs less than the generic one, which assumes a longer array): the
// check of a group commit (group.go), several users' records in one
// statement, was planned at every commit, about 70 µs each time. Its
// generic plan is the same index scan. SET LOCAL ends with the
// transaction.
const genericPlansSQL = "SET LOCAL plan_cache_mode = force_generic_plan"

// validateSQL reads the row versions of the keys given for each table
// (the i-th parameter for order[i]: the key, or an array of several) and
// share-locks them, in one statement: each row comes back as (i, key,
// xmin). A key alone is compared with =, not = ANY: PostgreSQL then
// plans the prepared statement once (a generic plan), where an array
// has it planned again at every run (tens of µs for several tables)
// unless genericPlansSQL ran before it.
func validateSQL(order []*table, byTable map[*table][]string) string {
	cond := func(tb *table, i int) string {
		if len(byTable[tb]) == 1 {
			return fmt.Sprintf("k = $%d", i+1)
		}
		return fmt.Sprintf("k = ANY($%d)", i+1)
	}
	if len(order) == 1 {
		return fmt.Sprintf("SELECT 0::int4, k, xmin::text FROM %s WHERE %s FOR SHARE", order[0].name, cond(order[0], 0))
	}
	ctes := make([]string, len(order))
	sel := make([]string, len(order))
	for i, tb := range order {
		ctes[i] = fmt.Sprintf("v%d AS (SELECT k, xmin::text AS x FROM %s WHERE %s FOR SHARE)", i, tb.name, cond(tb, i))
		sel[i] = fmt.Sprintf("SELECT %d::int4 AS t, k, x FROM v%d", i, i)
	}
	return "WITH " + strings.Join(ctes, ", ") + " " + strings.Join(sel, " UNION ALL ")
}

func (t *tx) checkValidate(res pgx.BatchResults, order []*table, byTable map[*table][]string) error {
	if len(order) == 0 {
		return nil
	}
	now, err := collectXmins(res, len(order))
	if err != nil {
		return err
	}
	for i, tb := range order {
		for _, k := range byTable[tb] {
			if now[i][k] != t.track.reads[rowKey{tb, k}] {
				return &conflictError{rowKey{tb, k}}
			}
		}
	}
	return nil
}

// collectXmins reads validateSQL's rows: the versions by table, by key.
func collectXmins(res pgx.BatchResults, tables int) ([]map[string]string, error) {
	rows, err := res.Query()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]map[string]string, tables)
	for i := range out {
		out[i] = map[string]string{}
	}
	for rows.Next() {
		var i int32
		var k, xmin string
		if err := rows.Scan(&i, &k, &xmin); err != nil {
			return nil, err
		}
		if i < 0 || int(i) >= tables {
			return nil, fmt.Errorf("validating: a row of table %d of %d", i, tables)
		}
		out[i][k] = xmin
	}
	return out, rows.Err()
}

// Audit queues ev; commit chains it.
func (t *tx) Audit(ev *audit.Event) error {
	if ev.Action == "" {
		return errors.New("audit event without an action")
	}
	t.events = append(t.events, ev)
	return nil
}

// ttlAfter is how long a begun verification or its used-marker is kept:
// until a minute after it expires, at least a minute (as Badger's TTL).
func ttlAfter(until time.Time) time.Time {
	now := time.Now()
	return now.Add(max(until.Sub(now)+time.Minute, time.Minute))
}
