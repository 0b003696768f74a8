package directory_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/directory"
	dt "github.com/keyfleet/keyfleet/daemon/directory/directorytest"
)

// Ranged retrieval, against directorytest.FakeAD: a small LDAP server on
// the loopback that answers a group's member list in ranges of at most
// MaxValRange values the way Active Directory does (slapd cannot), and
// IN_CHAIN as AD does.

// bigGroup is how many members the large group has: three ranges at
// AD's default MaxValRange of 1,500.
const bigGroup = 3200

// teams is how many small groups follow big in the directory.
const teams = 500

// newRangeWorld is a keyfleet core beside a FakeAD holding
//
//	alice, bob, carol and staff00001…staff03200
//	big      ← the 3,200 staff           (mapped to staff)
//	everyone ← big, carol                (mapped to everyone: nested)
//	eng      ← alice, platform           (mapped to eng)
//	platform ← bob
//	team-000…team-499 ← one of the staff each (unmapped: they make the
//	           groups two pages long, big in the first)
//
// read with flavor: ad's defaults.
func newRangeWorld(t *testing.T) (*world, *dt.FakeAD) {
	t.Helper()
	f := dt.StartFakeAD(t, 1500)
	for i, uid := range []string{"alice", "bob", "carol"} {
		p := dt.Person{UID: uid, Mail: uid + "@example.org"}
		p.GUID[0], p.GUID[15] = byte(i+1), 0xAA
		f.AddPerson(p)
	}
	var staff []string
	for n := 1; n <= bigGroup; n++ {
		p := dt.Person{UID: dt.BigUID(n)}
		p.GUID[0], p.GUID[1], p.GUID[15] = byte(n>>8), byte(n), 0xBB
		f.AddPerson(p)
		staff = append(staff, dt.PersonDN(dt.BigUID(n)))
	}
	f.AddGroup("eng", dt.PersonDN("alice"), dt.GroupDN("platform"))
	f.AddGroup("platform", dt.PersonDN("bob"))
	f.AddGroup("big", staff...)
	for n := range teams {
		f.AddGroup(fmt.Sprintf("team-%03d", n), staff[n])
	}
	f.AddGroup("everyone", dt.GroupDN("big"), dt.PersonDN("carol"))

	w := &world{t: t}
	w.svc, w.st, w.people = newCore(t)
	w.admin = w.people.Person("root", api.RoleAdmin)
	w.officer = w.people.Person("sec", api.RoleSecurityOfficer)
	w.cfg = directory.LDAPConfig{
		Name: "corp-ad", Flavor: directory.FlavorAD, URL: f.URL, AllowPlaintext: true,
		BindDN: dt.ReaderDN, BindPasswordFile: f.PasswordFile, UserBase: dt.People, GroupBase: dt.Groups,
		Groups:   map[string]string{dt.GroupDN("big"): "staff", dt.GroupDN("everyone"): "everyone", dt.GroupDN("eng"): "eng"},
		PageSize: 500, // the groups come in two pages, big in the first
	}
	return w, f
}

// checkGroups checks what the sync gave everyone.
func (w *world) checkGroups(t *testing.T) {
	t.Helper()
	for name, want := range map[string][]string{"alice": {"eng"}, "bob": {"eng"}, "carol": {"everyone"},
		dt.BigUID(1): {"everyone", "staff"}, dt.BigUID(1500): {"everyone", "staff"}, dt.BigUID(1501): {"everyone", "staff"},
		dt.BigUID(3001): {"everyone", "staff"}, dt.BigUID(bigGroup): {"everyone", "staff"}} {
		if got := w.user(name).Groups; !slices.Equal(got, want) {
			t.Errorf("%s is in %v, want %v", name, got, want)
		}
	}
	n := 0
	for _, g := range w.groupsOfAll(t) {
		if slices.Contains(g, "staff") {
			n++
		}
	}
	if n != bigGroup {
		t.Errorf("%d users are in staff, want all %d of big's members", n, bigGroup)
	}
}

// groupsOfAll is every user's groups.
func (w *world) groupsOfAll(t *testing.T) [][]string {
	t.Helper()
	var out [][]string
	for n := 1; n <= bigGroup; n++ {
		out = append(out, w.user(dt.BigUID(n)).Groups)
	}
	return out
}

func TestTheFakeServerAnswersALargeGroupInRangesAsActiveDirectoryDoes(t *testing.T) {
	f := dt.StartFakeAD(t, 1500)
	var members []string
	for n := 1; n <= bigGroup; n++ {
		members = append(members, dt.PersonDN(dt.BigUID(n)))
	}
	f.AddGroup("big", members...)
	c, err := ldap.DialURL(f.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind(dt.ReaderDN, "wrong"); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		t.Fatalf("a wrong password: %v", err)
	}
	if err := c.Bind(dt.ReaderDN, dt.ReaderPassword); err != nil {
		t.Fatal(err)
	}
	read := func(attr string) *ldap.Entry {
		res, err := c.Search(ldap.NewSearchRequest(dt.GroupDN("big"), ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
			"(objectClass=group)", []string{attr}, nil))
		if err != nil || len(res.Entries) != 1 {
			t.Fatalf("reading %s: %v", attr, err)
		}
		return res.Entries[0]
	}
	// What a client that does not follow ranges sees: no member at all.
	e := read("member")
	if len(e.GetAttributeValues("member")) != 0 || len(e.Attributes) != 1 || e.Attributes[0].Name != "member;range=0-1499" || len(e.Attributes[0].Values) != 1500 {
		t.Fatalf("asked for member, the fake answered %s with %d values", e.Attributes[0].Name, len(e.Attributes[0].Values))
	}
	for _, step := range []struct {
		ask, name string
		n         int
	}{{"member;range=1500-*", "member;range=1500-2999", 1500}, {"member;range=3000-*", "member;range=3000-*", 200}} {
		if a := read(step.ask).Attributes; len(a) != 1 || a[0].Name != step.name || len(a[0].Values) != step.n {
			t.Fatalf("asked for %s: %+v", step.ask, a)
		}
	}
}

