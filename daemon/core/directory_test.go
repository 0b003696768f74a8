package core_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// dirEnv is a core with an LDAP source "corp" whose maps manage the
// groups eng and sales and the helpdesk and admin roles.
type dirEnv struct {
	*env
	dir core.Principal
	src core.DirectorySource
}

func newDirEnv(t *testing.T) *dirEnv {
	e := newPolicyEnv(t)
	return &dirEnv{env: e, dir: core.DirectoryPrincipal("corp"), src: core.DirectorySource{Kind: api.DirectoryLDAP,
		ManagedGroups: []string{"eng", "sales"}, ManagedRoles: []string{api.RoleHelpdesk, api.RoleAdmin}}}
}

func (d *dirEnv) sync(entries ...core.DirectoryEntry) api.DirectorySyncReport {
	d.t.Helper()
	var rep api.DirectorySyncReport
	if err := d.svc.SyncDirectory(context.Background(), d.dir, d.src, entries, &rep); err != nil {
		d.t.Fatalf("sync: %v", err)
	}
	return rep
}

func (d *dirEnv) user(name string) core.User {
	d.t.Helper()
	u, err := d.svc.GetUser(context.Background(), d.admin, name)
	if err != nil {
		d.t.Fatalf("user %s: %v", name, err)
	}
	return u
}

// events lists the audit actions about a target with their actors.
func (d *dirEnv) events(target string) []string {
	d.t.Helper()
	recs, err := d.svc.ListAudit(context.Background(), d.admin, core.AuditFilter{TargetID: target}, 100)
	if err != nil {
		d.t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		ev, _ := r.Event()
		out = append(out, ev.Action+" by "+ev.Actor.Name)
	}
	return out
}

func entry(id, name string, groups ...string) core.DirectoryEntry {
	return core.DirectoryEntry{ExternalID: id, Username: name, DisplayName: strings.ToUpper(name), Email: name + "@corp.example", Groups: groups}
}

