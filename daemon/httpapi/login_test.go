package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/httpapi"
)

func TestFirstLoginPassesAreOffUnlessTheOperatorTurnsThemOn(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.svc.ApplyPolicy(ctx, core.System, api.PolicyDocument{Document: "version: 1\nrules:\n  - name: everyone\n    match: {everyone: true}\n"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.CreateUser(ctx, core.System, api.CreateUser{Username: "newbie"}); err != nil {
		t.Fatal(err)
	}
	if status, body := f.do(api.RoleLoginHost, "POST", "/v1/users/newbie/first-login-pass", ""); status != http.StatusForbidden || !strings.Contains(string(body), "first_login.enabled") {
		t.Fatalf("while off: %d %s", status, body)
	}
	h, err := httpapi.New(httpapi.Config{Service: f.svc, FirstLogin: httpapi.FirstLogin{PassTTL: time.Hour, WelcomeURL: "https://kf.example/welcome"}})
	if err != nil {
		t.Fatal(err)
	}
	on := httptest.NewTLSServer(h)
	defer on.Close()
	post := func(role, user string) (int, []byte) {
		req, _ := http.NewRequest("POST", on.URL+"/v1/users/"+user+"/first-login-pass", nil)
		req.Header.Set("Authorization", "Bearer "+f.tokens[role])
		resp, err := on.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b json.RawMessage
		json.NewDecoder(resp.Body).Decode(&b)
		return resp.StatusCode, b
	}
	// An application's service token verifies codes; it cannot hand out
	// the pass that enrols a factor for someone (nor can an admin's
	// token: an admin issues staff passes, through a second person).
	for _, role := range []string{api.RoleService, api.RoleAdmin, api.RoleUser} {
		if status, body := post(role, "newbie"); status != http.StatusForbidden || strings.Contains(string(body), "kfp-") {
			t.Fatalf("a %s token asking for newbie's first-login pass: %d %s", role, status, body)
		}
	}
	status, body := post(api.RoleLoginHost, "newbie")
	var pass api.FirstLoginPass
	json.Unmarshal(body, &pass)
	if status != http.StatusCreated || !strings.HasPrefix(pass.Code, "kfp-") || pass.WelcomeURL != "https://kf.example/welcome" {
		t.Fatalf("a login host asking for newbie: %d %s", status, body)
	}
	if status, body := post(api.RoleLoginHost, "as-helpdesk"); status != http.StatusConflict {
		t.Fatalf("a first-login pass for staff: %d %s", status, body)
	}
}

// lastEvent is the newest audit event.
func (f *fixture) lastEvent() audit.Event {
	f.t.Helper()
	head := f.st.AuditHead()
	recs, err := f.svc.ListAudit(context.Background(), core.System, core.AuditFilter{After: head.Seq - 1}, 1)
	if err != nil || len(recs) != 1 {
		f.t.Fatalf("reading the last audit event: %v", err)
	}
	ev, err := recs[0].Event()
	if err != nil {
		f.t.Fatal(err)
	}
	return ev
}

// TestEveryLoginDecisionOfAPAMHostIsAudited posts, as a login host's
// service token, each decision the PAM module makes without a
// verification, and finds each in the audit trail: its outcome, reason,
// user, actor, and where the sign-in happened.
func TestEveryLoginDecisionOfAPAMHostIsAudited(t *testing.T) {
	f := newFixture(t)
	uid, _, _ := f.victim()
	late := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Second)
	tests := []struct {
		name, body, action, reason, target string
		extra                              map[string]string
	}{
		{"let in within the enrolment deadline", fmt.Sprintf(`{"user":%q,"outcome":"allowed","reason":"grace","service":"sshd","host":"web01","remote_host":"203.0.113.7"}`, uid),
			core.LoginAllowed, "grace", uid, map[string]string{"login_service": "sshd", "login_host": "web01", "remote_host": "203.0.113.7"}},
		{"refused past the deadline", fmt.Sprintf(`{"user":%q,"outcome":"refused","reason":"must_enrol","service":"login"}`, uid),
			core.LoginRefused, "must_enrol", uid, map[string]string{"login_service": "login"}},
		{"let in as a fallback group's member, sent late", fmt.Sprintf(`{"user":%q,"outcome":"allowed","reason":"fallback_group","occurred_at":%q,"id":"rec_1-a"}`, uid, late.Format(time.RFC3339)),
			core.LoginAllowed, "fallback_group", uid, map[string]string{"occurred_at": late.Format(time.RFC3339), "record_id": "rec_1-a"}},
		{"a name keyfleet does not know", `{"user":"mallory","outcome":"refused","reason":"unknown_user"}`, core.LoginRefused, "unknown_user", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head := f.st.AuditHead()
			status, body := f.do(lh, "POST", "/v1/login-decisions", tt.body)
			if status != http.StatusCreated || f.st.AuditHead().Seq != head.Seq+1 {
				t.Fatalf("%d %s; audit %d → %d", status, body, head.Seq, f.st.AuditHead().Seq)
			}
			ev := f.lastEvent()
			if ev.Action != tt.action || ev.Extra["reason"] != tt.reason || ev.Target.ID != tt.target || ev.Actor.ID != f.users[lh] || ev.Actor.TokenID == "" {
				t.Fatalf("recorded %+v", ev)
			}
			if tt.target == "" && ev.Target.Name != "mallory" {
				t.Fatalf("the unknown name is recorded as %+v", ev.Target)
			}
			for k, v := range tt.extra {
				if ev.Extra[k] != v {
					t.Errorf("extra %s is %q, want %q (%v)", k, ev.Extra[k], v, ev.Extra)
				}
			}
		})
	}
}

