package postgres

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/keyfleet/keyfleet/daemon/core"
)

func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

// where collects equality conditions on index columns. Lists still apply
// the filter's Match to what they read, so the result is the filter's
// exactly, whichever conditions SQL took.
type where struct {
	conds []string
	args  []any
}

func (w *where) eq(col, v string) {
	if v != "" {
		w.eqAny(col, v)
	}
}

func (w *where) eqAny(col string, v any) {
	w.args = append(w.args, v)
	w.conds = append(w.conds, fmt.Sprintf("%s = $%d", col, len(w.args)+1)) // $1 is the cursor
}

func decode[T any](b *box, t *table, k string, sealed []byte, kind string) (T, error) {
	var v T
	plain, err := b.open(t.name, k, sealed)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(plain, &v); err != nil {
		return v, fmt.Errorf("decoding %s %s: %w", kind, k, err)
	}
	return v, nil
}

// list pages through a table in key order after the cursor, keeping the
// records that match: the page, and the cursor of its last record when
// more match after it ("" at the end), as the Badger store's lists.
func list[T any](r *readTx, t *table, w where, pg core.PageReq, match func(T) bool) ([]T, string, error) {
	sql := "SELECT k, xmin::text, rec FROM " + t.name + " WHERE k > $1"
	for _, c := range w.conds {
		sql += " AND " + c
	}
	batch := pg.Limit + 1
	sql += fmt.Sprintf(" ORDER BY k LIMIT %d", batch)
	var out []T
	var last string
	after := pg.After
	for {
		n := 0
		rows, err := r.q.Query(r.ctx, sql, append([]any{after}, w.args...)...)
		if err != nil {
			return nil, "", r.fail(err)
		}
		type row struct {
			k, xmin string
			rec     []byte
		}
		var got []row
		for rows.Next() {
			var x row
			if err := rows.Scan(&x.k, &x.xmin, &x.rec); err != nil {
				rows.Close()
				return nil, "", err
			}
			got = append(got, x)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, "", r.fail(err)
		}
		for _, x := range got {
			n++
			after = x.k
			r.s.cache.add(rowKey{t, x.k}, version{x.xmin, x.rec})
			v, err := decode[T](r.s.box, t, x.k, x.rec, t.name)
			if err != nil {
				return nil, "", err
			}
			if !match(v) {
				continue
			}
			if len(out) == pg.Limit {
				return out, last, nil
			}
			r.noteRead(t, x.k, x.xmin)
			out, last = append(out, v), x.k
		}
		if n < batch {
			return out, "", nil
		}
	}
}

// Users lists users in username order, as the Badger store does. The
// usernames are sealed, so the order is made here: every user's id and
// sealed name are read (names once per process: a user's name never
// changes), sorted, and the page's records read after the cursor.
//
// A query (core.UserFilter) lists users in the order of the search term
// they matched by: the terms are in the sealed records, so every user is
// read and the matches sorted (usersByTerm); the Badger store reads only
// the matches, through an index.
func (r *readTx) Users(f core.UserFilter, pg core.PageReq) ([]core.User, string, error) {
	if f.Query != "" {
		return r.usersByTerm(f, pg)
	}
	all, err := r.allUserNames(f)
	if err != nil {
		return nil, "", err
	}
	var byName []idName
	for _, x := range all {
		if x.name > pg.After {
			byName = append(byName, x)
		}
	}
	slices.SortFunc(byName, func(a, b idName) int { return strings.Compare(a.name, b.name) })
	return r.usersInOrder(byName, f, pg)
}

type idName struct{ id, name string }

// allUserNames reads the id and name of every user in f's status (all
// statuses when it has none).
func (r *readTx) allUserNames(f core.UserFilter) ([]idName, error) {
	w := where{}
	w.eq("status", f.Status)
	sql := "SELECT k, name FROM users WHERE $1::text IS NOT NULL"
	for _, c := range w.conds {
		sql += " AND " + c
	}
	rows, err := r.q.Query(r.ctx, sql, append([]any{""}, w.args...)...)
	if err != nil {
		return nil, r.fail(err)
	}
	defer rows.Close()
	var out []idName
	for rows.Next() {
		var id string
		var sealed []byte
		if err := rows.Scan(&id, &sealed); err != nil {
			return nil, err
		}
		name, err := r.s.names.get(r.s.box, id, sealed)
		if err != nil {
			return nil, err
		}
		out = append(out, idName{id, name})
	}
	return out, r.fail2(rows.Err())
}