func TestADirectorySyncCreatesLinkedUsersAndRenamesFollowThePerson(t *testing.T) {
	d := newDirEnv(t)
	rep := d.sync(entry("uuid-1", "jdoe", "eng"), entry("uuid-2", "amy"))
	if rep.Created != 2 || rep.Requested != 0 {
		t.Fatalf("first sync: %+v", rep)
	}
	jdoe := d.user("jdoe")
	if jdoe.External == nil || jdoe.External.Source != "corp" || jdoe.External.ID != "uuid-1" || jdoe.API().Source != "corp" {
		t.Fatalf("jdoe is not linked: %+v", jdoe.External)
	}
	f := d.enrol(jdoe.ID, "")

	renamed := entry("uuid-1", "jsmith", "eng")
	rep = d.sync(renamed, entry("uuid-2", "amy"))
	if rep.Renamed != 1 || rep.Unchanged != 1 {
		t.Fatalf("rename sync: %+v", rep)
	}
	js := d.user("jsmith")
	if js.ID != jdoe.ID {
		t.Fatalf("the rename made a new user %s (was %s)", js.ID, jdoe.ID)
	}
	if _, err := d.svc.GetUser(context.Background(), d.admin, "jdoe"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("the old username still resolves: %v", err)
	}
	if got, _ := d.svc.GetFactor(context.Background(), d.admin, f.ID); got.UserID != js.ID || got.State != api.FactorActive {
		t.Fatalf("the factor did not follow the person: %+v", got)
	}
	if ev := d.events(js.ID); !contains(ev, "user.create by directory:corp") || !contains(ev, "user.rename by directory:corp") {
		t.Fatalf("audit trail of jsmith: %v", ev)
	}
	if rep := d.sync(renamed, entry("uuid-2", "amy")); rep.Unchanged != 2 || rep.Created+rep.Updated+rep.Renamed != 0 {
		t.Fatalf("a sync with nothing new changed something: %+v", rep)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestADirectoryGrantWaitsForAPersonAndIsNotAskedTwice(t *testing.T) {
	d := newDirEnv(t)
	e := entry("uuid-h", "hal")
	e.Roles = []string{api.RoleHelpdesk}
	rep := d.sync(e)
	hal := d.user("hal")
	if rep.Created != 1 || rep.Requested != 1 || len(rep.Approvals) != 1 || contains(hal.Roles, api.RoleHelpdesk) {
		t.Fatalf("the directory granted helpdesk at once: %+v, roles %v", rep, hal.Roles)
	}
	a, _ := d.svc.GetApproval(context.Background(), d.admin, rep.Approvals[0])
	if a.Action != api.ActionUserAccess || a.RequestedBy.Name != "directory:corp" || a.Params["grant_roles"] != api.RoleHelpdesk {
		t.Fatalf("the request: %+v", a)
	}
	if again := d.sync(e); again.Requested != 0 || again.Unchanged != 1 {
		t.Fatalf("the second sync asked again: %+v", again)
	}
	if _, err := d.approve(d.admin2, a.ID); err != nil {
		t.Fatalf("a security officer approving the directory's request: %v", err)
	}
	if hal = d.user("hal"); !contains(hal.Roles, api.RoleHelpdesk) || hal.Grants[api.RoleHelpdesk].By.Name != "directory:corp" {
		t.Fatalf("after approval hal has %v, grants %+v", hal.Roles, hal.Grants)
	}
	if again := d.sync(e); again.Requested != 0 || again.Unchanged != 1 {
		t.Fatalf("after approval the sync did %+v", again)
	}
	// Leaving the directory's helpdesk group takes the role away at once.
	e.Roles = nil
	if rep := d.sync(e); rep.Updated != 1 || contains(d.user("hal").Roles, api.RoleHelpdesk) {
		t.Fatalf("leaving the group kept the role: %+v %v", rep, d.user("hal").Roles)
	}
}

func TestADeniedDirectoryGrantIsNotAskedAgainUntilTheDirectoryChanges(t *testing.T) {
	d := newDirEnv(t)
	e := entry("uuid-h", "hal")
	e.Roles = []string{api.RoleHelpdesk}
	rep := d.sync(e)
	if _, err := d.people.Deny(d.admin2, rep.Approvals[0], "not this one"); err != nil {
		t.Fatal(err)
	}
	if again := d.sync(e); again.Requested != 0 {
		t.Fatalf("a denied grant was asked again: %+v", again)
	}
	e.Roles = []string{api.RoleHelpdesk, api.RoleAdmin}
	if again := d.sync(e); again.Requested != 1 {
		t.Fatalf("a new grant was not asked: %+v", again)
	}
}

// The directory puts a security officer into its helpdesk group. Nobody
// stands behind that request: she may not approve her own grant, and the
// refusal is audited.
func TestASecurityOfficerCannotApproveTheGrantTheDirectoryAskedForHer(t *testing.T) {
	d := newDirEnv(t)
	// "second" was made by hand; the operator hands her to the directory.
	if _, err := d.svc.LinkUser(context.Background(), d.admin, "second", "corp", "uuid-so"); err != nil {
		t.Fatal(err)
	}
	e := entry("uuid-so", "second")
	e.Roles = []string{api.RoleHelpdesk}
	rep := d.sync(e)
	if rep.Requested != 1 {
		t.Fatalf("sync: %+v", rep)
	}
	_, err := d.approve(d.admin2, rep.Approvals[0])
	if !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("she approved her own grant: %v", err)
	}
	if !contains(d.events(rep.Approvals[0]), "approval.refused by second") {
		t.Fatalf("the refusal is not audited: %v", d.events(rep.Approvals[0]))
	}
	if _, err := d.approve(d.admin, rep.Approvals[0]); err != nil {
		t.Fatalf("another admin approving: %v", err)
	}
}

func TestAHandMadeUserIsLeftAloneUntilLinked(t *testing.T) {
	d := newDirEnv(t)
	bob := d.person("bob")
	rep := d.sync(entry("uuid-b", "bob", "eng"))
	if rep.Conflicts != 1 || rep.Created != 0 || d.user("bob").External != nil || len(d.user("bob").Groups) != 0 {
		t.Fatalf("the sync touched a hand-made user: %+v %+v", rep, d.user("bob"))
	}
	rep.Mode = api.SyncFull
	if err := d.svc.RecordDirectorySync(context.Background(), d.dir, api.DirectoryLDAP, rep, "cursor-1"); err != nil {
		t.Fatal(err)
	}
	if cur, full, err := d.svc.DirectoryCursor(context.Background(), d.dir); cur != "cursor-1" || !full || err != nil {
		t.Fatalf("cursor %q, full %v, %v", cur, full, err)
	}
	ov, err := d.svc.DirectoryOverview(context.Background(), d.admin, map[string]string{"corp": api.DirectoryLDAP})
	if err != nil || len(ov.Sources) != 1 || !ov.Sources[0].Configured || !contains(ov.Sources[0].Conflicts, "bob") || !contains(ov.UnlinkedUsers, "bob") {
		t.Fatalf("overview: %+v, %v", ov, err)
	}
	if _, err := d.svc.LinkUser(context.Background(), d.help, "bob", "corp", ""); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("helpdesk linked a user: %v", err)
	}
	if _, err := d.svc.LinkUser(context.Background(), d.admin, "bob", "corp", ""); err != nil {
		t.Fatal(err)
	}
	rep = d.sync(entry("uuid-b", "bob", "eng"))
	got := d.user("bob")
	if rep.Updated != 1 || got.ID != bob.ID || got.External.ID != "uuid-b" || !contains(got.Groups, "eng") {
		t.Fatalf("the linked user was not adopted: %+v %+v", rep, got)
	}
	if _, err := d.svc.LinkUser(context.Background(), d.admin, d.person("eve").ID, "corp", "uuid-b"); !errors.Is(err, core.ErrIllegalTransition) {
		t.Fatalf("two users linked to one entry: %v", err)
	}
	if _, err := d.svc.UnlinkUser(context.Background(), d.admin, "bob"); err != nil {
		t.Fatal(err)
	}
	if rep := d.sync(entry("uuid-b", "bob", "sales")); rep.Conflicts != 1 || contains(d.user("bob").Groups, "sales") {
		t.Fatalf("after unlinking the directory still changed bob: %+v", rep)
	}
}

