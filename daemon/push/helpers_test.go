package push

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/core/coretest"
	"github.com/keyfleet/keyfleet/daemon/seal"
	"github.com/keyfleet/keyfleet/daemon/store"
	pushkind "github.com/keyfleet/keyfleet/plugins/push"
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

// env is a domain service on an in-memory store with the push kind (in
// process) and a hub, and an application's principal that verifies.
type env struct {
	t     *testing.T
	st    *store.Store
	svc   *core.Service
	hub   *Hub
	clock *clock
	app   core.Principal
	cfg   Config
	// shared, if set before restart, keeps the per-user cap.
	shared Shared
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	st, err := store.Open(store.Options{InMemory: true, EncryptionKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, st: st, clock: &clock{t: time.Now().UTC().Truncate(time.Second)}, cfg: cfg}
	e.restart()
	u, _, err := e.svc.CreateUser(context.Background(), core.System, api.CreateUser{Username: "vpn-gateway", Kind: api.KindService})
	if err != nil {
		t.Fatal(err)
	}
	e.app = core.Principal{UserID: u.ID, Username: u.Username, Roles: []string{api.RoleService}, Auth: "token"}
	return e
}

// restart replaces the service and the hub over the same store, as a
// keyfleetd restart does: what the hub kept in memory is gone.
func (e *env) restart() {
	e.t.Helper()
	if e.hub != nil {
		e.hub.Close()
	}
	hub, err := New(e.cfg, Options{Now: e.clock.Now, Shared: e.shared})
	if err != nil {
		e.t.Fatal(err)
	}
	sl, _ := seal.New(make([]byte, 32))
	svc, err := core.New(core.Config{Store: e.st, Sealer: sl, Kinds: []sdk.Factor{pushkind.Factor{}, coretest.Key{}},
		OutOfBand: hub, Now: e.clock.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	hub.Attach(svc)
	e.t.Cleanup(hub.Close)
	e.svc, e.hub = svc, hub
}

// companion is a user's enrolled push device.
type companion struct {
	e    *env
	user core.User
	dev  *pushkind.Device
}

func (e *env) user(name string) core.User {
	e.t.Helper()
	u, _, err := e.svc.CreateUser(context.Background(), core.System, api.CreateUser{Username: name})
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// enrol registers a companion for u, as the daemon would for a user's
// first factor.
func (e *env) enrol(u core.User, opts map[string]string) *companion {
	e.t.Helper()
	ctx := context.Background()
	en, _, err := e.svc.CreateEnrolment(ctx, core.System, api.CreateEnrolment{User: u.ID, Kind: pushkind.Kind, Options: opts})
	if err != nil {
		e.t.Fatal(err)
	}
	var params map[string]string
	json.Unmarshal(en.Params, &params)
	dev, _ := pushkind.NewDevice(nil)
	r, _ := dev.Enrol(en.ID, params["nonce"], "Pixel of "+u.Username, "file")
	b, _ := json.Marshal(r)
	f, err := e.svc.CompleteEnrolment(ctx, core.System, en.ID, api.CompleteEnrolment{Label: "phone", Payload: b})
	if err != nil {
		e.t.Fatal(err)
	}
	dev.FactorID = f.ID
	return &companion{e: e, user: u, dev: dev}
}

func (c *companion) factor() core.Factor {
	f, err := c.e.svc.GetFactor(context.Background(), core.System, c.dev.FactorID)
	if err != nil {
		c.e.t.Fatal(err)
	}
	return f
}

// push is one push as the application and the companion see it.
type push struct {
	v        api.Verification
	prompt   pushkind.Prompt
	delivery pushkind.Delivery
}

// begin asks for a push to u, as the application does.
func (e *env) begin(u core.User) (push, error) {
	v, err := e.svc.BeginVerify(context.Background(), e.app, api.BeginVerify{User: u.Username, Kinds: []string{pushkind.Kind},
		Application: "VPN", Address: "203.0.113.7"})
	if err != nil {
		return push{}, err
	}
	p := push{v: v}
	json.Unmarshal(v.Factors[0].Prompt, &p.prompt)
	return p, nil
}

func (e *env) mustBegin(u core.User) push {
	e.t.Helper()
	p, err := e.begin(u)
	if err != nil {
		e.t.Fatalf("begin: %v", err)
	}
	return p
}

// received is what the companion has pending now.
func (c *companion) received() []pushkind.Delivery {
	var out []pushkind.Delivery
	for _, b := range c.e.hub.Pending(c.dev.FactorID) {
		var d pushkind.Delivery
		if err := json.Unmarshal(b, &d); err != nil {
			c.e.t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// delivery is the companion's copy of p.
func (c *companion) delivery(p push) pushkind.Delivery {
	c.e.t.Helper()
	i := slices.IndexFunc(c.received(), func(d pushkind.Delivery) bool { return d.FactorID == c.dev.FactorID })
	if i < 0 {
		c.e.t.Fatalf("the companion has no push pending")
	}
	return c.received()[i]
}

// answer signs a decision and sends it, authenticated as the device.
func (c *companion) answer(d pushkind.Delivery, number, decision string) (core.OutOfBandOutcome, error) {
	a, _ := c.dev.Answer(d, number, decision, c.e.clock.Now())
	b, _ := json.Marshal(a)
	f, err := c.e.hub.Authenticate(c.request("POST", "/v1/push/answer"))
	if err != nil {
		c.e.t.Fatalf("authenticating the device: %v", err)
	}
	return c.e.hub.Answer(context.Background(), f, d.VerificationID, d.FactorID, b)
}

func (c *companion) request(method, path string) *httptestRequest {
	r := httptest.NewRequest(method, path, nil)
	h, _ := c.dev.Authorization(method, path, c.e.clock.Now())
	r.Header.Set(pushkind.DeviceHeader, h)
	return r
}

type httptestRequest = http.Request

// finish is the application asking for the outcome, waiting up to wait.
func (e *env) finish(p push, wait string) (api.VerifyResult, error) {
	return e.svc.FinishVerify(context.Background(), e.app, api.FinishVerify{ID: p.v.ID, FactorID: p.v.Factors[0].FactorID, Wait: wait})
}

// audited lists the audit events with action.
func (e *env) audited(action string) []audit.Event {
	e.t.Helper()
	recs, err := e.svc.ListAudit(context.Background(), core.System, core.AuditFilter{Action: action}, core.MaxPageSize)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []audit.Event
	for _, r := range recs {
		ev, err := r.Event()
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// coreKey gives u a test security key too.
func coreKey(t *testing.T, e *env, u core.User) core.Factor {
	t.Helper()
	return coretest.NewPeople(t, e.svc).GiveKey(u.ID)
}