// TestOnlyALoginHostWritesLoginRecords: a person's own token — even
// about themselves — an application's service token and an
// administrator's cannot put sign-ins in the audit trail; only a login
// host's token (the login_host role) may, and the refusal says so.
func TestOnlyALoginHostWritesLoginRecords(t *testing.T) {
	f := newFixture(t)
	for _, role := range []string{usr, svc, admin, so} {
		for _, target := range []string{f.users[usr], "as-user", "someone-else"} {
			head := f.st.AuditHead()
			status, body := f.do(role, "POST", "/v1/login-decisions", fmt.Sprintf(`{"user":%q,"outcome":"allowed","reason":"grace"}`, target))
			if status != http.StatusForbidden || !strings.Contains(string(body), "login_host") || f.st.AuditHead() != head {
				t.Fatalf("a %s token recording a sign-in of %s: %d %s", role, target, status, body)
			}
		}
	}
}

// TestBadLoginDecisionsAreRefusedAndRecordNothing: each malformed record
// is a validation problem naming what is wrong, and the audit trail does
// not move.
func TestBadLoginDecisionsAreRefusedAndRecordNothing(t *testing.T) {
	f := newFixture(t)
	future, old := time.Now().Add(time.Hour).Format(time.RFC3339), time.Now().Add(-31*24*time.Hour).Format(time.RFC3339)
	tests := []struct{ name, body, problem, field string }{
		{"an outcome that is not allowed or refused", `{"user":"alice","outcome":"verified","reason":"grace"}`, "validation-failed", "outcome"},
		{"core's own action name as the outcome", `{"user":"alice","outcome":"login.allowed","reason":"grace"}`, "validation-failed", "outcome"},
		{"no user", `{"outcome":"refused","reason":"must_enrol"}`, "validation-failed", "user"},
		{"a user with a terminal escape", `{"user":"alice\u001b[2J","outcome":"refused","reason":"must_enrol"}`, "validation-failed", "user"},
		{"a reason that is a sentence", `{"user":"alice","outcome":"refused","reason":"Let them in, it's fine"}`, "validation-failed", "reason"},
		{"no reason", `{"user":"alice","outcome":"refused"}`, "validation-failed", "reason"},
		{"a host with a newline", `{"user":"alice","outcome":"refused","reason":"must_enrol","host":"web01\nfake=1"}`, "validation-failed", "host"},
		{"an overlong service", `{"user":"alice","outcome":"refused","reason":"must_enrol","service":"` + strings.Repeat("s", 65) + `"}`, "validation-failed", "service"},
		{"a decision from the future", `{"user":"alice","outcome":"allowed","reason":"grace","occurred_at":"` + future + `"}`, "validation-failed", "occurred_at"},
		{"a decision older than 30 days", `{"user":"alice","outcome":"allowed","reason":"grace","occurred_at":"` + old + `"}`, "validation-failed", "occurred_at"},
		{"an id with a slash", `{"user":"alice","outcome":"allowed","reason":"grace","id":"../x"}`, "validation-failed", "id"},
		{"an unknown field", `{"user":"alice","outcome":"allowed","reason":"grace","verified":true}`, "unknown-field", ""},
		{"not JSON", `user=alice`, "invalid-json", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head := f.st.AuditHead()
			status, body := f.do(lh, "POST", "/v1/login-decisions", tt.body)
			var p api.Problem
			json.Unmarshal(body, &p)
			if status != http.StatusBadRequest || p.Type != "/problems/"+tt.problem || p.Detail == "" || tt.field != "" && !strings.Contains(p.Detail+fmt.Sprint(p.Fields), tt.field) {
				t.Fatalf("%d %s", status, body)
			}
			if f.st.AuditHead() != head {
				t.Fatal("a refused record moved the audit trail")
			}
		})
	}
}
