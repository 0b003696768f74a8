package core_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/core/coretest"
	"github.com/keyfleet/keyfleet/daemon/seal"
	"github.com/keyfleet/keyfleet/daemon/store"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t      testing.TB
	svc    *core.Service
	st     *store.Store
	clock  *clock
	admin  core.Principal
	admin2 core.Principal
	help   core.Principal
	people *coretest.People
}

func newEnv(t *testing.T) *env {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	svc, st := openService(t, core.Config{Kinds: []sdk.Factor{coretest.Kind{}, coretest.Key{}}, Now: c.Now})
	e := &env{t: t, svc: svc, st: st, clock: c, people: coretest.NewPeople(t, svc)}
	e.admin = e.principal(core.System, "root", api.RoleAdmin)
	e.admin2 = e.principal(e.admin, "second", api.RoleAdmin)
	e.help = e.principal(e.admin, "desk", api.RoleHelpdesk)
	return e
}

// openService is a service on a store in memory (closed when t ends),
// configured by cfg, whose Store and Sealer it sets.
func openService(t *testing.T, cfg core.Config) (*core.Service, *store.Store) {
	t.Helper()
	st, err := store.Open(store.Options{InMemory: true, EncryptionKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg.Store = st
	cfg.Sealer, _ = seal.New(make([]byte, 32))
	svc, err := core.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return svc, st
}

// principal makes a user. A user with roles beyond "user" is made by the
// daemon (as keyfleetd init makes founders) and given a test key, so that
// they can prove actions; a plain user is made by "by".
func (e *env) principal(by core.Principal, name string, roles ...string) core.Principal {
	e.t.Helper()
	for _, r := range roles {
		if r != api.RoleUser && r != api.RoleService {
			p := e.people.Person(name, roles...)
			p.Roles = roles
			return p
		}
	}
	u, _, err := e.svc.CreateUser(context.Background(), by, api.CreateUser{Username: name, Roles: roles})
	if err != nil {
		e.t.Fatalf("creating %s: %v", name, err)
	}
	return core.Principal{UserID: u.ID, Username: name, Roles: u.Roles, Auth: "token"}
}

// keyless makes a user with roles (made by the daemon) who has no factor.
func (e *env) keyless(name string, roles ...string) core.Principal {
	e.t.Helper()
	u, _, err := e.svc.CreateUser(context.Background(), core.System, api.CreateUser{Username: name, Roles: roles})
	if err != nil {
		e.t.Fatalf("creating %s: %v", name, err)
	}
	return core.Principal{UserID: u.ID, Username: name, Roles: u.Roles, Auth: "token"}
}

// approve approves a request as p with a fresh proof of p's key.
func (e *env) approve(p core.Principal, id string) (core.Approval, error) {
	e.t.Helper()
	return e.people.Approve(p, id, "checked by "+p.Username)
}

// enrol gives user a new active factor, on a device when serial is set.
func (e *env) enrol(user, serial string) core.Factor {
	e.t.Helper()
	ctx := context.Background()
	en, _, err := e.svc.CreateEnrolment(ctx, e.admin, api.CreateEnrolment{User: user, Kind: "test"})
	if err != nil {
		e.t.Fatal(err)
	}
	payload := coretest.EnrolPayload(en.Challenge, "SEED-"+user, serial)
	f, err := e.svc.CompleteEnrolment(ctx, e.admin, en.ID, api.CompleteEnrolment{Label: "key", Payload: payload})
	if err != nil {
		e.t.Fatal(err)
	}
	return f
}

// enrolSelf is p enrolling their own first factor (kind "test", secret
// SEED-username): the recovery codes come with it.
func (e *env) enrolSelf(p core.Principal) core.Factor {
	e.t.Helper()
	ctx := context.Background()
	en, _, err := e.svc.CreateEnrolment(ctx, p, api.CreateEnrolment{User: p.UserID, Kind: "test"})
	if err != nil {
		e.t.Fatal(err)
	}
	f, err := e.svc.CompleteEnrolment(ctx, p, en.ID, api.CompleteEnrolment{Label: "own key", Payload: coretest.EnrolPayload(en.Challenge, "SEED-"+p.Username, "")})
	if err != nil {
		e.t.Fatal(err)
	}
	return f
}

func (e *env) verifyChain() core.ChainReport {
	e.t.Helper()
	v, err := e.svc.VerifyAudit(context.Background(), e.admin)
	if err != nil {
		e.t.Fatal(err)
	}
	if v.Break != nil {
		e.t.Fatalf("audit chain broken: %v", v.Break)
	}
	return v
}

func TestFactorStateMachineAllowsOnlyItsTransitions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.principal(e.admin, "alice")
	f := e.enrol("alice", "")
	steps := []struct {
		name  string
		do    func(id string) (core.Factor, error)
		state string
		err   error
	}{
		{"resuming an active factor is refused", func(id string) (core.Factor, error) { return e.svc.ResumeFactor(ctx, e.help, id, "") }, "", core.ErrIllegalTransition},
		{"suspending an active factor works", func(id string) (core.Factor, error) { return e.svc.SuspendFactor(ctx, e.help, id, "lost?") }, api.FactorSuspended, nil},
		{"suspending twice is refused", func(id string) (core.Factor, error) { return e.svc.SuspendFactor(ctx, e.help, id, "") }, "", core.ErrIllegalTransition},
		{"resuming a suspended factor works", func(id string) (core.Factor, error) { return e.svc.ResumeFactor(ctx, e.help, id, "found") }, api.FactorActive, nil},
		{"an unknown factor is not found", func(string) (core.Factor, error) { return e.svc.SuspendFactor(ctx, e.help, "fac_nope", "") }, "", core.ErrNotFound},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			before := e.st.AuditHead()
			got, err := s.do(f.ID)
			if !errors.Is(err, s.err) {
				t.Fatalf("err = %v, want %v", err, s.err)
			}
			if s.err != nil {
				if e.st.AuditHead() != before {
					t.Fatal("a refused transition wrote an audit event")
				}
				return
			}
			if got.State != s.state {
				t.Fatalf("state = %s, want %s", got.State, s.state)
			}
		})
	}
	e.verifyChain()
}

