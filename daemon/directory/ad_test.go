package directory_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/directory"
	dt "github.com/keyfleet/keyfleet/daemon/directory/directorytest"
)

// The Active Directory path, against slapd acting as a domain controller
// (directorytest.StartAD): a root DSE with AD's capability and a
// highestCommittedUSN, uSNChanged on every entry, AD's attributes. What
// slapd cannot act is AD's LDAP_MATCHING_RULE_IN_CHAIN: it answers such
// a search with nothing, which is what these tests use it for.

// inChainOID is LDAP_MATCHING_RULE_IN_CHAIN.
const inChainOID = "1.2.840.113556.1.4.1941"

// newADWorld is the organisation (AD attributes on every person) in a
// slapd that says it is Active Directory, read with flavor: ad.
func newADWorld(t *testing.T, extra string) *world {
	t.Helper()
	w := &world{t: t, ldap: dt.StartAD(t, dt.Organisation(0, true)+extra)}
	w.svc, w.st, w.people = newCore(t)
	w.admin = w.people.Person("root", api.RoleAdmin)
	w.officer = w.people.Person("sec", api.RoleSecurityOfficer)
	w.cfg = directory.LDAPConfig{
		Name: "corp", Flavor: directory.FlavorAD, URL: w.ldap.URL, StartTLS: true, CAFile: w.ldap.CAFile,
		BindDN: dt.ReaderDN, BindPasswordFile: w.ldap.PasswordFile, UserBase: dt.People, GroupBase: dt.Groups,
		UserFilter: "(objectClass=keyfleetADUser)", GroupFilter: "(objectClass=groupOfNames)",
		Groups:   map[string]string{dt.GroupDN("eng"): "eng", dt.GroupDN("loop-a"): "loop"},
		Roles:    map[string]string{dt.GroupDN("admins"): api.RoleAdmin, dt.GroupDN("helpdesk"): api.RoleHelpdesk},
		PageSize: 100,
	}
	return w
}

// cursor is where the next incremental sync of the source starts.
func (w *world) cursor() string {
	w.t.Helper()
	c, ok, err := w.svc.DirectoryCursor(context.Background(), core.DirectoryPrincipal(w.cfg.Name))
	if err != nil || !ok {
		w.t.Fatalf("the source's cursor: %q, %v, %v", c, ok, err)
	}
	return c
}

// readerConn is a connection bound as keyfleet's reader.
func readerConn(t *testing.T, s *dt.Server) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Bind(dt.ReaderDN, dt.ReaderPassword); err != nil {
		t.Fatal(err)
	}
	return c
}

func rootDSE(t *testing.T, s *dt.Server) *ldap.Entry {
	t.Helper()
	res, err := readerConn(t, s).Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{"supportedCapabilities", "highestCommittedUSN"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("reading the root DSE: %v", err)
	}
	return res.Entries[0]
}

// warnings are the report's warnings.
func warnings(rep api.DirectorySyncReport) []string {
	var out []string
	for _, c := range rep.Changes {
		if c.What == api.ChangeWarning {
			out = append(out, c.Detail)
		}
	}
	return out
}

func TestTheRootDSETellsActiveDirectoryAndTheSyncKeepsItsUSN(t *testing.T) {
	w := newADWorld(t, "")
	dse := rootDSE(t, w.ldap)
	if !slices.Contains(dse.GetAttributeValues("supportedCapabilities"), dt.ADCapability) {
		t.Fatalf("the AD-like root DSE: %v", dse.GetAttributeValues("supportedCapabilities"))
	}
	if got := dse.GetAttributeValue("highestCommittedUSN"); got != strconv.FormatUint(w.ldap.USN(), 10) || w.ldap.USN() == 0 {
		t.Fatalf("highestCommittedUSN %q, the kit's counter %d", got, w.ldap.USN())
	}
	plain := dt.Start(t, dt.Organisation(0, true))
	if caps := rootDSE(t, plain).GetAttributeValues("supportedCapabilities"); len(caps) != 0 {
		t.Fatalf("a plain slapd says %v", caps)
	}

	rep := mustSync(t, w.syncer(directory.Options{}), api.DirectorySync{})
	if rep.Created != 5 || rep.Mode != api.SyncFull {
		t.Fatalf("the first sync: %+v", rep)
	}
	if got, want := w.cursor(), fmt.Sprintf("usn:%d", w.ldap.USN()); got != want {
		t.Fatalf("the cursor after a sync of Active Directory is %q, want %q (its highestCommittedUSN)", got, want)
	}
}