// Two entries of one batch with one username (two people the directory
// gives one name, or one person twice under two ids): the first is
// created, the second is a conflict and takes nothing of the first; and
// an entry of the same batch with a name a person made by hand holds
// leaves that user alone.
func TestTwoEntriesWithOneUsernameInOneBatchMakeOneUser(t *testing.T) {
	d := newDirEnv(t)
	carol := d.person("carol")
	rep := d.sync(entry("uuid-1", "dana", "eng"), entry("uuid-2", "dana", "sales"), entry("uuid-3", "carol", "eng"), entry("uuid-4", "erin"))
	if rep.Created != 2 || rep.Conflicts != 2 {
		t.Fatalf("created %d, conflicts %d, want 2 and 2: %+v", rep.Created, rep.Conflicts, rep.Changes)
	}
	dana := d.user("dana")
	if dana.External == nil || dana.External.ID != "uuid-1" || !slices.Equal(dana.Groups, []string{"eng"}) {
		t.Fatalf("dana is %+v %+v, want the first entry's", dana, dana.External)
	}
	if got := d.user("carol"); got.ID != carol.ID || got.External != nil || len(got.Groups) != 0 {
		t.Fatalf("the hand-made carol was changed: %+v", got)
	}
	if got := d.events(dana.ID); !slices.Equal(got, []string{"user.create by directory:corp"}) {
		t.Fatalf("dana's events: %q, want one creation", got)
	}
	rep = d.sync(entry("uuid-2", "dana", "sales"))
	if rep.Created != 0 || rep.Conflicts != 1 || d.user("dana").External.ID != "uuid-1" {
		t.Fatalf("the second entry alone: %+v, dana %+v", rep, d.user("dana").External)
	}
}

func TestALeaverIsDisabledAtOnceAndComesBackWithTheSameFactors(t *testing.T) {
	d := newDirEnv(t)
	d.sync(entry("uuid-l", "lea"), entry("uuid-m", "max"))
	lea := d.user("lea")
	f := d.enrol(lea.ID, "")
	gone := d.enrol(d.user("max").ID, "")

	off := entry("uuid-l", "lea")
	off.Disabled = true
	rep := d.sync(off)
	if rep.Disabled != 1 {
		t.Fatalf("sync: %+v", rep)
	}
	if got := d.user("lea"); got.Status != api.UserDisabled {
		t.Fatalf("lea is %s", got.Status)
	}
	if got, _ := d.svc.GetFactor(context.Background(), d.admin, f.ID); got.State != api.FactorSuspended {
		t.Fatalf("lea's factor is %s", got.State)
	}
	ev := d.events(lea.ID)
	if !contains(ev, "user.disable by directory:corp") {
		t.Fatalf("lea's trail: %v", ev)
	}
	if as, _, _ := d.svc.ListApprovals(context.Background(), d.admin, api.ApprovalPending, core.PageReq{}); len(as) != 0 {
		t.Fatalf("taking access away asked for approval: %+v", as)
	}

	// max is no longer in the directory: a full sync's leaver.
	leavers, linked, err := d.svc.DirectoryLeavers(context.Background(), d.dir, func(id string) bool { return id == "uuid-l" })
	if err != nil || linked != 2 || len(leavers) != 1 || leavers[0] != d.user("max").ID {
		t.Fatalf("leavers %v of %d, %v", leavers, linked, err)
	}
	if err := d.svc.DisableLeavers(context.Background(), d.dir, d.src, leavers, &rep); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.svc.GetFactor(context.Background(), d.admin, gone.ID); got.State != api.FactorSuspended || d.user("max").Status != api.UserDisabled {
		t.Fatalf("max: %s, factor %s", d.user("max").Status, got.State)
	}
	ov, _ := d.svc.DirectoryOverview(context.Background(), d.auditor(), nil)
	if len(ov.Sources) != 1 || ov.Sources[0].Linked != 2 || ov.Sources[0].Active != 0 || len(ov.Sources[0].Gone) != 1 {
		t.Fatalf("overview: %+v", ov)
	}

	rep = d.sync(entry("uuid-l", "lea"))
	if rep.Enabled != 1 || d.user("lea").Status != api.UserActive {
		t.Fatalf("re-enabled in the directory: %+v, %s", rep, d.user("lea").Status)
	}
	if got, _ := d.svc.GetFactor(context.Background(), d.admin, f.ID); got.State != api.FactorActive {
		t.Fatalf("lea's factor is %s after she came back", got.State)
	}
}

