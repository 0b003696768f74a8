package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// t0 is the suite's clock: records carry whole UTC times, so what is
// read back compares equal to what was written.
var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func userN(i int, name string) core.User {
	return core.User{ID: fmt.Sprintf("usr_%026d", i), Username: name, DisplayName: "Person " + name,
		Email: name + "@example.org", Kind: "person", Status: "active", CreatedAt: t0, UpdatedAt: t0}
}

func same(t *testing.T, what string, got, want any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Fatalf("%s:\n got %s\nwant %s", what, g, w)
	}
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	var nf *core.NotFoundError
	if !errors.As(err, &nf) || !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("%s: error %v, want a *core.NotFoundError", what, err)
	}
}

// allPages pages through list with small pages and checks that they add
// up to the one big page, and that the last page says there is no more.
func allPages[T any](t *testing.T, what string, list func(core.PageReq) ([]T, string, error), key func(T) string) []string {
	t.Helper()
	whole, cur, err := list(core.PageReq{Limit: core.MaxPageSize})
	if err != nil || cur != "" {
		t.Fatalf("%s: one page: cursor %q, %v", what, cur, err)
	}
	var keys []string
	after := ""
	for range 1000 {
		page, next, err := list(core.PageReq{After: after, Limit: 2})
		if err != nil {
			t.Fatalf("%s: page after %q: %v", what, after, err)
		}
		for _, v := range page {
			keys = append(keys, key(v))
		}
		if next == "" {
			break
		}
		if len(page) != 2 {
			t.Fatalf("%s: a page of %d with a cursor", what, len(page))
		}
		after = next
	}
	var wholeKeys []string
	for _, v := range whole {
		wholeKeys = append(wholeKeys, key(v))
	}
	if !slices.Equal(keys, wholeKeys) {
		t.Fatalf("%s: pages give %v, one page %v", what, keys, wholeKeys)
	}
	return keys
}

func testUsers(t *testing.T, b Backend) {
	st := open(t, b)
	alice := userN(1, "alice")
	alice.Groups, alice.Roles = []string{"eng"}, []string{"admin"}
	update(t, st, func(tx core.Tx) error { return tx.InsertUser(alice) })
	err := st.Update(ctxb, func(tx core.Tx) error { return tx.InsertUser(userN(2, "alice")) })
	if !errors.Is(err, core.ErrAlreadyExists) {
		t.Fatalf("inserting a second alice: %v, want ErrAlreadyExists", err)
	}
	view(t, st, func(tx core.ReadTx) error {
		u, err := tx.User(alice.ID)
		if err != nil {
			return err
		}
		same(t, "User", u, alice)
		u, err = tx.UserByName("alice")
		same(t, "UserByName", u, alice)
		_, err2 := tx.User(userN(2, "").ID)
		wantNotFound(t, "the refused second alice", err2)
		_, err3 := tx.UserByName("bob")
		wantNotFound(t, "UserByName of nobody", err3)
		return err
	})
	alice.Status, alice.Failures = "disabled", 3
	update(t, st, func(tx core.Tx) error { return tx.PutUser(alice) })
	view(t, st, func(tx core.ReadTx) error {
		u, err := tx.UserByName("alice")
		same(t, "user after PutUser", u, alice)
		return err
	})
	update(t, st, func(tx core.Tx) error { return tx.DeleteUser(alice) })
	view(t, st, func(tx core.ReadTx) error {
		_, err := tx.User(alice.ID)
		wantNotFound(t, "deleted user", err)
		_, err = tx.UserByName("alice")
		wantNotFound(t, "deleted user by name", err)
		return nil
	})
	update(t, st, func(tx core.Tx) error { return tx.InsertUser(userN(3, "alice")) }) // the name is free again
}

