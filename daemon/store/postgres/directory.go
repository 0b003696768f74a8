package postgres

import (
	"encoding/hex"
	"fmt"

	"github.com/keyfleet/keyfleet/daemon/core"
)

// Directory sources' records (core/directory.go; migrations/00002).
var (
	tDirLinks  = newTable("directory_links")
	tDirStates = newTable("directory_states")
	tDirGroups = newTable("directory_groups", "source")
)

// linkKey is the directory_links key of a source's entry.
func (b *box) linkKey(source, externalID string) string {
	return hex.EncodeToString(b.index("external", source, externalID))
}

// putLink records u's link, if it has one with an id.
func (t *tx) putLink(u core.User) error {
	if u.External == nil || u.External.ID == "" {
		return nil
	}
	return t.put(tDirLinks, t.s.box.linkKey(u.External.Source, u.External.ID), u.ID)
}

// deleteLink drops u's link record, if any.
func (t *tx) deleteLink(u core.User) error {
	if u.External == nil || u.External.ID == "" {
		return nil
	}
	return t.del(tDirLinks, t.s.box.linkKey(u.External.Source, u.External.ID))
}

func (r *readTx) UserByExternal(source, id string) (core.User, error) {
	ref := source + ":" + id
	if id == "" {
		return core.User{}, &core.NotFoundError{Kind: "user", Ref: ref}
	}
	uid, err := get[string](r, tDirLinks, r.s.box.linkKey(source, id), "user", ref)
	if err != nil {
		return core.User{}, err
	}
	u, err := r.User(uid)
	if err != nil {
		return core.User{}, err
	}
	if u.External == nil || u.External.Source != source || u.External.ID != id {
		return core.User{}, &core.NotFoundError{Kind: "user", Ref: ref}
	}
	return u, nil
}

// RenameUser writes u under its new username (the users row's name hash
// is its index); ErrAlreadyExists when another user has it.
func (t *tx) RenameUser(old string, u core.User) error {
	if old != u.Username {
		var other string
		err := t.q.QueryRow(t.ctx, "SELECT k FROM users WHERE name_hash = $1", t.s.box.index("username", u.Username)).Scan(&other)
		switch {
		case err == nil && other != u.ID:
			return fmt.Errorf("%w: username %q is taken", core.ErrAlreadyExists, u.Username)
		case err != nil && !isNoRows(err):
			return t.fail(err)
		}
	}
	return t.PutUser(u)
}

func (r *readTx) DirectoryState(source string) (core.DirectoryState, error) {
	return get[core.DirectoryState](r, tDirStates, source, "directory source", source)
}

func (r *readTx) DirectoryStates() ([]core.DirectoryState, error) {
	return all(func(pg core.PageReq) ([]core.DirectoryState, string, error) {
		return list(r, tDirStates, where{}, pg, func(core.DirectoryState) bool { return true })
	})
}

func (t *tx) PutDirectoryState(st core.DirectoryState) error { return t.put(tDirStates, st.Source, st) }

func groupKey(source, id string) string { return source + "/" + id }

func (r *readTx) DirectoryGroup(source, id string) (core.DirectoryGroup, error) {
	return get[core.DirectoryGroup](r, tDirGroups, groupKey(source, id), "group", id)
}

func (r *readTx) DirectoryGroups(source string, pg core.PageReq) ([]core.DirectoryGroup, string, error) {
	w := where{}
	w.eq("source", source)
	return list(r, tDirGroups, w, pg, func(core.DirectoryGroup) bool { return true })
}

func (t *tx) PutDirectoryGroup(g core.DirectoryGroup) error {
	return t.put(tDirGroups, groupKey(g.Source, g.ID), g, g.Source)
}

func (t *tx) DeleteDirectoryGroup(g core.DirectoryGroup) error {
	return t.del(tDirGroups, groupKey(g.Source, g.ID))
}

// all reads every page of a list.
func all[T any](page func(core.PageReq) ([]T, string, error)) ([]T, error) {
	var out []T
	pg := core.PageReq{Limit: core.MaxPageSize}
	for {
		items, next, err := page(pg)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		if next == "" {
			return out, nil
		}
		pg.After = next
	}
}