func (d *dirEnv) auditor() core.Principal { return d.keyless("aud", api.RoleAuditor) }

func TestAUserAPersonDisabledStaysDisabledWhateverTheDirectorySays(t *testing.T) {
	d := newDirEnv(t)
	d.sync(entry("uuid-x", "xan"))
	a, err := d.svc.RequestUserAction(context.Background(), d.admin, "xan", api.ActionUserDisable, "fired")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.approve(d.admin2, a.ID); err != nil {
		t.Fatal(err)
	}
	if rep := d.sync(entry("uuid-x", "xan")); rep.Enabled != 0 || d.user("xan").Status != api.UserDisabled {
		t.Fatalf("the directory enabled a user a person disabled: %+v", rep)
	}
}

func TestAMoverIsReevaluatedAtOnceAndLeavingARuleWaits(t *testing.T) {
	d := newDirEnv(t)
	d.applyPolicy(d.admin, strings.ReplaceAll(strictPolicy, "groups: [eng]", "groups: [eng]"))
	d.sync(entry("uuid-k", "kim", "sales"))
	kim := d.user("kim")
	rules := func() string {
		recs, _ := d.svc.ListAudit(context.Background(), d.admin, core.AuditFilter{TargetID: kim.ID, Action: "policy.rules_applied"}, 10)
		var b strings.Builder
		for _, r := range recs {
			b.Write(r.Body)
		}
		return b.String()
	}
	if strings.Contains(rules(), "engineering") {
		t.Fatal("the engineering rule applies before kim joined eng")
	}
	rep := d.sync(entry("uuid-k", "kim", "eng"))
	if !strings.Contains(rules(), "engineering") {
		t.Fatalf("joining eng did not start the engineering rule: %+v", rep)
	}
	// Leaving eng weakens the policy's hold on kim: a person approves it.
	rep = d.sync(entry("uuid-k", "kim", "sales"))
	if rep.Requested != 1 || !contains(d.user("kim").Groups, "eng") || !contains(d.user("kim").Groups, "sales") {
		t.Fatalf("leaving a rule's group: %+v, groups %v", rep, d.user("kim").Groups)
	}
}

func TestOnlyADirectorySourceProvisions(t *testing.T) {
	d := newDirEnv(t)
	var rep api.DirectorySyncReport
	for _, p := range []core.Principal{d.admin, core.System, {UserID: "directory", Username: "directory:corp", Roles: []string{api.RoleAdmin}, Auth: "token"}} {
		if err := d.svc.SyncDirectory(context.Background(), p, d.src, []core.DirectoryEntry{entry("u", "mallory")}, &rep); !errors.Is(err, core.ErrForbidden) {
			t.Errorf("%s (%s) provisioned: %v", p.Username, p.Auth, err)
		}
	}
	scimWithMore := core.Principal{UserID: d.admin.UserID, Username: "okta", Roles: []string{api.RoleScim, api.RoleAdmin}, Auth: "token"}
	if err := d.svc.SyncDirectory(context.Background(), scimWithMore, d.src, nil, &rep); !errors.Is(err, core.ErrForbidden) {
		t.Errorf("a token carrying scim and more provisioned: %v", err)
	}
}

func TestADryRunShowsTheChangesAndMakesNone(t *testing.T) {
	d := newDirEnv(t)
	head := d.st.AuditHead()
	src := d.src
	src.DryRun = true
	var rep api.DirectorySyncReport
	if err := d.svc.SyncDirectory(context.Background(), d.dir, src, []core.DirectoryEntry{entry("u1", "ann"), entry("u2", "ben")}, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Created != 2 || len(rep.Changes) != 2 || rep.Changes[0].What != api.ChangeCreated {
		t.Fatalf("dry run: %+v", rep)
	}
	if _, err := d.svc.GetUser(context.Background(), d.admin, "ann"); !errors.Is(err, core.ErrNotFound) || d.st.AuditHead() != head {
		t.Fatalf("the dry run changed the store: %v", err)
	}
}

func TestABadEntryIsSkippedAndTheOthersGoOn(t *testing.T) {
	d := newDirEnv(t)
	bad := entry("u1", "Not A Name")
	email := entry("u2", "ok")
	email.Email = "not an address"
	rep := d.sync(bad, email)
	if rep.Skipped != 1 || rep.Created != 1 || d.user("ok").Email != "" {
		t.Fatalf("%+v", rep)
	}
}