func TestRevocationNeedsASecondApprover(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.principal(e.admin, "bob")
	f := e.enrol("bob", "")
	e.enrol("bob", "") // so f is not bob's last active factor
	a, err := e.svc.RequestFactorRevoke(ctx, e.help, f.ID, "left the company")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := e.svc.GetFactor(ctx, e.admin, f.ID); got.State != api.FactorActive {
		t.Fatalf("factor is %s before approval", got.State)
	}
	if _, err := e.svc.RequestFactorRevoke(ctx, e.admin, f.ID, "again"); !errors.Is(err, core.ErrAlreadyExists) {
		t.Fatalf("a duplicate request gave %v, want ErrAlreadyExists", err)
	}
	if _, err := e.svc.Approve(ctx, e.help, a.ID, "checked"); !errors.Is(err, core.ErrSelfApproval) && !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("helpdesk approving gave %v", err)
	}
	selfReq, _ := e.svc.RequestFactorRevoke(ctx, e.admin, e.enrol("bob", "").ID, "")
	if _, err := e.svc.Approve(ctx, e.admin, selfReq.ID, "checked"); !errors.Is(err, core.ErrSelfApproval) {
		t.Fatalf("self-approval gave %v, want ErrSelfApproval", err)
	}
	got, err := e.people.Approve(e.admin, a.ID, "confirmed with HR")
	if err != nil || got.State != api.ApprovalApproved {
		t.Fatalf("approve = %+v, %v", got, err)
	}
	if f2, _ := e.svc.GetFactor(ctx, e.admin, f.ID); f2.State != api.FactorRevoked || f2.Secret != nil {
		t.Fatalf("after approval the factor is %s with secret %v", f2.State, f2.Secret != nil)
	}
	if _, err := e.svc.Approve(ctx, e.admin2, a.ID, "checked"); !errors.Is(err, core.ErrApprovalClosed) {
		t.Fatalf("double approval gave %v, want ErrApprovalClosed", err)
	}
	recs, _ := e.svc.ListAudit(ctx, e.admin, core.AuditFilter{TargetID: f.ID, Action: "factor.revoke"}, 10)
	if len(recs) != 1 {
		t.Fatalf("%d factor.revoke events, want 1", len(recs))
	}
	ev, _ := recs[0].Event()
	if ev.Actor.ID != e.help.UserID || ev.Approver == nil || ev.Approver.ID != e.admin.UserID {
		t.Fatalf("revoke event actor %v approver %v: want requester and approver", ev.Actor, ev.Approver)
	}
	e.verifyChain()
}

func TestApprovalsExpire(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.principal(e.admin, "carol")
	a, err := e.svc.RequestUserAction(ctx, e.admin, "carol", api.ActionUserDisable, "")
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Add(25 * time.Hour)
	if _, err := e.svc.Approve(ctx, e.admin2, a.ID, "checked"); !errors.Is(err, core.ErrApprovalClosed) {
		t.Fatalf("approving an expired request gave %v", err)
	}
	got, _ := e.svc.GetApproval(ctx, e.admin, a.ID)
	if got.API(e.clock.Now()).State != api.ApprovalExpired {
		t.Fatalf("state = %s, want expired", got.API(e.clock.Now()).State)
	}
	if u, _ := e.svc.GetUser(ctx, e.admin, "carol"); u.Status != api.UserActive {
		t.Fatal("an expired request disabled the user")
	}
}