// usersInOrder reads the users of byName in that order, in batches,
// until a page of matches and one more are found.
func (r *readTx) usersInOrder(byName []idName, f core.UserFilter, pg core.PageReq) ([]core.User, string, error) {
	var out []core.User
	var last string
	batch := pg.Limit + 1
	for len(byName) > 0 {
		n := min(batch, len(byName))
		part := byName[:n]
		byName = byName[n:]
		users, err := r.usersByID(part)
		if err != nil {
			return nil, "", err
		}
		for i, u := range users {
			if u == nil || !f.Match(*u) {
				continue
			}
			if len(out) == pg.Limit {
				return out, last, nil
			}
			out, last = append(out, *u), part[i].name
		}
		batch = max(batch, 2*n)
	}
	return out, "", nil
}

// usersByID reads users by id, in the order given (nil for one deleted
// meanwhile).
func (r *readTx) usersByID(part []idName) ([]*core.User, error) {
	ids := make([]string, len(part))
	pos := make(map[string]int, len(part))
	for i, p := range part {
		ids[i], pos[p.id] = p.id, i
	}
	rows, err := r.q.Query(r.ctx, "SELECT k, xmin::text, rec FROM users WHERE k = ANY($1)", ids)
	if err != nil {
		return nil, r.fail(err)
	}
	defer rows.Close()
	out := make([]*core.User, len(part))
	for rows.Next() {
		var k, xmin string
		var sealed []byte
		if err := rows.Scan(&k, &xmin, &sealed); err != nil {
			return nil, err
		}
		u, err := decode[core.User](r.s.box, tUsers, k, sealed, "user")
		if err != nil {
			return nil, err
		}
		r.noteRead(tUsers, k, xmin)
		out[pos[k]] = &u
	}
	return out, r.fail2(rows.Err())
}

// nameCache keeps opened usernames by user id. A user's username never
// changes, so an entry never goes stale; the cache is dropped whole when
// it grows past maxNames.
type nameCache struct {
	mu sync.RWMutex
	m  map[string]string
}

const maxNames = 2_000_000

func (c *nameCache) get(b *box, id string, sealed []byte) (string, error) {
	c.mu.RLock()
	name, ok := c.m[id]
	c.mu.RUnlock()
	if ok {
		return name, nil
	}
	plain, err := b.open("username", id, sealed)
	if err != nil {
		return "", err
	}
	name = string(plain)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxNames {
		c.m = map[string]string{}
	}
	c.m[id] = name
	c.mu.Unlock()
	return name, nil
}

// usersByTerm lists the users f matches in the order of the search term
// each matched by, then username, after the cursor.
func (r *readTx) usersByTerm(f core.UserFilter, pg core.PageReq) ([]core.User, string, error) {
	var afterTerm, afterName string
	if pg.After != "" {
		var err error
		if afterTerm, afterName, err = core.ParseTermCursor(pg.After); err != nil {
			return nil, "", err
		}
	}
	type match struct {
		term string
		u    core.User
	}
	var all []match
	byName, err := r.allUserNames(core.UserFilter{Status: f.Status})
	if err != nil {
		return nil, "", err
	}
	for len(byName) > 0 {
		part := byName[:min(1000, len(byName))]
		byName = byName[len(part):]
		users, err := r.usersByID(part)
		if err != nil {
			return nil, "", err
		}
		for _, u := range users {
			if u == nil || !f.Match(*u) {
				continue
			}
			term, _ := u.MatchTerm(f.Query)
			if pg.After == "" || term > afterTerm || (term == afterTerm && u.Username > afterName) {
				all = append(all, match{term, *u})
			}
		}
	}
	slices.SortFunc(all, func(a, b match) int {
		if c := strings.Compare(a.term, b.term); c != 0 {
			return c
		}
		return strings.Compare(a.u.Username, b.u.Username)
	})
	var out []core.User
	for i, m := range all {
		if i == pg.Limit {
			last := all[i-1]
			return out, core.TermCursor(last.term, last.u.Username), nil
		}
		out = append(out, m.u)
	}
	return out, "", nil
}
