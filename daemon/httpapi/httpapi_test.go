package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/core/coretest"
	"github.com/keyfleet/keyfleet/daemon/events"
	"github.com/keyfleet/keyfleet/daemon/httpapi"
	"github.com/keyfleet/keyfleet/daemon/push"
	"github.com/keyfleet/keyfleet/daemon/seal"
	"github.com/keyfleet/keyfleet/daemon/store"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type fixture struct {
	t       *testing.T
	srv     *httptest.Server
	svc     *core.Service
	st      *store.Store
	h       *httpapi.Handler
	logs    *syncBuffer
	tokens  map[string]string // role → secret
	users   map[string]string // role → user id
	secrets []string
	skew    *atomic.Int64 // added to the service's clock
	people  *coretest.People
}

func newFixture(t *testing.T) *fixture { t.Helper(); return newFixtureWith(t, nil) }

// newFixtureWith serves the API behind wrap (nil for none), as keyfleetd
// serves it behind the client address middleware.
func newFixtureWith(t *testing.T, wrap func(http.Handler) http.Handler) *fixture {
	t.Helper()
	st, err := store.Open(store.Options{InMemory: true, EncryptionKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	sl, _ := seal.New(make([]byte, 32))
	skew := &atomic.Int64{}
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	svc, err := core.New(core.Config{Store: st, Sealer: sl, Kinds: []sdk.Factor{coretest.Kind{}, coretest.Key{}}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	h, err := httpapi.New(httpapi.Config{Service: svc, Logger: slog.New(slog.NewJSONHandler(logs, nil)), MaxBodyBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	var served http.Handler = h
	if wrap != nil {
		served = wrap(h)
	}
	f := &fixture{t: t, srv: httptest.NewTLSServer(served), svc: svc, st: st, h: h, logs: logs, skew: skew,
		tokens: map[string]string{}, users: map[string]string{}, people: coretest.NewPeople(t, svc)}
	t.Cleanup(func() { f.srv.Close(); st.Close() })
	for _, role := range api.AllRoles {
		kind := api.KindPerson
		if core.ServiceAccountRole(role) {
			kind = api.KindService
		}
		u, _, err := svc.CreateUser(context.Background(), core.System, api.CreateUser{Username: "as-" + strings.ReplaceAll(role, "_", "-"), Kind: kind, Roles: []string{role}})
		if err != nil {
			t.Fatal(err)
		}
		_, secret, err := svc.CreateToken(context.Background(), core.System, api.CreateToken{User: u.ID, Name: "test"})
		if err != nil {
			t.Fatal(err)
		}
		f.tokens[role], f.users[role] = secret, u.ID
		f.secrets = append(f.secrets, secret)
		if role == admin || role == so {
			f.people.GiveKey(u.ID) // the approvers' own keys, for proofs
		}
	}
	return f
}

// proof asks the daemon, as role and over HTTPS, for a proof of one
// action (request is the action's body, nil for none), answers it with
// the role's own test key, and returns the Keyfleet-Proof header value.
func (f *fixture) proof(role, action, subject string, request any) string {
	f.t.Helper()
	var raw json.RawMessage
	if request != nil {
		raw, _ = json.Marshal(request)
	}
	body, _ := json.Marshal(api.ProofRequest{Action: action, Subject: subject, Request: raw})
	status, out := f.do(role, "POST", "/v1/proofs", string(body))
	if status != http.StatusCreated {
		f.t.Fatalf("asking for a proof of %s as %s: %d %s", action, role, status, out)
	}
	var ch api.ProofChallenge
	if err := json.Unmarshal(out, &ch); err != nil {
		f.t.Fatal(err)
	}
	return core.EncodeProof(*f.people.Answer(f.users[role], ch))
}

// doProved is do with a proof header.
func (f *fixture) doProved(role, method, path, body, proof string) (int, []byte) {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, f.srv.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+f.tokens[role])
	req.Header.Set(api.ProofHeader, proof)
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// do sends a request as role ("" for none) and returns status and body.
func (f *fixture) do(role, method, path, body string) (int, []byte) {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, f.srv.URL+path, rd)
	if role != "" {
		req.Header.Set("Authorization", "Bearer "+f.tokens[role])
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, s := range f.secrets {
		if bytes.Contains(b, []byte(s)) && !(method == "POST" && path == "/v1/tokens") {
			f.t.Fatalf("%s %s answered with a token secret", method, path)
		}
	}
	return resp.StatusCode, b
}

func (f *fixture) victim() (userID, factorID, deviceID string) {
	f.t.Helper()
	ctx := context.Background()
	u, _, err := f.svc.CreateUser(ctx, core.System, api.CreateUser{Username: fmt.Sprintf("victim-%d", time.Now().UnixNano())})
	if err != nil {
		f.t.Fatal(err)
	}
	e, _, _ := f.svc.CreateEnrolment(ctx, core.System, api.CreateEnrolment{User: u.ID, Kind: "test"})
	fac, err := f.svc.CompleteEnrolment(ctx, core.System, e.ID, api.CompleteEnrolment{Payload: coretest.EnrolPayload(e.Challenge, "TESTSEED", u.ID)})
	if err != nil {
		f.t.Fatal(err)
	}
	return u.ID, fac.ID, fac.DeviceID
}

const (
	admin, so, help, enr, aud, svc, usr = api.RoleAdmin, api.RoleSecurityOfficer, api.RoleHelpdesk, api.RoleEnroller, api.RoleAuditor, api.RoleService, api.RoleUser
	lh                                  = api.RoleLoginHost
)

func TestEveryRoleReachesOnlyWhatItMay(t *testing.T) {
	f := newFixture(t)
	uid, fid, did := f.victim()
	apr, _ := f.svc.RequestUserAction(context.Background(), core.System, uid, api.ActionUserResetMFA, "")
	enrol, _, _ := f.svc.CreateEnrolment(context.Background(), core.System, api.CreateEnrolment{User: uid, Kind: "test"})
	tests := []struct {
		group, method, path, body string
		allowed                   []string
	}{
		{"self", "GET", "/v1/me", "", api.AllRoles},
		{"read users", "GET", "/v1/users", "", []string{admin, so, help, enr, aud}},
		{"read a user", "GET", "/v1/users/" + uid, "", []string{admin, so, help, enr, aud}},
		{"create users", "POST", "/v1/users", `{"username":"newbie"}`, []string{admin}},
		{"update users", "PATCH", "/v1/users/" + uid, `{"display_name":"V"}`, []string{admin}},
		{"enable users", "POST", "/v1/users/" + uid + "/enable", "", []string{admin}},
		{"request disable", "POST", "/v1/users/" + uid + "/disable", "", []string{admin, so}},
		{"request reset", "POST", "/v1/users/" + uid + "/reset-mfa", "", []string{admin, so, help}},
		{"request user delete", "DELETE", "/v1/users/" + uid, "", []string{admin}},
		{"read factors", "GET", "/v1/factors", "", []string{admin, so, help, enr, aud, usr}},
		{"read another's factor", "GET", "/v1/factors/" + fid, "", []string{admin, so, help, enr, aud}},
		{"rename another's factor", "PATCH", "/v1/factors/" + fid, `{"label":"x"}`, []string{admin}},
		{"suspend another's factor", "POST", "/v1/factors/" + fid + "/suspend", "", []string{admin, so, help}},
		{"resume factors", "POST", "/v1/factors/" + fid + "/resume", "", []string{admin, so, help}},
		{"request revoke", "POST", "/v1/factors/" + fid + "/revoke", "", []string{admin, so, help}},
		{"request factor delete", "DELETE", "/v1/factors/" + fid, "", []string{admin}},
		{"read devices", "GET", "/v1/devices", "", []string{admin, so, help, enr, aud, usr}},
		{"read another's device", "GET", "/v1/devices/" + did, "", []string{admin, so, help, enr, aud}},
		{"read enrolments", "GET", "/v1/enrolments", "", []string{admin, so, help, enr, aud, usr}},
		{"create enrolments", "POST", "/v1/enrolments", fmt.Sprintf(`{"user":%q,"kind":"test"}`, uid), []string{admin, help, enr}},
		{"complete another's enrolment", "POST", "/v1/enrolments/" + enrol.ID + "/complete", `{"payload":{"serial":"e1"}}`, []string{admin, enr}},
		{"read tokens", "GET", "/v1/tokens", "", slices.DeleteFunc(slices.Clone(api.AllRoles), func(r string) bool { return r == api.RoleScim })},
		// Every person may make their own token (with a proof of their key).
		{"create tokens", "POST", "/v1/tokens", `{"name":"x"}`, []string{admin, so, help, enr, aud, usr}},
		{"begin a proof", "POST", "/v1/proofs", `{"action":"token.create"}`, []string{admin, so, help, enr, aud, usr}},
		{"read who holds privilege", "GET", "/v1/reports/privileged", "", []string{admin, so, help, aud}},
		{"read approvals", "GET", "/v1/approvals", "", []string{admin, so, help, aud}},
		{"decide approvals", "POST", "/v1/approvals/" + apr.ID + "/deny", "", []string{admin, so}},
		{"read audit", "GET", "/v1/audit", "", []string{admin, so, aud}},
		{"verify audit", "GET", "/v1/audit/verify", "", []string{admin, so, aud}},
		{"export audit", "GET", "/v1/audit/export", "", []string{admin, so, aud}},
		{"report lost", "POST", "/v1/devices/" + did + "/lost", "", []string{admin, so, help}},
		{"read another's MFA status", "GET", "/v1/users/" + uid + "/mfa-status", "", []string{admin, so, help, aud, svc, lh}},
		{"open recovery cases", "POST", "/v1/recovery", fmt.Sprintf(`{"user":%q,"reason":"lost"}`, uid), []string{admin, so, help}},
		{"read recovery cases", "GET", "/v1/recovery", "", []string{admin, so, help, aud}},
		{"clear recovery locks", "POST", "/v1/users/" + uid + "/recovery-unlock", "", []string{admin, so}},
		{"read break-glass status", "GET", "/v1/breakglass", "", []string{admin, so, aud}},
		{"rotate break-glass", "POST", "/v1/breakglass/rotate", "", []string{admin}},
		{"verify attestation", "POST", "/v1/attest/verify", `{"format":"piv"}`, []string{admin, enr}},
		{"unlock users", "POST", "/v1/users/" + uid + "/unlock", "", []string{admin, so, help}},
		{"begin verifications", "POST", "/v1/verify/begin", fmt.Sprintf(`{"user":%q}`, uid), []string{admin, svc, lh}},
		{"record login decisions", "POST", "/v1/login-decisions", fmt.Sprintf(`{"user":%q,"outcome":"refused","reason":"must_enrol"}`, uid), []string{lh}},
		{"finish verifications", "POST", "/v1/verify/finish", `{"id":"ver_x","factor_id":"fac_x","response":{}}`, []string{admin, svc, lh}},
		{"read the policy", "GET", "/v1/policy", "", []string{admin, so, help, aud}},
		{"read policy versions", "GET", "/v1/policy/versions", "", []string{admin, so, help, aud}},
		{"read a policy version", "GET", "/v1/policy/versions/1", "", []string{admin, so, help, aud}},
		{"diff policy versions", "GET", "/v1/policy/diff", "", []string{admin, so, help, aud}},
		{"dry-run a policy", "POST", "/v1/policy/dry-run", `{"document":"version: 1\n"}`, []string{admin, so}},
		{"apply a policy", "POST", "/v1/policy", `{"document":"version: 1\nrules: []\n"}`, []string{admin, so}},
		{"roll the policy back", "POST", "/v1/policy/rollback", `{"version":1}`, []string{admin, so}},
		{"request exemptions", "POST", "/v1/users/" + uid + "/exemptions", `{"until":"2000-01-01T00:00:00Z","reason":"x"}`, []string{admin, so, help}},
		{"read the compliance report", "GET", "/v1/reports/compliance", "", []string{admin, so, help, aud}},
		{"read the directory status", "GET", "/v1/directory/status", "", []string{admin, so, help, aud}},
		{"sync the directory", "POST", "/v1/directory/sync", `{"dry_run":true}`, []string{admin}},
		{"link users to a directory", "POST", "/v1/directory/links", fmt.Sprintf(`{"user":%q,"source":"corp"}`, uid), []string{admin}},
	}
	for _, tt := range tests {
		for _, role := range api.AllRoles {
			want := slices.Contains(tt.allowed, role)
			name := fmt.Sprintf("%s is %s to %s", role, map[bool]string{true: "allowed", false: "refused"}[want], tt.group)
			t.Run(name, func(t *testing.T) {
				status, body := f.do(role, tt.method, tt.path, tt.body)
				denied := status == http.StatusForbidden && bytes.Contains(body, []byte("/problems/forbidden"))
				if want == denied || status == http.StatusUnauthorized {
					t.Fatalf("%s %s as %s: %d %s", tt.method, tt.path, role, status, body)
				}
			})
		}
	}
	t.Run("no token is refused everywhere", func(t *testing.T) {
		for _, r := range f.h.Routes() {
			method, path, _ := strings.Cut(r.Pattern, " ")
			if r.Action == "" || r.Action == "public" {
				continue
			}
			if status, _ := f.do("", method, strings.NewReplacer("{user}", "x", "{id}", "x", "{n}", "1").Replace(path), ""); status != http.StatusUnauthorized {
				t.Errorf("%s without a token: %d", r.Pattern, status)
			}
		}
	})
}

func TestBadInputIsRefusedClearlyAndChangesNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, fid, _ := f.victim()
	_, expired, _ := f.svc.CreateToken(ctx, core.System, api.CreateToken{User: f.users[admin], Name: "short", TTL: "1m"})
	f.tokens["expired"] = expired
	f.tokens["wrong"] = "kf_" + strings.Repeat("0", 26) + "_" + strings.Repeat("A", 43)
	apr, _ := f.svc.RequestFactorRemoval(ctx, core.Principal{UserID: f.users[admin], Username: "as-admin", Roles: []string{admin}}, fid, api.ActionFactorRevoke, "", true)
	tests := []struct {
		name, role, method, path, body string
		status                         int
		problem                        string
		audited                        bool // the refusal itself is audited (an attempt to act alone)
	}{
		{"malformed JSON", admin, "POST", "/v1/users", `{"username": "a"`, 400, "invalid-json", false},
		{"a JSON array instead of an object", admin, "POST", "/v1/users", `["a"]`, 400, "invalid-json", false},
		{"two objects in one body", admin, "POST", "/v1/users", `{"username":"a"}{"username":"b"}`, 400, "invalid-json", false},
		{"an oversized body", admin, "POST", "/v1/users", `{"username":"a","display_name":"` + strings.Repeat("x", 5000) + `"}`, 413, "body-too-large", false},
		{"an unknown field", admin, "POST", "/v1/users", `{"username":"a","is_admin":true}`, 400, "unknown-field", false},
		{"a wrongly typed field", admin, "POST", "/v1/users", `{"username":7}`, 400, "invalid-json", false},
		{"an invalid username", admin, "POST", "/v1/users", `{"username":"Robert'); DROP TABLE"}`, 400, "validation-failed", false},
		{"an empty body where one is needed", admin, "POST", "/v1/users", ``, 400, "invalid-json", false},
		{"a wrong token", "wrong", "GET", "/v1/me", "", 401, "unauthenticated", false},
		{"an expired token", "expired", "GET", "/v1/me", "", 401, "token-expired", false},
		{"a role without permission", usr, "POST", "/v1/users", `{"username":"a"}`, 403, "forbidden", false},
		{"an approval by the requester", admin, "POST", "/v1/approvals/" + apr.ID + "/approve", `{"reason":"me"}`, 403, "self-approval", true},
		{"an approval with a token alone", so, "POST", "/v1/approvals/" + apr.ID + "/approve", `{"reason":"ok"}`, 403, "proof-required", true},
		{"an approval without a reason", so, "POST", "/v1/approvals/" + apr.ID + "/approve", ``, 400, "validation-failed", false},
		{"a bad page size", admin, "GET", "/v1/users?limit=0", "", 400, "bad-request", false},
		{"an unknown route", admin, "GET", "/v1/nope", "", 404, "not-found", false},
		{"an unknown factor", admin, "POST", "/v1/factors/fac_nope/suspend", "", 404, "not-found", false},
	}
	// Let the short token expire without waiting: it expires a minute from
	// now, so move the service clock instead.
	f.skew.Store(int64(2 * time.Minute))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head := f.st.AuditHead()
			status, body := f.do(tt.role, tt.method, tt.path, tt.body)
			var p api.Problem
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatalf("answer is not a problem: %s", body)
			}
			if status != tt.status || p.Type != "/problems/"+tt.problem || p.Detail == "" || p.RequestID == "" {
				t.Fatalf("got %d %+v, want %d %s", status, p, tt.status, tt.problem)
			}
			f.changedOnlyByRefusals(head, tt.audited)
		})
	}
	t.Run("a double approval is refused", func(t *testing.T) {
		if status, body := f.doProved(so, "POST", "/v1/approvals/"+apr.ID+"/approve", `{"reason":"checked"}`, f.proof(so, "approval.approve", apr.ID, nil)); status != 200 {
			t.Fatalf("first approval: %d %s", status, body)
		}
		head := f.st.AuditHead()
		status, body := f.do(admin, "POST", "/v1/approvals/"+apr.ID+"/approve", `{"reason":"again"}`)
		if status != 409 || !bytes.Contains(body, []byte("/problems/approval-closed")) || f.st.AuditHead() != head {
			t.Fatalf("second approval: %d %s", status, body)
		}
	})
	for _, s := range f.secrets {
		if strings.Contains(f.logs.String(), s) || strings.Contains(f.logs.String(), "TESTSEED") {
			t.Fatal("a secret reached the log")
		}
	}
}

func TestOpenAPIDocumentMatchesTheRoutes(t *testing.T) {
	b, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                          `yaml:"openapi"`
		Paths   map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	f := newFixture(t)
	hub, err := push.New(push.Config{}, push.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := httpapi.New(httpapi.Config{Service: f.svc, Metrics: http.NotFoundHandler(), Events: noEvents{}, Push: hub})
	served := map[string]bool{}
	for _, r := range h.Routes() {
		served[r.Pattern] = true
		if !documented[r.Pattern] {
			t.Errorf("%s is served but not in docs/openapi.yaml", r.Pattern)
		}
	}
	for p := range documented {
		if !served[p] {
			t.Errorf("%s is in docs/openapi.yaml but not served", p)
		}
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi version %q", doc.OpenAPI)
	}
}

func TestListsPaginate(t *testing.T) {
	f := newFixture(t)
	for i := range 7 {
		f.svc.CreateUser(context.Background(), core.System, api.CreateUser{Username: fmt.Sprintf("page-%d", i)})
	}
	var seen []string
	cursor := ""
	for range 10 {
		_, body := f.do(admin, "GET", "/v1/users?q=page-&limit=3&cursor="+cursor, "")
		var pg api.Page[api.User]
		json.Unmarshal(body, &pg)
		for _, u := range pg.Items {
			seen = append(seen, u.Username)
		}
		if cursor = pg.NextCursor; cursor == "" {
			break
		}
	}
	if len(seen) != 7 || !slices.IsSorted(seen) {
		t.Fatalf("pages gave %v", seen)
	}
}

// noEvents stands in for the event sinks where only routes matter.
type noEvents struct{}

func (noEvents) SSEHandler() http.Handler                     { return http.NotFoundHandler() }
func (noEvents) Status() []events.SinkStatus                  { return nil }
func (noEvents) Replay(context.Context, string, uint64) error { return nil }

func TestAttestationIsCheckedAgainstTheDaemonsRoots(t *testing.T) {
	f := newFixture(t)
	read := func(name string) string {
		b, err := os.ReadFile("../../testdata/attest/piv/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	body := func(slot, dev string) string {
		b, _ := json.Marshal(api.AttestRequest{Format: "piv", SlotCert: read(slot), DeviceCert: read(dev)})
		return string(b)
	}
	status, out := f.do(enr, "POST", "/v1/attest/verify", body("ovh-fw574-9a-slot.pem", "ovh-fw574-f9-device.pem"))
	if status != 200 || !bytes.Contains(out, []byte(`"serial":32718477`)) {
		t.Fatalf("a real pair: %d %s", status, out)
	}
	status, out = f.do(enr, "POST", "/v1/attest/verify", body("ovh-fw574-9a-slot.pem", "ovh-fw435-f9-device.pem"))
	if status != 422 || !bytes.Contains(out, []byte("/problems/attestation-refused")) {
		t.Fatalf("a cross-device pair: %d %s", status, out)
	}
}

func TestAnEnrolmentCodeIsRedeemedWithoutATokenOnceAndRateLimited(t *testing.T) {
	f := newFixture(t)
	uid, _, _ := f.victim()
	status, body := f.do(help, "POST", "/v1/enrolments", `{"user":"`+uid+`","kind":"test"}`)
	if status != http.StatusCreated || bytes.Contains(body, []byte(`"code"`)) {
		t.Fatalf("the helpdesk (which may not complete enrolments) got a code: %d %s", status, body)
	}
	status, body = f.do(admin, "POST", "/v1/enrolments", `{"user":"`+uid+`","kind":"test"}`)
	var en api.Enrolment
	if err := json.Unmarshal(body, &en); status != http.StatusCreated || err != nil || !api.IsEnrolmentCode(en.Code) || en.Code == api.EnrolmentCode(en.ID, en.Challenge) {
		t.Fatalf("creating an enrolment: %d %s", status, body)
	}
	if _, body := f.do(admin, "GET", "/v1/enrolments/"+en.ID, ""); bytes.Contains(body, []byte(`"code"`)) {
		t.Fatalf("the code is shown again after creation: %s", body)
	}
	redeem := `{"code":"` + en.Code + `"}`
	status, body = f.do("", "POST", "/v1/enrolments/redeem", redeem)
	var red api.RedeemedEnrolment
	if err := json.Unmarshal(body, &red); status != http.StatusCreated || err != nil || red.Enrolment.ID != en.ID || red.UserID != uid {
		t.Fatalf("redeeming: %d %s", status, body)
	}
	f.secrets = append(f.secrets, red.Token)
	complete := func(id string, challenge []byte) int {
		b, _ := json.Marshal(api.CompleteEnrolment{Payload: coretest.EnrolPayload(challenge, "SEED", "")})
		req, _ := http.NewRequest("POST", f.srv.URL+"/v1/enrolments/"+id+"/complete", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+red.Token)
		resp, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	_, other := f.do(admin, "POST", "/v1/enrolments", `{"user":"`+uid+`","kind":"test"}`)
	var en2 api.Enrolment
	json.Unmarshal(other, &en2)
	if got := complete(en2.ID, en2.Challenge); got != http.StatusForbidden {
		t.Fatalf("the code's token completing another enrolment: %d", got)
	}
	if got := complete(en.ID, en.Challenge); got != http.StatusCreated {
		t.Fatalf("the code's token completing its enrolment: %d", got)
	}
	// One attempt so far; the limit is 10 a minute per address, shared
	// by every route that needs no token.
	for i := 2; i <= 10; i++ {
		status, body = f.do("", "POST", "/v1/enrolments/redeem", redeem)
		var p api.Problem
		json.Unmarshal(body, &p)
		if status != http.StatusUnauthorized || p.Type != "/problems/unauthenticated" || !strings.Contains(p.Detail, "ask your administrator for a new one") {
			t.Fatalf("attempt %d with a used code: %d %s", i, status, body)
		}
	}
	if status, body = f.do("", "POST", "/v1/enrolments/redeem", redeem); status != http.StatusTooManyRequests {
		t.Fatalf("the 11th attempt in a minute: %d %s", status, body)
	}
	code := strings.SplitN(en.Code, ".", 2)[1]
	if logs := f.logs.String(); strings.Contains(logs, code) || strings.Contains(logs, red.Token) {
		t.Fatalf("the log holds the code or its token: %s", logs)
	}
}

// changedOnlyByRefusals fails if the store moved past head, except, when
// audited, by one audit record of the refusal.
func (f *fixture) changedOnlyByRefusals(head audit.Head, audited bool) {
	f.t.Helper()
	now := f.st.AuditHead()
	if now == head {
		if audited {
			f.t.Fatal("the refusal was not audited")
		}
		return
	}
	if !audited || now.Seq != head.Seq+1 {
		f.t.Fatalf("the refused request changed the store (%d → %d)", head.Seq, now.Seq)
	}
	recs, _ := f.svc.ListAudit(context.Background(), core.System, core.AuditFilter{After: head.Seq}, 5)
	if ev, _ := recs[0].Event(); !strings.HasSuffix(ev.Action, ".refused") {
		f.t.Fatalf("the refused request wrote %s", ev.Action)
	}
}
