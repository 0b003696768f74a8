package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

func TestTheExternalIndexFollowsTheLinkAndRenamesMoveTheUsername(t *testing.T) {
	st, err := Open(Options{InMemory: true, EncryptionKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	u := core.User{ID: "usr_00000000000000000000000001", Username: "jdoe", Kind: api.KindPerson, Status: api.UserActive,
		External: &core.ExternalLink{Source: "corp", ID: "uuid-1", LinkedAt: time.Now()}}
	update := func(fn func(core.Tx) error) {
		t.Helper()
		if err := st.Update(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	find := func(source, id string) (core.User, error) {
		var got core.User
		err := st.View(ctx, func(tx core.ReadTx) error {
			var err error
			got, err = tx.UserByExternal(source, id)
			return err
		})
		return got, err
	}
	update(func(tx core.Tx) error { return tx.InsertUser(u) })
	if got, err := find("corp", "uuid-1"); err != nil || got.ID != u.ID {
		t.Fatalf("by external id: %+v, %v", got, err)
	}
	if _, err := find("other", "uuid-1"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("another source's id found the user: %v", err)
	}

	renamed := u
	renamed.Username = "jsmith"
	update(func(tx core.Tx) error { return tx.RenameUser("jdoe", renamed) })
	err = st.View(ctx, func(tx core.ReadTx) error {
		if _, err := tx.UserByName("jdoe"); !errors.Is(err, core.ErrNotFound) {
			t.Errorf("the old username still resolves: %v", err)
		}
		got, err := tx.UserByName("jsmith")
		if err != nil || got.ID != u.ID {
			t.Errorf("the new username: %+v, %v", got, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	other := core.User{ID: "usr_00000000000000000000000002", Username: "amy", Kind: api.KindPerson, Status: api.UserActive}
	update(func(tx core.Tx) error { return tx.InsertUser(other) })
	clash := renamed
	clash.Username = "amy"
	if err := st.Update(ctx, func(tx core.Tx) error { return tx.RenameUser("jsmith", clash) }); !errors.Is(err, core.ErrAlreadyExists) {
		t.Fatalf("renaming onto a taken username: %v", err)
	}

	// Unlinked: the index entry left behind no longer finds the user.
	unlinked := renamed
	unlinked.External = nil
	update(func(tx core.Tx) error { return tx.PutUser(unlinked) })
	if _, err := find("corp", "uuid-1"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("an unlinked user is still found by the old link: %v", err)
	}
	update(func(tx core.Tx) error { return tx.PutUser(renamed) })
	update(func(tx core.Tx) error { return tx.DeleteUser(renamed) })
	if _, err := find("corp", "uuid-1"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("a deleted user is found by its link: %v", err)
	}
}

func TestDirectoryStatesAndGroupsArePerSource(t *testing.T) {
	st, err := Open(Options{InMemory: true, EncryptionKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	err = st.Update(ctx, func(tx core.Tx) error {
		for _, s := range []core.DirectoryState{{Source: "corp", Kind: "ldap", Cursor: "c1"}, {Source: "scim:okta", Kind: "scim"}} {
			if err := tx.PutDirectoryState(s); err != nil {
				return err
			}
		}
		for _, g := range []core.DirectoryGroup{{Source: "scim:okta", ID: "grp_a", DisplayName: "A"}, {Source: "scim:okta", ID: "grp_b", DisplayName: "B"}, {Source: "scim:entra", ID: "grp_c"}} {
			if err := tx.PutDirectoryGroup(g); err != nil {
				return err
			}
		}
		return tx.DeleteDirectoryGroup(core.DirectoryGroup{Source: "scim:okta", ID: "grp_b"})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = st.View(ctx, func(tx core.ReadTx) error {
		states, err := tx.DirectoryStates()
		if err != nil || len(states) != 2 || states[0].Cursor != "c1" {
			t.Errorf("states %+v, %v", states, err)
		}
		gs, next, err := tx.DirectoryGroups("scim:okta", core.PageReq{Limit: 10})
		if err != nil || next != "" || len(gs) != 1 || gs[0].ID != "grp_a" {
			t.Errorf("okta's groups %+v, %v", gs, err)
		}
		if _, err := tx.DirectoryGroup("scim:okta", "grp_c"); !errors.Is(err, core.ErrNotFound) {
			t.Errorf("another source's group: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
