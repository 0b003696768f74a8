package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// keysUnder lists the keys under the given prefixes, sorted.
func keysUnder(t *testing.T, st *Store, prefixes ...string) []string {
	t.Helper()
	var out []string
	err := st.db.View(func(txn *badger.Txn) error {
		for _, p := range prefixes {
			err := scanPrefix(txn, []byte(p), false, func(item *badger.Item) error {
				out = append(out, string(item.KeyCopy(nil)))
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

var indexPrefixes = []string{pUserGroup, pUserRole, pUserStatus, pUserTerm, pAuditAction, pAuditActor}

// A store of schema 2 has neither the user indexes nor the audit indexes
// by actor and action: opening it builds them from the records, the same
// as writing them as they went would have, and a stray entry that a
// build cut short left is gone.
func TestOpeningASchema2StoreBuildsTheUserAndAuditIndexes(t *testing.T) {
	dir := t.TempDir()
	st, svc := openAt(t, dir, nil)
	ctx := context.Background()
	for i := range 30 {
		in := api.CreateUser{Username: fmt.Sprintf("user-%02d", i), DisplayName: fmt.Sprintf("Person %d", i),
			Email: fmt.Sprintf("u%d@ex%d.test", i, i%3), Groups: []string{fmt.Sprintf("g%d", i%4)}}
		if _, _, err := svc.CreateUser(ctx, admin, in); err != nil {
			t.Fatal(err)
		}
	}
	want := keysUnder(t, st, indexPrefixes...)
	if len(want) < 30*6 {
		t.Fatalf("only %d index entries for 30 users and their events", len(want))
	}
	for _, p := range indexPrefixes {
		if err := st.db.DropPrefix([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	err := st.db.Update(func(txn *badger.Txn) error {
		if err := txn.Set(userIndexKey(pUserGroup, "g0", "ghost"), []byte("usr_ghost")); err != nil {
			return err
		}
		return txn.Set([]byte(kSchema), []byte("2"))
	})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, _ = openAt(t, dir, nil)
	defer st.Close()
	if got := keysUnder(t, st, indexPrefixes...); !slices.Equal(got, want) {
		t.Fatalf("after the upgrade the indexes hold %d entries, written as they went %d:\n%q\n%q", len(got), len(want), got, want)
	}
	if v, err := st.schema(); err != nil || v != schemaVersion {
		t.Fatalf("schema %q, %v; want %s", v, err, schemaVersion)
	}
	st.View(ctx, func(tx core.ReadTx) error {
		us, _, err := tx.Users(core.UserFilter{Group: "g0"}, core.PageReq{Limit: 100})
		if err != nil || len(us) != 8 {
			t.Errorf("group g0 after the upgrade: %d users, %v; want 8", len(us), err)
		}
		return nil
	})
}

// A store of schema 4 (or 3) files users under every search term, those
// that start another included, and under the role "user" and the status
// "active": opening it builds the user indexes again, the same as writing
// them as they went would have; a query finds each user once, at its
// longer term, and lists by that role and status find everyone.
func TestOpeningASchema4StoreBuildsTheUserIndexesAgain(t *testing.T) {
	for _, from := range []string{"3", "4"} {
		t.Run("from "+from, func(t *testing.T) {
			dir := t.TempDir()
			st, svc := openAt(t, dir, nil)
			ctx := context.Background()
			var users []core.User
			for i := range 30 {
				in := api.CreateUser{Username: fmt.Sprintf("user-%02d", i), DisplayName: fmt.Sprintf("Person %d", i),
					Email: fmt.Sprintf("user-%02d@ex%d.test", i, i%3), Groups: []string{fmt.Sprintf("g%d", i%2)}}
				u, _, err := svc.CreateUser(ctx, admin, in)
				if err != nil {
					t.Fatal(err)
				}
				users = append(users, u)
			}
			prefixes := []string{pUserGroup, pUserRole, pUserStatus, pUserTerm}
			want := keysUnder(t, st, prefixes...)
			if len(want) != 30*4+30 { // email, its domain, display name, its number; the users of g0 and g1
				t.Fatalf("%d user index entries for 30 users; want %d", len(want), 30*4+30)
			}
			err := st.db.Update(func(txn *badger.Txn) error {
				for _, u := range users { // what schema 4 wrote besides: the username and the display name's first word, role and status
					for _, k := range [][]byte{userIndexKey(pUserTerm, u.Username, u.Username), userIndexKey(pUserTerm, "person", u.Username),
						userIndexKey(pUserRole, api.RoleUser, u.Username), userIndexKey(pUserStatus, api.UserActive, u.Username)} {
						if err := txn.Set(k, []byte(u.ID)); err != nil {
							return err
						}
					}
				}
				return txn.Set([]byte(kSchema), []byte(from))
			})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(keysUnder(t, st, prefixes...)); n != len(want)+120 {
				t.Fatalf("%d user index entries as schema %s; want %d", n, from, len(want)+120)
			}
			st.Close()
			st, _ = openAt(t, dir, nil)
			defer st.Close()
			if got := keysUnder(t, st, prefixes...); !slices.Equal(got, want) {
				t.Fatalf("after the upgrade the user index entries are %d, written as they went %d:\n%q\n%q", len(got), len(want), got, want)
			}
			if v, err := st.schema(); err != nil || v != schemaVersion {
				t.Fatalf("schema %q, %v; want %s", v, err, schemaVersion)
			}
			st.View(ctx, func(tx core.ReadTx) error {
				for f, n := range map[core.UserFilter]int{{Query: "user-0"}: 10, {Query: "person"}: 30, {Query: "user-07"}: 1,
					{Query: "user-07@"}: 1, {Query: "@ex1"}: 10, {Role: api.RoleUser}: 30, {Status: api.UserActive, Group: "g1"}: 15} {
					us, _, err := tx.Users(f, core.PageReq{Limit: 100})
					if err != nil || len(us) != n {
						t.Errorf("%+v after the upgrade: %d users, %v; want %d", f, len(us), err, n)
					}
				}
				return nil
			})
		})
	}
}

// A page examines at most core.MaxExamined index entries: a query that
// matches nobody among more users than that comes back empty with a
// cursor, and following the cursors finds what there is, once.
func TestAPageExaminesABoundedNumberOfUsers(t *testing.T) {
	st, _ := openAt(t, t.TempDir(), nil)
	defer st.Close()
	const n = core.MaxExamined + 1500
	for i := 0; i < n; i += 1000 {
		err := st.Update(context.Background(), func(tx core.Tx) error {
			for j := i; j < min(i+1000, n); j++ {
				u := core.User{ID: fmt.Sprintf("usr_%06d", j), Username: fmt.Sprintf("u%06d", j), Status: "active", Kind: "person",
					Groups: []string{"everyone"}}
				if j == n-1 {
					u.Roles = []string{"auditor", "user"} // the one match, after the bound
				}
				if err := tx.InsertUser(u); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []core.UserFilter{
		{Group: "everyone", Role: "auditor"}, // through the group's index
		{Status: "active", Role: "user"},     // neither indexed: through all users by name
	} {
		pagesFind(t, st, f, fmt.Sprintf("u%06d", n-1))
	}
}

// pagesFind checks that f's first page reaches the bound with nothing
// found, and that the second finds want alone.
func pagesFind(t *testing.T, st *Store, f core.UserFilter, want string) {
	t.Helper()
	var pages int
	var found []string
	pg := core.PageReq{Limit: 50}
	for {
		var us []core.User
		var next string
		st.View(context.Background(), func(tx core.ReadTx) error {
			var err error
			us, next, err = tx.Users(f, pg)
			return err
		})
		pages++
		for _, u := range us {
			found = append(found, u.Username)
		}
		if pages == 1 && (len(us) != 0 || next == "") {
			t.Fatalf("%+v: the first page: %d users, cursor %q; want none and a cursor (the bound was reached)", f, len(us), next)
		}
		if next == "" {
			break
		}
		pg.After = next
	}
	if pages != 2 || !slices.Equal(found, []string{want}) {
		t.Fatalf("%+v: %d pages found %v", f, pages, found)
	}
}

// A transaction larger than Badger takes at once (an import of many
// rows into a store with a small memtable) is refused as invalid, saying
// how to split it, not as an internal error; nothing of it is written.
func TestATransactionTooLargeIsRefusedSayingToSplitIt(t *testing.T) {
	st, err := Open(Options{Dir: t.TempDir(), EncryptionKey: testKey, MemTableSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = st.Update(context.Background(), func(tx core.Tx) error {
		for i := range 5000 {
			if err := tx.InsertUser(core.User{ID: fmt.Sprintf("usr_%05d", i), Username: fmt.Sprintf("u%05d", i), Status: "active"}); err != nil {
				return err
			}
		}
		return nil
	})
	if !errors.Is(err, core.ErrInvalid) || !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "split it") {
		t.Fatalf("a transaction too large: %v", err)
	}
	st.View(context.Background(), func(tx core.ReadTx) error {
		if us, _, _ := tx.Users(core.UserFilter{}, core.PageReq{Limit: 10}); len(us) != 0 {
			t.Errorf("%d users were written", len(us))
		}
		return nil
	})
}