func TestAGroupOfThreeThousandTwoHundredIsReadThroughEveryRange(t *testing.T) {
	w, f := newRangeWorld(t)
	w.cfg.Nested = directory.NestedResolve
	rep := mustSync(t, w.syncer(directory.Options{}), api.DirectorySync{})
	if rep.Created != bigGroup+3 || len(warnings(rep)) != 0 || rep.Skipped != 0 {
		t.Fatalf("the sync: created %d, warnings %q, skipped %d", rep.Created, warnings(rep), rep.Skipped)
	}
	w.checkGroups(t)
	big := strings.ToLower(dt.GroupDN("big"))
	want := []string{big + " member;range=1500-*", big + " member;range=3000-*"}
	if got := f.RangeRequests(); !slices.Equal(lower(got), want) {
		t.Fatalf("the ranges asked for: %q, want %q", got, want)
	}
}

func TestTheInChainCheckReadsEveryRangeOfTheDirectMembers(t *testing.T) {
	t.Run("IN_CHAIN answered in full: taken, no warning", func(t *testing.T) {
		w, f := newRangeWorld(t)
		rep := mustSync(t, w.syncer(directory.Options{}), api.DirectorySync{})
		if len(warnings(rep)) != 0 || rep.Created != bigGroup+3 {
			t.Fatalf("the sync: created %d, warnings %q", rep.Created, warnings(rep))
		}
		w.checkGroups(t)
		if len(f.RangeRequests()) == 0 {
			t.Fatal("the check did not read big's members beyond the first range")
		}
	})
	// A member only the third range names: without ranges the check would
	// not know them, and would take the short answer.
	left := dt.BigUID(3150)
	t.Run("an IN_CHAIN answer short of a member of the third range: resolved, with a warning", func(t *testing.T) {
		w, f := newRangeWorld(t)
		f.LeaveOutOfInChain(dt.PersonDN(left))
		rep := mustSync(t, w.syncer(directory.Options{}), api.DirectorySync{})
		ws := warnings(rep)
		if len(ws) != 1 || !strings.Contains(ws[0], "1 of its direct members were not in the answer") {
			t.Fatalf("warnings: %q", ws)
		}
		w.checkGroups(t)
		if got := w.user(left).Groups; !slices.Equal(got, []string{"everyone", "staff"}) {
			t.Fatalf("%s is in %v", left, got)
		}
	})
	t.Run("the same with nested: in_chain: refused, nothing changed", func(t *testing.T) {
		w, f := newRangeWorld(t)
		w.cfg.Nested = directory.NestedInChain
		f.LeaveOutOfInChain(dt.PersonDN(left))
		before := w.userCount()
		_, err := w.syncer(directory.Options{}).Sync(context.Background(), api.DirectorySync{})
		if !errors.Is(err, directory.ErrSearch) || !strings.Contains(err.Error(), "direct members were not in the answer") {
			t.Fatalf("in_chain with a short answer: %v", err)
		}
		if w.userCount() != before {
			t.Fatalf("the refused sync created %d users", w.userCount()-before)
		}
	})
}

func TestAServerWhoseRangesGoWrongIsRefusedAndChangesNothing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fault  dt.RangeFault
		nested string
		says   string
	}{
		{"ranges that never end (resolving)", dt.RangesNeverEnd, directory.NestedResolve, "did not end after 1000 ranges"},
		{"ranges that never end (checking IN_CHAIN)", dt.RangesNeverEnd, directory.NestedAuto, "did not end after 1000 ranges"},
		{"a range that does not advance", dt.RangesStuck, directory.NestedResolve, "asked for the values from 1500, the server answered the range 0-1499"},
		{"a range short of its values", dt.RangesShort, directory.NestedAuto, "the range 0-1499 came with 750 values"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, f := newRangeWorld(t)
			w.cfg.Nested = tc.nested
			s := w.syncer(directory.Options{})
			mustSync(t, s, api.DirectorySync{})
			users := w.userCount()

			f.SetRangeFault(tc.fault)
			_, err := s.Sync(context.Background(), api.DirectorySync{})
			if !errors.Is(err, directory.ErrSearch) || !strings.Contains(err.Error(), tc.says) ||
				!strings.Contains(strings.ToLower(err.Error()), strings.ToLower(dt.GroupDN("big"))) {
				t.Fatalf("the sync: %v; want a search error naming the group and saying %q", err, tc.says)
			}
			if w.userCount() != users {
				t.Fatalf("the refused sync changed the number of users: %d, was %d", w.userCount(), users)
			}
			w.checkGroups(t)

			f.SetRangeFault(dt.RangesAsAD)
			if rep := mustSync(t, s, api.DirectorySync{}); rep.Updated+rep.Created+rep.Disabled != 0 || len(warnings(rep)) != 0 {
				t.Fatalf("the sync once the server answers again: %+v", rep)
			}
		})
	}
}

func lower(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}