func TestLostDeviceRevokesEveryFactorOnIt(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.principal(e.admin, "dave")
	f1, f2 := e.enrol("dave", "123456"), e.enrol("dave", "123456")
	other := e.enrol("dave", "999")
	if f1.DeviceID == "" || f1.DeviceID != f2.DeviceID {
		t.Fatalf("factors on one serial got devices %q and %q", f1.DeviceID, f2.DeviceID)
	}
	d, ids, err := e.svc.MarkDeviceLost(ctx, e.help, f1.DeviceID, "left on a train")
	if err != nil || d.State != api.DeviceLost || len(ids) != 2 {
		t.Fatalf("lost = %+v %v %v", d, ids, err)
	}
	for _, id := range []string{f1.ID, f2.ID} {
		if f, _ := e.svc.GetFactor(ctx, e.admin, id); f.State != api.FactorRevoked {
			t.Fatalf("factor %s on the lost key is %s", id, f.State)
		}
	}
	if f, _ := e.svc.GetFactor(ctx, e.admin, other.ID); f.State != api.FactorActive {
		t.Fatalf("factor on another key is %s", f.State)
	}
	if _, _, err := e.svc.MarkDeviceLost(ctx, e.help, f1.DeviceID, ""); !errors.Is(err, core.ErrIllegalTransition) {
		t.Fatalf("marking lost twice gave %v", err)
	}
	en, _, _ := e.svc.CreateEnrolment(ctx, e.admin, api.CreateEnrolment{User: "dave", Kind: "test"})
	payload := coretest.EnrolPayload(en.Challenge, "", "123456")
	if _, err := e.svc.CompleteEnrolment(ctx, e.admin, en.ID, api.CompleteEnrolment{Payload: payload}); !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("enrolling on a lost key gave %v", err)
	}
	e.verifyChain()
}

func TestEnrolmentsAreSingleUseAndExpire(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.principal(e.admin, "erin")
	en, _, err := e.svc.CreateEnrolment(ctx, e.admin, api.CreateEnrolment{User: "erin", Kind: "test"})
	if err != nil {
		t.Fatal(err)
	}
	good := coretest.EnrolPayload(en.Challenge, "s", "")
	bad := coretest.EnrolPayload([]byte("nope"), "s", "")
	if _, err := e.svc.CompleteEnrolment(ctx, e.admin, en.ID, api.CompleteEnrolment{Payload: bad}); !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("wrong challenge gave %v", err)
	}
	refused, _ := e.svc.ListAudit(ctx, e.admin, core.AuditFilter{Action: "enrolment.refused"}, 10)
	if len(refused) != 1 {
		t.Fatalf("%d enrolment.refused events after a refused key, want 1", len(refused))
	}
	if ev, _ := refused[0].Event(); ev.Extra["attestation"] != "failed" || ev.Extra["enrolment_id"] != en.ID {
		t.Fatalf("the refusal event says %v", ev.Extra)
	}
	if _, err := e.svc.CompleteEnrolment(ctx, e.admin, en.ID, api.CompleteEnrolment{Payload: good}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CompleteEnrolment(ctx, e.admin, en.ID, api.CompleteEnrolment{Payload: good}); !errors.Is(err, core.ErrEnrolmentClosed) {
		t.Fatalf("second completion gave %v", err)
	}
	late, _, _ := e.svc.CreateEnrolment(ctx, e.admin, api.CreateEnrolment{User: "erin", Kind: "test", TTL: "5m"})
	e.clock.Add(6 * time.Minute)
	good = coretest.EnrolPayload(late.Challenge, "s", "")
	if _, err := e.svc.CompleteEnrolment(ctx, e.admin, late.ID, api.CompleteEnrolment{Payload: good}); !errors.Is(err, core.ErrEnrolmentClosed) {
		t.Fatalf("expired completion gave %v", err)
	}
	if _, _, err := e.svc.CreateEnrolment(ctx, e.admin, api.CreateEnrolment{User: "erin", Kind: "sms"}); !errors.Is(err, core.ErrUnsupportedKind) {
		t.Fatalf("unknown kind gave %v", err)
	}
}