func TestAnIncrementalSyncOfActiveDirectoryReadsOnlyWhatUSNChangedSaysChanged(t *testing.T) {
	w := newADWorld(t, "")
	s := w.syncer(directory.Options{})
	mustSync(t, s, api.DirectorySync{})
	start := w.ldap.USN()
	alice, erin := w.user("alice"), w.user("erin")

	// A change AD would have counted and this directory does not: an
	// incremental read by uSNChanged cannot see it, one by modifyTimestamp
	// would.
	w.ldap.ModifyWithoutUSN(t, "dn: "+dt.PersonDN("carol")+"\nchangetype: modify\nreplace: displayName\ndisplayName: Carol Unseen\n")
	w.ldap.Modify(t, fmt.Sprintf(`dn: %s
changetype: modrdn
newrdn: uid=alicia
deleteoldrdn: 1

dn: %s
changetype: modify
replace: sAMAccountName
sAMAccountName: ALICIA

dn: %s
changetype: modify
replace: userAccountControl
userAccountControl: 514

dn: %s
changetype: modify
add: member
member: %s

dn: %s
changetype: add
objectClass: inetOrgPerson
objectClass: keyfleetADUser
uid: grace
cn: Grace
sn: Grace
sAMAccountName: GRACE
userAccountControl: 512
objectGUID:: %s
`, dt.PersonDN("alice"), dt.PersonDN("alicia"), dt.PersonDN("bob"), dt.GroupDN("sre"), dt.PersonDN("erin"),
		dt.PersonDN("grace"), base64.StdEncoding.EncodeToString([]byte("grace's-guid-16b"))))
	if w.ldap.USN() <= start {
		t.Fatalf("the changes did not move the USN: %d", w.ldap.USN())
	}

	rep := mustSync(t, s, api.DirectorySync{Incremental: true})
	if rep.Mode != api.SyncIncremental || rep.Renamed != 1 || rep.Disabled != 1 || rep.Updated != 1 || rep.Created != 1 {
		t.Fatalf("the incremental sync: %+v", rep)
	}
	if rep.Seen != 4 { // alicia and bob changed, grace is new; erin's groups changed
		t.Fatalf("the incremental sync read %d users, want 4", rep.Seen)
	}
	if g := w.user("grace"); g.External == nil || g.External.ID != "63617267-2765-2d73-6775-69642d313662" {
		t.Fatalf("grace, added: %+v", g.External)
	}
	if got := w.user("alicia"); got.ID != alice.ID || !w.missing("alice") {
		t.Fatalf("the rename made another user: %s vs %s", got.ID, alice.ID)
	}
	if w.user("bob").Status != api.UserDisabled {
		t.Fatal("bob's userAccountControl 514 (ACCOUNTDISABLE) did not disable him")
	}
	if got := w.user("erin"); got.ID != erin.ID || !slices.Equal(got.Groups, []string{"eng"}) {
		t.Fatalf("erin joined sre (in platform, in eng) and is in %v", got.Groups)
	}
	if got := w.user("carol").DisplayName; got == "Carol Unseen" {
		t.Fatal("the incremental read saw a change uSNChanged does not show: it did not go by USN")
	}
	if got, want := w.cursor(), fmt.Sprintf("usn:%d", w.ldap.USN()); got != want {
		t.Fatalf("the cursor is %q, want %q", got, want)
	}

	if rep := mustSync(t, s, api.DirectorySync{Incremental: true}); rep.Seen != 0 || rep.Mode != api.SyncIncremental {
		t.Fatalf("an incremental sync with nothing above the cursor: %+v", rep)
	}
	if rep := mustSync(t, s, api.DirectorySync{}); rep.Updated != 1 || w.user("carol").DisplayName != "Carol Unseen" {
		t.Fatalf("the full sync did not pick up carol's change: %+v", rep)
	}
}

