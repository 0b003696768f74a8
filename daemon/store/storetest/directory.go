package storetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/keyfleet/keyfleet/daemon/core"
)

// testDirectory: a user's link to a directory source is found by the
// source and the entry's id, follows the user's link as it changes
// (verified on read), and goes with the user; a rename moves the
// username; sources' states and SCIM groups are kept per source.
func testDirectory(t *testing.T, b Backend) {
	st := open(t, b)
	u := userN(1, "jdoe")
	u.External = &core.ExternalLink{Source: "corp", ID: "uuid-1", LinkedAt: t0}
	find := func(source, id string) (core.User, error) {
		var got core.User
		err := st.View(t.Context(), func(tx core.ReadTx) error {
			var err error
			got, err = tx.UserByExternal(source, id)
			return err
		})
		return got, err
	}
	update(t, st, func(tx core.Tx) error { return tx.InsertUser(u) })
	if got, err := find("corp", "uuid-1"); err != nil || got.ID != u.ID {
		t.Fatalf("by external id: %+v, %v", got, err)
	}
	for _, x := range [][2]string{{"other", "uuid-1"}, {"corp", "uuid-2"}, {"corp", ""}} {
		_, err := find(x[0], x[1])
		wantNotFound(t, fmt.Sprintf("user by external id %s:%s", x[0], x[1]), err)
	}

	renamed := u
	renamed.Username = "jsmith"
	update(t, st, func(tx core.Tx) error {
		if _, err := tx.User(u.ID); err != nil { // as core reads before it renames
			return err
		}
		return tx.RenameUser("jdoe", renamed)
	})
	view(t, st, func(tx core.ReadTx) error {
		_, err := tx.UserByName("jdoe")
		wantNotFound(t, "the old username", err)
		got, err := tx.UserByName("jsmith")
		if err != nil || got.ID != u.ID {
			t.Fatalf("the new username: %+v, %v", got, err)
		}
		return nil
	})
	other := userN(2, "amy")
	update(t, st, func(tx core.Tx) error { return tx.InsertUser(other) })
	clash := renamed
	clash.Username = "amy"
	err := st.Update(t.Context(), func(tx core.Tx) error { return tx.RenameUser("jsmith", clash) })
	if !errors.Is(err, core.ErrAlreadyExists) {
		t.Fatalf("renaming onto a taken username: %v", err)
	}

	unlinked := renamed
	unlinked.External = nil
	update(t, st, func(tx core.Tx) error { return tx.PutUser(unlinked) })
	_, err = find("corp", "uuid-1")
	wantNotFound(t, "a user unlinked since", err)
	update(t, st, func(tx core.Tx) error { return tx.PutUser(renamed) })
	update(t, st, func(tx core.Tx) error { return tx.DeleteUser(renamed) })
	_, err = find("corp", "uuid-1")
	wantNotFound(t, "a deleted user", err)
	testDirectoryRecords(t, st)
}

func testDirectoryRecords(t *testing.T, st Store) {
	update(t, st, func(tx core.Tx) error {
		for _, s := range []core.DirectoryState{{Source: "corp", Kind: "ldap", Cursor: "c1"}, {Source: "scim:okta", Kind: "scim"}} {
			if err := tx.PutDirectoryState(s); err != nil {
				return err
			}
		}
		for i := range 7 {
			g := core.DirectoryGroup{Source: "scim:okta", ID: fmt.Sprintf("grp_%02d", i), DisplayName: fmt.Sprint("G", i), Members: []string{"usr_1"}, Version: 1}
			if err := tx.PutDirectoryGroup(g); err != nil {
				return err
			}
		}
		if err := tx.PutDirectoryGroup(core.DirectoryGroup{Source: "scim:entra", ID: "grp_00"}); err != nil {
			return err
		}
		return tx.DeleteDirectoryGroup(core.DirectoryGroup{Source: "scim:okta", ID: "grp_03"})
	})
	view(t, st, func(tx core.ReadTx) error {
		states, err := tx.DirectoryStates()
		if err != nil || len(states) != 2 {
			t.Fatalf("states %+v, %v", states, err)
		}
		got, err := tx.DirectoryState("corp")
		same(t, "the corp state", got, core.DirectoryState{Source: "corp", Kind: "ldap", Cursor: "c1"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = tx.DirectoryState("nowhere")
		wantNotFound(t, "an unknown source's state", err)
		ids := allPages(t, "okta's groups", func(pg core.PageReq) ([]core.DirectoryGroup, string, error) {
			return tx.DirectoryGroups("scim:okta", pg)
		}, func(g core.DirectoryGroup) string { return g.ID })
		same(t, "okta's groups", ids, []string{"grp_00", "grp_01", "grp_02", "grp_04", "grp_05", "grp_06"})
		g, err := tx.DirectoryGroup("scim:okta", "grp_01")
		if err != nil || g.DisplayName != "G1" || len(g.Members) != 1 {
			t.Fatalf("a group: %+v, %v", g, err)
		}
		_, err = tx.DirectoryGroup("scim:okta", "grp_03")
		wantNotFound(t, "a deleted group", err)
		return nil
	})
}
