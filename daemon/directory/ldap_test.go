package directory_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/core/coretest"
	"github.com/keyfleet/keyfleet/daemon/directory"
	dt "github.com/keyfleet/keyfleet/daemon/directory/directorytest"
	"github.com/keyfleet/keyfleet/daemon/seal"
	"github.com/keyfleet/keyfleet/daemon/store"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// world is a keyfleet core on a real (in-memory) Badger store, with two
// approvers, beside a real slapd.
type world struct {
	t       *testing.T
	svc     *core.Service
	st      *store.Store
	people  *coretest.People
	admin   core.Principal
	officer core.Principal
	ldap    *dt.Server
	cfg     directory.LDAPConfig
}

func newCore(t *testing.T) (*core.Service, *store.Store, *coretest.People) {
	t.Helper()
	st, err := store.Open(store.Options{InMemory: true, EncryptionKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sl, _ := seal.New(make([]byte, 32))
	svc, err := core.New(core.Config{Store: st, Sealer: sl, Kinds: []sdk.Factor{coretest.Kind{}, coretest.Key{}}})
	if err != nil {
		t.Fatal(err)
	}
	return svc, st, coretest.NewPeople(t, svc)
}

func newWorld(t *testing.T, ldif string) *world {
	t.Helper()
	w := &world{t: t, ldap: dt.Start(t, ldif)}
	w.svc, w.st, w.people = newCore(t)
	w.admin = w.people.Person("root", api.RoleAdmin)
	w.officer = w.people.Person("sec", api.RoleSecurityOfficer)
	w.cfg = directory.LDAPConfig{
		Name: "corp", URL: w.ldap.URL, StartTLS: true, CAFile: w.ldap.CAFile,
		BindDN: dt.ReaderDN, BindPasswordFile: w.ldap.PasswordFile, UserBase: dt.People, GroupBase: dt.Groups,
		Attributes: directory.AttributeMap{Disabled: "employeeType"},
		Groups:     map[string]string{dt.GroupDN("eng"): "eng", dt.GroupDN("all-staff"): "staff", dt.GroupDN("loop-a"): "loop"},
		Roles:      map[string]string{dt.GroupDN("admins"): api.RoleAdmin, dt.GroupDN("helpdesk"): api.RoleHelpdesk},
		PageSize:   100,
	}
	return w
}

func (w *world) syncer(o directory.Options) *directory.Syncer {
	w.t.Helper()
	s, err := directory.NewSyncer(w.cfg, w.svc, o)
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

func (w *world) user(name string) core.User {
	w.t.Helper()
	u, err := w.svc.GetUser(context.Background(), w.admin, name)
	if err != nil {
		w.t.Fatalf("user %s: %v", name, err)
	}
	return u
}

func (w *world) missing(name string) bool {
	_, err := w.svc.GetUser(context.Background(), w.admin, name)
	return errors.Is(err, core.ErrNotFound)
}

// userCount counts keyfleet's users.
func (w *world) userCount() int {
	n := 0
	pg := core.PageReq{Limit: core.MaxPageSize}
	for {
		us, next, err := w.svc.ListUsers(context.Background(), w.admin, core.UserFilter{}, pg)
		if err != nil {
			w.t.Fatal(err)
		}
		n += len(us)
		if next == "" {
			return n
		}
		pg.After = next
	}
}

func mustSync(t *testing.T, s *directory.Syncer, req api.DirectorySync) api.DirectorySyncReport {
	t.Helper()
	rep, err := s.Sync(context.Background(), req)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return rep
}

func TestAFullSyncFollowsNestedGroupsAndReadsTenThousandUsersPageByPage(t *testing.T) {
	const big = 10000
	w := newWorld(t, dt.Organisation(big, false))
	t.Run("the directory answers no more than 1000 entries without paging", func(t *testing.T) {
		c, err := ldap.DialURL(w.ldap.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Bind(dt.ReaderDN, dt.ReaderPassword); err != nil {
			t.Fatal(err)
		}
		_, err = c.Search(ldap.NewSearchRequest(dt.People, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=inetOrgPerson)", []string{"uid"}, nil))
		if !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
			t.Fatalf("an unpaged search of %d users: %v", big, err)
		}
	})
	pages := 0
	s := w.syncer(directory.Options{PageHook: func(int) { pages++ }})
	rep := mustSync(t, s, api.DirectorySync{})
	if rep.Seen != big+6 || rep.Created != big+5 || rep.Requested != 2 || rep.Mode != api.SyncFull || rep.Error != "" {
		t.Fatalf("report: seen %d created %d requested %d mode %s err %q", rep.Seen, rep.Created, rep.Requested, rep.Mode, rep.Error)
	}
	if pages < big/100 {
		t.Fatalf("%d pages for %d users at 100 a page", pages, big)
	}
	// What the directory takes in memory is reported: each user's text
	// (about 110 bytes here) and a few numbers, not kilobytes.
	if per := rep.MemoryBytes / int64(rep.Seen); per < 100 || per > 400 {
		t.Errorf("the report says the directory takes %d bytes (%d a user)", rep.MemoryBytes, per)
	}
	for name, want := range map[string][]string{
		"alice": {"eng", "staff"}, "bob": {"eng"}, "carol": {"eng"}, "dave": {"loop"}, "erin": nil, dt.BigUID(big): {"staff"},
	} {
		if got := w.user(name).Groups; !slices.Equal(got, want) {
			t.Errorf("%s is in %v, want %v", name, got, want)
		}
	}
	if !w.missing("frank") {
		t.Error("frank, disabled in the directory, was created")
	}
	if roles := w.user("dave").Roles; !slices.Equal(roles, []string{api.RoleUser}) {
		t.Errorf("dave got %v at once; admin must wait for approval", roles)
	}
	alice := w.user("alice")
	if alice.External == nil || alice.External.Source != "corp" || len(alice.External.ID) != 36 {
		t.Errorf("alice's link: %+v (want her entryUUID)", alice.External)
	}
	again := mustSync(t, s, api.DirectorySync{})
	if again.Unchanged != big+6 || again.Created+again.Updated+again.Requested != 0 {
		t.Fatalf("a second full sync changed: %+v", again)
	}
}

// smallWorld is the organisation without the big group's users.
func smallWorld(t *testing.T) *world { return newWorld(t, dt.Organisation(0, false)) }

func TestTheDirectoryIsReadOverLDAPSOrStartTLSWithAPrivateCA(t *testing.T) {
	w := smallWorld(t)
	other, err := dt.WriteOtherCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		change  func(c *directory.LDAPConfig)
		wantErr error
	}{
		{"LDAPS with the CA", func(c *directory.LDAPConfig) { c.URL, c.StartTLS = w.ldap.LDAPSURL, false }, nil},
		{"StartTLS with the CA", func(c *directory.LDAPConfig) {}, nil},
		{"LDAPS with another CA is refused", func(c *directory.LDAPConfig) { c.URL, c.StartTLS, c.CAFile = w.ldap.LDAPSURL, false, other }, directory.ErrTLS},
		{"StartTLS with another CA is refused", func(c *directory.LDAPConfig) { c.CAFile = other }, directory.ErrTLS},
		{"a name the certificate does not carry is refused", func(c *directory.LDAPConfig) { c.ServerName = "ldap.example.org" }, directory.ErrTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := w.cfg
			tc.change(&cfg)
			s, err := directory.NewSyncer(cfg, w.svc, directory.Options{})
			if err != nil {
				t.Fatal(err)
			}
			rep, err := s.Sync(context.Background(), api.DirectorySync{DryRun: true})
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("sync: %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil && rep.Created != 5 {
				t.Fatalf("dry run over TLS: %+v", rep)
			}
		})
	}
	t.Run("plain LDAP is refused unless allowed", func(t *testing.T) {
		cfg := w.cfg
		cfg.StartTLS = false
		if _, err := directory.NewSyncer(cfg, w.svc, directory.Options{}); err == nil || !strings.Contains(err.Error(), "in the clear") {
			t.Fatalf("plain ldap:// accepted: %v", err)
		}
	})
	if w.userCount() != 2 {
		t.Fatalf("dry runs created users: %d", w.userCount())
	}
}

func TestAWrongBindPasswordIsAClearErrorAndChangesNothing(t *testing.T) {
	w := smallWorld(t)
	wrong := filepath.Join(t.TempDir(), "wrong.password")
	if err := os.WriteFile(wrong, []byte("hunter2-not-it\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w.cfg.BindPasswordFile = wrong
	s := w.syncer(directory.Options{})
	rep, err := s.Sync(context.Background(), api.DirectorySync{})
	if !errors.Is(err, directory.ErrBind) || !strings.Contains(err.Error(), "invalid credentials") || !strings.Contains(err.Error(), wrong) {
		t.Fatalf("wrong password: %v", err)
	}
	if strings.Contains(err.Error(), "hunter2") || strings.Contains(rep.Error, "hunter2") {
		t.Fatal("the password is in the error")
	}
	if w.userCount() != 2 {
		t.Fatalf("a refused bind created users: %d", w.userCount())
	}
	ov, err := w.svc.DirectoryOverview(context.Background(), w.admin, map[string]string{"corp": api.DirectoryLDAP})
	if err != nil || len(ov.Sources) != 1 || ov.Sources[0].Last == nil || !strings.Contains(ov.Sources[0].Last.Error, "invalid credentials") || ov.Sources[0].LastSuccessAt != nil {
		t.Fatalf("the status does not show the failure: %+v, %v", ov, err)
	}
	t.Run("a password file others can read is refused", func(t *testing.T) {
		os.Chmod(wrong, 0o644)
		if _, err := directory.NewSyncer(w.cfg, w.svc, directory.Options{}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("a world-readable password file: %v", err)
		}
	})
}

func TestRenamesMovesDisablingAndDeletionReachKeyfleet(t *testing.T) {
	w := smallWorld(t)
	s := w.syncer(directory.Options{})
	mustSync(t, s, api.DirectorySync{})
	alice, bob, carol, erin := w.user("alice"), w.user("bob"), w.user("carol"), w.user("erin")
	key := w.people.GiveKey(carol.ID)

	w.ldap.Modify(t, fmt.Sprintf(`dn: %s
changetype: modrdn
newrdn: uid=alicia
deleteoldrdn: 1

dn: %s
changetype: modify
delete: member
member: %s

dn: %s
changetype: modify
add: employeeType
employeeType: disabled
`, dt.PersonDN("alice"), dt.GroupDN("platform"), dt.PersonDN("bob"), dt.PersonDN("carol")))
	rep := mustSync(t, s, api.DirectorySync{Incremental: true})
	if rep.Mode != api.SyncIncremental || rep.Renamed != 1 || rep.Updated != 1 || rep.Disabled != 1 {
		t.Fatalf("incremental sync: %+v", rep)
	}
	if rep.Seen > 4 {
		t.Fatalf("an incremental sync read %d entries for three changes", rep.Seen)
	}
	if got := w.user("alicia"); got.ID != alice.ID || !w.missing("alice") {
		t.Fatalf("the rename made another user: %s vs %s", got.ID, alice.ID)
	}
	if got := w.user("bob"); got.ID != bob.ID || slices.Contains(got.Groups, "eng") {
		t.Fatalf("bob left platform (and so eng) but is in %v", got.Groups)
	}
	if got := w.user("carol"); got.Status != api.UserDisabled {
		t.Fatalf("carol is %s", got.Status)
	}
	if f, _ := w.svc.GetFactor(context.Background(), w.admin, key.ID); f.State != api.FactorSuspended {
		t.Fatalf("carol's key is %s", f.State)
	}

	w.ldap.Modify(t, "dn: "+dt.PersonDN("erin")+"\nchangetype: delete\n")
	if rep := mustSync(t, s, api.DirectorySync{Incremental: true}); rep.Disabled != 0 {
		t.Fatalf("an incremental sync cannot see deletions, yet: %+v", rep)
	}
	rep = mustSync(t, s, api.DirectorySync{})
	if rep.Disabled != 1 || w.user("erin").Status != api.UserDisabled || w.user("erin").ID != erin.ID {
		t.Fatalf("a full sync did not disable erin, who left: %+v", rep)
	}
	ov, _ := w.svc.DirectoryOverview(context.Background(), w.admin, nil)
	if len(ov.Sources) != 1 || !slices.Contains(ov.Sources[0].Gone, "erin") {
		t.Fatalf("erin is not in the drift: %+v", ov.Sources)
	}
}

func TestTheDirectoryGoingDownMidSyncChangesNothingAndTheNextSyncCompletes(t *testing.T) {
	w := smallWorld(t)
	w.cfg.PageSize = 2
	head := w.st.AuditHead()
	killed := false
	s := w.syncer(directory.Options{PageHook: func(n int) {
		if !killed {
			killed = true
			w.ldap.Kill()
		}
	}})
	_, err := s.Sync(context.Background(), api.DirectorySync{})
	if !errors.Is(err, directory.ErrUnreachable) {
		t.Fatalf("the directory died mid-read: %v", err)
	}
	if w.userCount() != 2 {
		t.Fatalf("a half-read directory created %d users", w.userCount()-2)
	}
	evs, _ := w.svc.ListAudit(context.Background(), w.admin, core.AuditFilter{After: head.Seq}, 100)
	for _, r := range evs {
		if ev, _ := r.Event(); ev.Action != "directory.sync" {
			t.Errorf("after the failed read the trail has %s", ev.Action)
		}
	}
	w.ldap.Restart(t)
	killed = true
	if rep := mustSync(t, s, api.DirectorySync{}); rep.Created != 5 {
		t.Fatalf("the sync after the directory came back: %+v", rep)
	}
}

func TestASyncThatWouldDisableTooManyStopsUnlessForced(t *testing.T) {
	w := smallWorld(t)
	w.cfg.MinDisable = 2
	mustSync(t, w.syncer(directory.Options{}), api.DirectorySync{})
	w.cfg.UserFilter = "(uid=alice)" // a filter changed by mistake
	s := w.syncer(directory.Options{})
	_, err := s.Sync(context.Background(), api.DirectorySync{})
	var lim *directory.LeaverLimitError
	if !errors.As(err, &lim) || lim.Would != 4 || lim.Linked != 5 {
		t.Fatalf("a sync that would disable four of five: %v", err)
	}
	if w.user("bob").Status != api.UserActive {
		t.Fatal("the refused sync disabled bob")
	}
	rep := mustSync(t, s, api.DirectorySync{Force: true})
	if rep.Disabled != 4 || w.user("bob").Status != api.UserDisabled {
		t.Fatalf("forced: %+v", rep)
	}
}

// AD's attributes in a slapd whose root DSE does not say Active
// Directory: flavor ad's defaults, read the OpenLDAP way (modifyTimestamp,
// nesting resolved by keyfleet). ad_test.go has the AD path itself.
func TestAnActiveDirectoryLikeDirectoryGivesObjectGUIDsAndTheDisabledBit(t *testing.T) {
	w := newWorld(t, dt.Organisation(0, true))
	w.cfg.Flavor = directory.FlavorAD
	w.cfg.UserFilter = "(objectClass=keyfleetADUser)"
	w.cfg.GroupFilter = "(objectClass=groupOfNames)"
	w.cfg.Attributes = directory.AttributeMap{}
	s := w.syncer(directory.Options{})
	rep := mustSync(t, s, api.DirectorySync{})
	if rep.Created != 5 || !w.missing("frank") {
		t.Fatalf("AD-like sync: %+v", rep)
	}
	alice := w.user("alice") // sAMAccountName ALICE, lower-cased
	if alice.External.ID != "00000001-0000-0000-0000-0000000000aa" {
		t.Fatalf("alice's objectGUID reads %q", alice.External.ID)
	}
	if !slices.Equal(w.user("carol").Groups, []string{"eng"}) {
		t.Fatalf("nested groups on an AD-like directory without IN_CHAIN: %v", w.user("carol").Groups)
	}
	w.ldap.Modify(t, "dn: "+dt.PersonDN("bob")+"\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 514\n")
	if rep := mustSync(t, s, api.DirectorySync{Incremental: true}); rep.Disabled != 1 || w.user("bob").Status != api.UserDisabled {
		t.Fatalf("userAccountControl 514: %+v", rep)
	}
}

func TestADryRunReadsTheDirectoryAndChangesNothing(t *testing.T) {
	w := smallWorld(t)
	head := w.st.AuditHead()
	rep := mustSync(t, w.syncer(directory.Options{}), api.DirectorySync{DryRun: true})
	if !rep.DryRun || rep.Created != 5 || rep.Requested != 2 || len(rep.Changes) < 7 {
		t.Fatalf("dry run: %+v", rep)
	}
	if w.st.AuditHead() != head || w.userCount() != 2 {
		t.Fatal("the dry run changed the store")
	}
}

func TestPeriodicSyncRunsUntilStopped(t *testing.T) {
	w := smallWorld(t)
	w.cfg.Interval = directory.Duration{Duration: time.Minute}
	s := w.syncer(directory.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for w.userCount() < 7 {
		if time.Now().After(deadline) {
			t.Fatal("the periodic sync did not run")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for s.NextSync().IsZero() {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}

// A user new to the directory and put in a nested group, and one added
// to a group, reach keyfleet with their groups in an incremental sync;
// the others are left as they were.
func TestAnIncrementalSyncGivesNewAndMovedUsersTheirGroups(t *testing.T) {
	w := smallWorld(t)
	s := w.syncer(directory.Options{})
	mustSync(t, s, api.DirectorySync{})
	alice := w.user("alice")
	w.ldap.Modify(t, fmt.Sprintf(`dn: %s
changetype: add
objectClass: inetOrgPerson
uid: gina
cn: Gina
sn: Gina
displayName: Gina
mail: gina@example.org

dn: %s
changetype: modify
add: member
member: %s

dn: %s
changetype: modify
add: member
member: %s
`, dt.PersonDN("gina"), dt.GroupDN("sre"), dt.PersonDN("gina"), dt.GroupDN("all-staff"), dt.PersonDN("erin")))
	rep := mustSync(t, s, api.DirectorySync{Incremental: true})
	if rep.Mode != api.SyncIncremental || rep.Created != 1 || rep.Updated != 1 {
		t.Fatalf("incremental sync: %+v", rep)
	}
	for name, want := range map[string][]string{"gina": {"eng"}, "erin": {"staff"}, "alice": {"eng", "staff"}} {
		if got := w.user(name).Groups; !slices.Equal(got, want) {
			t.Errorf("%s is in %v, want %v", name, got, want)
		}
	}
	if got := w.user("alice"); got.UpdatedAt != alice.UpdatedAt {
		t.Errorf("alice, unchanged, was updated")
	}
}