func TestAServerThatSaysADButDoesNotAnswerInChainIsNotTakenAtItsWord(t *testing.T) {
	t.Run("slapd answers an IN_CHAIN search with nothing, successfully", func(t *testing.T) {
		w := newADWorld(t, "")
		res, err := readerConn(t, w.ldap).Search(ldap.NewSearchRequest(dt.People, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			fmt.Sprintf("(memberOf:%s:=%s)", inChainOID, dt.GroupDN("eng")), []string{"uid"}, nil))
		if err != nil || len(res.Entries) != 0 {
			t.Fatalf("slapd's answer to IN_CHAIN: %d entries, %v", len(res.Entries), err)
		}
	})
	t.Run("nested auto: keyfleet resolves the nesting itself and says so", func(t *testing.T) {
		w := newADWorld(t, "")
		w.cfg.Groups[dt.GroupDN("absent")] = "absent" // not in the directory, and read first: one problem, said once
		rep := mustSync(t, w.syncer(directory.Options{}), api.DirectorySync{})
		ws := warnings(rep)
		if len(ws) != 1 || !strings.Contains(ws[0], inChainOID) || !strings.Contains(ws[0], "resolved the nested groups itself") {
			t.Fatalf("warnings: %q", ws)
		}
		if rep.Skipped != 1 || rep.Created != 5 {
			t.Fatalf("report: %+v", rep)
		}
		for name, want := range map[string][]string{"alice": {"eng"}, "bob": {"eng"}, "carol": {"eng"}, "dave": {"loop"}} {
			if got := w.user(name).Groups; !slices.Equal(got, want) {
				t.Errorf("%s is in %v, want %v", name, got, want)
			}
		}
		if len(rep.Approvals) != 2 {
			t.Errorf("dave (admins) and erin (helpdesk) should wait for approval: %v", rep.Approvals)
		}
	})
	t.Run("nested in_chain: the sync fails clearly and changes nothing", func(t *testing.T) {
		w := newADWorld(t, "")
		w.cfg.Nested = directory.NestedInChain
		before := w.userCount()
		_, err := w.syncer(directory.Options{}).Sync(context.Background(), api.DirectorySync{})
		if !errors.Is(err, directory.ErrSearch) || !strings.Contains(err.Error(), inChainOID) || !strings.Contains(err.Error(), "nested: auto or resolve") {
			t.Fatalf("in_chain against a server without it: %v", err)
		}
		if w.userCount() != before {
			t.Fatalf("the failed sync created %d users", w.userCount()-before)
		}
	})
	t.Run("mapped groups of groups only: the empty answers are not taken", func(t *testing.T) {
		w := newADWorld(t, dt.GroupLDIF("everyone", dt.GroupDN("eng"), dt.GroupDN("helpdesk")))
		w.cfg.Groups, w.cfg.Roles = map[string]string{dt.GroupDN("everyone"): "everyone"}, nil
		rep := mustSync(t, w.syncer(directory.Options{}), api.DirectorySync{})
		if ws := warnings(rep); len(ws) != 1 || !strings.Contains(ws[0], "could not be checked") {
			t.Fatalf("warnings: %q", ws)
		}
		for _, name := range []string{"alice", "bob", "carol", "erin"} {
			if got := w.user(name).Groups; !slices.Equal(got, []string{"everyone"}) {
				t.Errorf("%s is in %v", name, got)
			}
		}
		w.cfg.Nested = directory.NestedInChain
		if _, err := w.syncer(directory.Options{}).Sync(context.Background(), api.DirectorySync{}); !errors.Is(err, directory.ErrSearch) {
			t.Fatalf("in_chain with nothing to check and nothing answered: %v", err)
		}
		if got := w.user("carol").Groups; !slices.Equal(got, []string{"everyone"}) {
			t.Fatalf("the refused sync took carol out of everyone: %v", got)
		}
	})
}
