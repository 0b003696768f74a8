package store

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// The user indexes (keys.go: ug/, ur/, us/, uq/) let every user filter
// read only the users it may match, in order.

// The role and the status that nearly every user has (a person's
// default role "user", the status "active") are not indexed (schema 5):
// an index of them would list nearly every user, as the index of all
// users by name does, at the cost of two entries more for every user
// written. A list by one of them reads users in username order and keeps
// those that match, examining at most core.MaxExamined a page like every
// list; a store where few users have it lists them in shorter pages.
func roleIndexed(role string) bool     { return role != api.RoleUser }
func statusIndexed(status string) bool { return status != api.UserActive }

// userIndexKeys are the index keys that file u.
func userIndexKeys(u core.User) [][]byte {
	out := make([][]byte, 0, len(u.Groups)+len(u.Roles)+1+6)
	for _, g := range u.Groups {
		out = append(out, userIndexKey(pUserGroup, g, u.Username))
	}
	for _, r := range u.Roles {
		if roleIndexed(r) {
			out = append(out, userIndexKey(pUserRole, r, u.Username))
		}
	}
	if statusIndexed(u.Status) {
		out = append(out, userIndexKey(pUserStatus, u.Status, u.Username))
	}
	for _, t := range u.SearchTerms() {
		out = append(out, userIndexKey(pUserTerm, t, u.Username))
	}
	return out
}

// indexUser files u in the indexes, and takes out the entries of was (the
// user as stored before; nil for a new user) that no longer apply.
// Entries that stay are not written again.
func indexUser(w setDeleter, was *core.User, u core.User) error {
	id := []byte(u.ID) // every entry's value; none changes it
	old := map[string]bool{}
	if was != nil {
		for _, k := range userIndexKeys(*was) {
			old[string(k)] = true
		}
	}
	for _, k := range userIndexKeys(u) {
		if old[string(k)] {
			delete(old, string(k))
			continue
		}
		if err := w.Set(k, id); err != nil {
			return err
		}
	}
	for k := range old {
		if err := w.Delete([]byte(k)); err != nil {
			return err
		}
	}
	return nil
}

// unindexUser takes u's entries out of the indexes.
func unindexUser(w setDeleter, u core.User) error {
	for _, k := range userIndexKeys(u) {
		if err := w.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// storedUser reads the user as stored, nil if there is none.
func storedUser(txn *badger.Txn, id string) (*core.User, error) {
	u, err := get[core.User](txn, key(pUser, id), "user", id)
	if errors.Is(err, core.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// setDeleter is what index maintenance writes through: a transaction or a
// write batch.
type setDeleter interface {
	setter
	Delete(k []byte) error
}

// Users lists users through the index that fits the filter: the search
// terms for a query (in term order, then username), else the users of the
// group, of the role, in the status (of those indexed), or all of them,
// in username order.
// At most core.MaxExamined index entries are looked at for one page.
func (r *readTx) Users(f core.UserFilter, pg core.PageReq) ([]core.User, string, error) {
	if f.Query != "" {
		return r.usersByTerm(f, pg)
	}
	prefix := []byte(pUsername)
	switch {
	case f.Group != "":
		prefix = userIndexKey(pUserGroup, f.Group, "")
	case f.Role != "" && roleIndexed(f.Role):
		prefix = userIndexKey(pUserRole, f.Role, "")
	case f.Status != "" && statusIndexed(f.Status):
		prefix = userIndexKey(pUserStatus, f.Status, "")
	}
	var start []byte
	if pg.After != "" {
		start = append(bytes.Clone(prefix), pg.After...)
	}
	return r.scanUsers(prefix, start, pg.Limit, func(k []byte, u core.User) (string, bool) {
		name := string(k[len(prefix):])
		return name, name != pg.After && f.Match(u)
	})
}

// usersByTerm lists the users with a search term that starts with the
// query, each at the first such term (User.MatchTerm).
func (r *readTx) usersByTerm(f core.UserFilter, pg core.PageReq) ([]core.User, string, error) {
	prefix := key(pUserTerm, core.FoldTerm(f.Query))
	var start []byte
	var after string
	if pg.After != "" {
		term, name, err := core.ParseTermCursor(pg.After)
		if err != nil {
			return nil, "", err
		}
		start, after = userIndexKey(pUserTerm, term, name), string(userIndexKey(pUserTerm, term, name))
	}
	return r.scanUsers(prefix, start, pg.Limit, func(k []byte, u core.User) (string, bool) {
		term, name, _ := strings.Cut(string(k[len(pUserTerm):]), "\x00")
		first, _ := u.MatchTerm(f.Query)
		return core.TermCursor(term, name), string(k) != after && first == term && f.Match(u)
	})
}

// scanUsers pages through index entries under prefix (each holding a user
// id) from start: keep says what cursor an entry stands for and whether
// its user is listed. It stops at limit users, or after core.MaxExamined
// entries with the cursor of the last one.
func (r *readTx) scanUsers(prefix, start []byte, limit int, keep func(k []byte, u core.User) (string, bool)) ([]core.User, string, error) {
	// The users of a page lie anywhere in the store: read only their
	// own pages of it (readadvice.go).
	r.readRandomly()
	opts := badger.DefaultIteratorOptions
	opts.Prefix, opts.PrefetchValues = prefix, false
	it := r.txn.NewIterator(opts)
	defer it.Close()
	if start == nil {
		start = prefix
	}
	var out []core.User
	var last string
	examined := 0
	for it.Seek(start); it.Valid(); it.Next() {
		if examined == core.MaxExamined {
			return out, last, nil
		}
		examined++
		item := it.Item()
		id, err := item.ValueCopy(nil)
		if err != nil {
			return nil, "", err
		}
		u, err := r.User(string(id))
		if err != nil {
			return nil, "", fmt.Errorf("index entry %q: %w", item.Key(), err)
		}
		cursor, ok := keep(item.Key(), u)
		if !ok {
			last = cursor
			continue
		}
		if len(out) == limit {
			return out, last, nil
		}
		out, last = append(out, u), cursor
	}
	return out, "", nil
}
