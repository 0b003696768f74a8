package store

import (
	"encoding/json"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/keyfleet/keyfleet/daemon/core"
)

// Directory sources' records (core/directory.go). The external-id index
// (ux/) is written with the user record by InsertUser and PutUser and is
// verified on read: an entry left behind by a user unlinked or linked
// anew points at a user whose link no longer matches, and reads as not
// found.

func externalKey(source, id string) []byte { return key(pExternal, source, "\x00", id) }

func directoryGroupKey(source, id string) []byte { return key(pDirGroup, source, "\x00", id) }

// putExternalIndex records u's link, if any.
func putExternalIndex(s setter, u core.User) error {
	if u.External == nil || u.External.ID == "" {
		return nil
	}
	return s.Set(externalKey(u.External.Source, u.External.ID), []byte(u.ID))
}

func (r *readTx) UserByExternal(source, id string) (core.User, error) {
	ref := source + ":" + id
	if id == "" {
		return core.User{}, &core.NotFoundError{Kind: "user", Ref: ref}
	}
	uid, err := getString(r.txn, externalKey(source, id), "user", ref)
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

// RenameUser moves the username index from old to u.Username and writes u.
func (t *tx) RenameUser(old string, u core.User) error {
	if old == u.Username {
		return t.PutUser(u)
	}
	taken, err := t.nameTaken(u.Username)
	if err != nil {
		return err
	}
	if taken {
		return fmt.Errorf("%w: username %q is taken", core.ErrAlreadyExists, u.Username)
	}
	t.nameWritten()
	if err := t.w.Delete(key(pUsername, old)); err != nil {
		return err
	}
	if err := t.w.Set(key(pUsername, u.Username), []byte(u.ID)); err != nil {
		return err
	}
	return t.PutUser(u)
}

func (r *readTx) DirectoryState(source string) (core.DirectoryState, error) {
	return get[core.DirectoryState](r.txn, key(pDirState, source), "directory source", source)
}

func (r *readTx) DirectoryStates() ([]core.DirectoryState, error) {
	out, _, err := list(r.txn, []byte(pDirState), core.PageReq{Limit: 1 << 20}, loadValue[core.DirectoryState](pDirState),
		func(core.DirectoryState) bool { return true })
	return out, err
}

func (t *tx) PutDirectoryState(st core.DirectoryState) error {
	return put(t.w, key(pDirState, st.Source), st)
}

func (r *readTx) DirectoryGroup(source, id string) (core.DirectoryGroup, error) {
	return get[core.DirectoryGroup](r.txn, directoryGroupKey(source, id), "group", id)
}

func (r *readTx) DirectoryGroups(source string, pg core.PageReq) ([]core.DirectoryGroup, string, error) {
	prefix := key(pDirGroup, source, "\x00")
	load := func(item *badger.Item) (core.DirectoryGroup, string, error) {
		var g core.DirectoryGroup
		err := item.Value(func(b []byte) error { return json.Unmarshal(b, &g) })
		return g, string(item.Key()[len(prefix):]), err
	}
	return list(r.txn, prefix, pg, load, func(core.DirectoryGroup) bool { return true })
}

func (t *tx) PutDirectoryGroup(g core.DirectoryGroup) error {
	return put(t.w, directoryGroupKey(g.Source, g.ID), g)
}

func (t *tx) DeleteDirectoryGroup(g core.DirectoryGroup) error {
	return t.w.Delete(directoryGroupKey(g.Source, g.ID))
}