func testUserLists(t *testing.T, b Backend) {
	st := open(t, b)
	names := []string{"zoe", "Bob", "alice", "bob", "carol", "dave", "émile", "al"}
	update(t, st, func(tx core.Tx) error {
		for i, n := range names {
			u := userN(100-i, n) // ids in the opposite order of creation
			if i%2 == 0 {
				u.Groups = []string{"eng"}
			} else {
				u.Roles = []string{"user"}
			}
			if n == "carol" {
				u.Roles, u.Status, u.DisplayName = []string{"helpdesk"}, "disabled", "Carol Quux"
			}
			if err := tx.InsertUser(u); err != nil {
				return err
			}
		}
		return nil
	})
	sorted := slices.Clone(names)
	slices.Sort(sorted) // byte order: "Bob" < "al" < … < "émile"
	name := func(u core.User) string { return u.Username }
	tests := []struct {
		name string
		f    core.UserFilter
		want []string
	}{
		{"everyone in username byte order", core.UserFilter{}, sorted},
		{"by group", core.UserFilter{Group: "eng"}, []string{"alice", "carol", "zoe", "émile"}},
		{"by role", core.UserFilter{Role: "helpdesk"}, []string{"carol"}},
		{"by status", core.UserFilter{Status: "active"}, []string{"Bob", "al", "alice", "bob", "dave", "zoe", "émile"}},
		{"by the start of a word of the display name, any case", core.UserFilter{Query: "QUU"}, []string{"carol"}},
		{"by the start of the email's domain", core.UserFilter{Query: "@example"}, sorted},
		{"by the start of a username or email, in the order of what matched", core.UserFilter{Query: "al"}, []string{"al", "alice"}},
		{"by the start of the display name, each user once", core.UserFilter{Query: "person b"}, []string{"Bob", "bob"}},
		{"by the start of a name and a group", core.UserFilter{Query: "a", Group: "eng"}, []string{"alice"}},
		{"by the middle of a name: not a start, nobody", core.UserFilter{Query: "lic"}, nil},
		{"by a role nobody has", core.UserFilter{Role: "auditor"}, nil},
		{"by the role a person has by default", core.UserFilter{Role: "user"}, []string{"Bob", "al", "bob", "dave"}},
		{"by the default role and status", core.UserFilter{Role: "user", Status: "active"}, []string{"Bob", "al", "bob", "dave"}},
		{"by the default role and another status", core.UserFilter{Role: "user", Status: "disabled"}, nil},
		{"by status and group", core.UserFilter{Status: "active", Group: "eng"}, []string{"alice", "zoe", "émile"}},
		{"nobody", core.UserFilter{Group: "none"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			view(t, st, func(tx core.ReadTx) error {
				got := allPages(t, tt.name, func(p core.PageReq) ([]core.User, string, error) { return tx.Users(tt.f, p) }, name)
				if !slices.Equal(got, tt.want) {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
				return nil
			})
		})
	}
	t.Run("lists follow changes and deletions", func(t *testing.T) { userListsFollowChanges(t, st) })
}

// userListsFollowChanges: a user whose group, role, status, email or
// name changes is listed by the new values only, and a deleted user by
// none.
func userListsFollowChanges(t *testing.T, st Store) {
	var carol, dave core.User
	view(t, st, func(tx core.ReadTx) error {
		var err error
		if carol, err = tx.UserByName("carol"); err != nil {
			return err
		}
		dave, err = tx.UserByName("dave")
		return err
	})
	carol.Groups, carol.Roles, carol.Status = []string{"ops"}, []string{"auditor"}, "active"
	carol.Email, carol.DisplayName = "c.q@corp.test", "Carol Zed"
	update(t, st, func(tx core.Tx) error {
		if err := tx.PutUser(carol); err != nil {
			return err
		}
		return tx.DeleteUser(dave)
	})
	name := func(u core.User) string { return u.Username }
	tests := []struct {
		name string
		f    core.UserFilter
		want []string
	}{
		{"the old group", core.UserFilter{Group: "eng"}, []string{"alice", "zoe", "émile"}},
		{"the new group", core.UserFilter{Group: "ops"}, []string{"carol"}},
		{"the old role", core.UserFilter{Role: "helpdesk"}, nil},
		{"the new role", core.UserFilter{Role: "auditor"}, []string{"carol"}},
		{"the old status", core.UserFilter{Status: "disabled"}, nil},
		{"the new status", core.UserFilter{Status: "active"}, []string{"Bob", "al", "alice", "bob", "carol", "zoe", "émile"}},
		{"the old email's domain", core.UserFilter{Query: "@example"}, []string{"Bob", "al", "alice", "bob", "zoe", "émile"}},
		{"the new email's domain", core.UserFilter{Query: "@corp"}, []string{"carol"}},
		{"the old word of the name", core.UserFilter{Query: "quux"}, nil},
		{"the new word of the name", core.UserFilter{Query: "zed"}, []string{"carol"}},
		{"the deleted user's name", core.UserFilter{Query: "dave"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			view(t, st, func(tx core.ReadTx) error {
				got := allPages(t, tt.name, func(p core.PageReq) ([]core.User, string, error) { return tx.Users(tt.f, p) }, name)
				if !slices.Equal(got, tt.want) {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
				return nil
			})
		})
	}
}

func factorN(i int, user, device, state, kind string) core.Factor {
	return core.Factor{ID: fmt.Sprintf("fac_%026d", i), UserID: user, DeviceID: device, Kind: kind, State: state,
		Label: "key", CreatedAt: t0, Public: json.RawMessage(`{"k":1}`), Secret: []byte{1, 2, 3}}
}

func testFactors(t *testing.T, b Backend) {
	st := open(t, b)
	u1, u2 := userN(1, "u1"), userN(2, "u2")
	fs := []core.Factor{
		factorN(5, u1.ID, "dev_1", "active", "piv"), factorN(3, u1.ID, "", "pending", "totp"),
		factorN(9, u2.ID, "dev_1", "active", "fido2"), factorN(1, u2.ID, "", "revoked", "totp"),
		factorN(7, u1.ID, "dev_2", "suspended", "piv"),
	}
	update(t, st, func(tx core.Tx) error {
		for _, u := range []core.User{u1, u2} {
			if err := tx.InsertUser(u); err != nil {
				return err
			}
		}
		for _, f := range fs {
			if err := tx.PutFactor(f); err != nil {
				return err
			}
		}
		return nil
	})
	id := func(f core.Factor) string { return f.ID }
	tests := []struct {
		name string
		f    core.FactorFilter
		want []int
	}{
		{"all, in id order", core.FactorFilter{}, []int{1, 3, 5, 7, 9}},
		{"a user's", core.FactorFilter{UserID: u1.ID}, []int{3, 5, 7}},
		{"on a device", core.FactorFilter{DeviceID: "dev_1"}, []int{5, 9}},
		{"by state", core.FactorFilter{State: "active"}, []int{5, 9}},
		{"by kind and user", core.FactorFilter{Kind: "totp", UserID: u2.ID}, []int{1}},
		{"by device and state", core.FactorFilter{DeviceID: "dev_1", State: "revoked"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			view(t, st, func(tx core.ReadTx) error {
				got := allPages(t, tt.name, func(p core.PageReq) ([]core.Factor, string, error) { return tx.Factors(tt.f, p) }, id)
				var want []string
				for _, n := range tt.want {
					want = append(want, fmt.Sprintf("fac_%026d", n))
				}
				if !slices.Equal(got, want) {
					t.Fatalf("got %v, want %v", got, want)
				}
				return nil
			})
		})
	}
	moved := fs[0]
	moved.DeviceID, moved.State = "dev_3", "revoked"
	update(t, st, func(tx core.Tx) error { return tx.PutFactor(moved) })
	update(t, st, func(tx core.Tx) error { return tx.DeleteFactor(fs[1]) })
	view(t, st, func(tx core.ReadTx) error {
		f, err := tx.Factor(moved.ID)
		same(t, "moved factor", f, moved)
		got, _, _ := tx.Factors(core.FactorFilter{DeviceID: "dev_1"}, core.PageReq{Limit: 10})
		if len(got) != 1 || got[0].ID != fs[2].ID {
			t.Fatalf("dev_1 after the move: %v", got)
		}
		_, err2 := tx.Factor(fs[1].ID)
		wantNotFound(t, "deleted factor", err2)
		return err
	})
}

func testDevices(t *testing.T, b Backend) {
	st := open(t, b)
	d := func(i int, vendor, serial, user, state string) core.Device {
		return core.Device{ID: fmt.Sprintf("dev_%026d", i), Vendor: vendor, Serial: serial, UserID: user, State: state, CreatedAt: t0, UpdatedAt: t0}
	}
	devs := []core.Device{d(3, "Yubico", "100", "u1", "active"), d(1, "Yubico", "200", "", "in_stock"), d(2, "Other", "100", "u2", "assigned")}
	update(t, st, func(tx core.Tx) error {
		for _, x := range devs {
			if err := tx.InsertDevice(x); err != nil {
				return err
			}
		}
		return nil
	})
	err := st.Update(ctxb, func(tx core.Tx) error { return tx.InsertDevice(d(4, "Yubico", "100", "", "in_stock")) })
	if !errors.Is(err, core.ErrAlreadyExists) {
		t.Fatalf("a second Yubico 100: %v, want ErrAlreadyExists", err)
	}
	id := func(x core.Device) string { return x.ID[len(x.ID)-1:] }
	view(t, st, func(tx core.ReadTx) error {
		got, err := tx.DeviceBySerial("Other", "100")
		same(t, "DeviceBySerial", got, devs[2])
		_, err2 := tx.DeviceBySerial("Other", "200")
		wantNotFound(t, "unknown serial", err2)
		for _, tt := range []struct {
			f    core.DeviceFilter
			want []string
		}{
			{core.DeviceFilter{}, []string{"1", "2", "3"}},
			{core.DeviceFilter{Serial: "100"}, []string{"2", "3"}},
			{core.DeviceFilter{UserID: "u1"}, []string{"3"}},
			{core.DeviceFilter{State: "in_stock"}, []string{"1"}},
		} {
			got := allPages(t, "devices", func(p core.PageReq) ([]core.Device, string, error) { return tx.Devices(tt.f, p) }, id)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Devices(%+v) = %v, want %v", tt.f, got, tt.want)
			}
		}
		return err
	})
	up := devs[1]
	up.UserID, up.State = "u3", "assigned"
	update(t, st, func(tx core.Tx) error { return tx.PutDevice(up) })
	view(t, st, func(tx core.ReadTx) error {
		got, _, err := tx.Devices(core.DeviceFilter{UserID: "u3"}, core.PageReq{Limit: 5})
		if len(got) != 1 {
			t.Fatalf("u3's devices after PutDevice: %v", got)
		}
		return err
	})
}

func testEnrolments(t *testing.T, b Backend) {
	st := open(t, b)
	var es []core.Enrolment
	for i := range 6 {
		es = append(es, core.Enrolment{ID: fmt.Sprintf("enr_%026d", 10-i), UserID: fmt.Sprintf("u%d", i%2), Kind: "totp",
			State: []string{api.EnrolmentOpen, "completed"}[i%3/2], Challenge: []byte{byte(i)}, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)})
	}
	update(t, st, func(tx core.Tx) error {
		for _, e := range es {
			if err := tx.PutEnrolment(e); err != nil {
				return err
			}
		}
		return nil
	})
	update(t, st, func(tx core.Tx) error { return tx.DeleteEnrolment(es[0]) })
	id := func(e core.Enrolment) string { return e.ID[len(e.ID)-2:] }
	view(t, st, func(tx core.ReadTx) error {
		all := allPages(t, "enrolments", func(p core.PageReq) ([]core.Enrolment, string, error) {
			return tx.Enrolments(core.EnrolmentFilter{}, p)
		}, id)
		if !slices.Equal(all, []string{"05", "06", "07", "08", "09"}) {
			t.Fatalf("enrolments: %v", all)
		}
		u1 := allPages(t, "u1's open", func(p core.PageReq) ([]core.Enrolment, string, error) {
			return tx.Enrolments(core.EnrolmentFilter{UserID: "u1", State: api.EnrolmentOpen}, p)
		}, id)
		if !slices.Equal(u1, []string{"07", "09"}) {
			t.Fatalf("u1's open enrolments: %v", u1)
		}
		e, err := tx.Enrolment(es[1].ID)
		same(t, "Enrolment", e, es[1])
		return err
	})
}