func TestBootstrapRunsOnceOnAFreshStore(t *testing.T) {
	st, err := store.Open(store.Options{InMemory: true, EncryptionKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sl, _ := seal.New(make([]byte, 32))
	svc, err := core.New(core.Config{Store: st, Sealer: sl, Kinds: []sdk.Factor{coretest.Key{}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	founders, boot, err := svc.Bootstrap(ctx, []string{"boot", "second"}, time.Hour)
	if err != nil || len(founders) != 2 {
		t.Fatal(founders, err)
	}
	p, err := svc.Authenticate(ctx, boot)
	if err != nil || p.Username != "boot" || !slices.Equal(p.Roles, []string{api.RoleAdmin, api.RoleUser}) {
		t.Fatalf("bootstrap token: %+v %v", p, err)
	}
	for _, f := range founders {
		if f.PassCode == "" || !slices.Contains(f.User.Roles, api.RoleAdmin) {
			t.Fatalf("founder %+v", f)
		}
	}
	if _, _, err := svc.Bootstrap(ctx, []string{"again"}, time.Hour); !errors.Is(err, core.ErrAlreadyExists) {
		t.Fatalf("second bootstrap gave %v", err)
	}
}

func TestTokensAuthenticateUntilRevokedOrExpired(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, _, err := e.svc.CreateUser(ctx, e.admin, api.CreateUser{Username: "ci-bot", Kind: api.KindService}); err != nil {
		t.Fatal(err)
	}
	_, shortSecret, err := e.svc.CreateToken(ctx, e.admin, api.CreateToken{User: "ci-bot", Name: "ci", TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	_, revSecret, _ := e.svc.CreateToken(ctx, e.admin, api.CreateToken{User: "ci-bot", Name: "old"})
	tok, _ := e.svc.Authenticate(ctx, revSecret)
	if _, err := e.svc.RevokeToken(ctx, e.admin, tok.TokenID); err != nil {
		t.Fatal(err)
	}
	own := api.CreateToken{Name: "laptop"}
	_, ownSecret, err := e.svc.CreateToken(ctx, e.people.Prove(e.admin, "token.create", "", own), own)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Add(13 * time.Hour) // past a person's default 12h
	tampered := []byte(shortSecret)
	tampered[len(tampered)-1] ^= 1
	tests := []struct {
		name, secret string
		want         error
	}{
		{"a garbage token is refused", "hello", core.ErrUnauthenticated},
		{"a tampered token is refused", string(tampered), core.ErrUnauthenticated},
		{"an expired token is refused", shortSecret, core.ErrTokenExpired},
		{"a revoked token is refused", revSecret, core.ErrTokenRevoked},
		{"a person's own token expires by default", ownSecret, core.ErrTokenExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := e.svc.Authenticate(ctx, tt.secret); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, _, err := e.svc.CreateToken(ctx, e.admin, api.CreateToken{User: "ci-bot", Name: "x", Roles: []string{api.RoleAdmin}}); !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("a token with a role its user lacks gave %v", err)
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tests := []struct {
		name string
		in   api.CreateUser
	}{
		{"an empty username", api.CreateUser{}},
		{"a username with spaces", api.CreateUser{Username: "a b"}},
		{"a username with capitals", api.CreateUser{Username: "Alice"}},
		{"a username shaped like an id", api.CreateUser{Username: "usr_0000000000000000000000000a"}},
		{"an unknown role", api.CreateUser{Username: "x", Roles: []string{"root"}}},
		{"a person with the service role", api.CreateUser{Username: "x", Roles: []string{api.RoleService}}},
		{"a bad email", api.CreateUser{Username: "x", Email: "not an email"}},
		{"a bad group", api.CreateUser{Username: "x", Groups: []string{"Bad Group"}}},
		{"an existing username", api.CreateUser{Username: "root"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.st.AuditHead()
			if _, _, err := e.svc.CreateUser(ctx, e.admin, tt.in); err == nil {
				t.Fatal("accepted")
			}
			if e.st.AuditHead() != before {
				t.Fatal("a refused request changed the audit log")
			}
		})
	}
}

func TestUserResetAndDeleteThroughApproval(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.principal(e.admin, "frank")
	f1, f2 := e.enrol("frank", "1"), e.enrol("frank", "")
	a, err := e.svc.RequestUserAction(ctx, e.help, "frank", api.ActionUserResetMFA, "lost everything")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.approve(e.admin, a.ID); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{f1.ID, f2.ID} {
		if f, _ := e.svc.GetFactor(ctx, e.admin, id); f.State != api.FactorRevoked {
			t.Fatalf("after reset factor %s is %s", id, f.State)
		}
	}
	d, err := e.svc.RequestUserAction(ctx, e.admin, "frank", api.ActionUserDelete, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Approve(ctx, e.help, d.ID, "checked"); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("helpdesk approving a delete gave %v", err)
	}
	if _, err := e.approve(e.admin2, d.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.GetUser(ctx, e.admin, "frank"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("deleted user lookup gave %v", err)
	}
	if _, err := e.svc.GetFactor(ctx, e.admin, f1.ID); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("deleted user's factor lookup gave %v", err)
	}
	e.verifyChain()
}
