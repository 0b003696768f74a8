package cli_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client/clienttest"
	"github.com/keyfleet/keyfleet/internal/cli"
)

var t0 = time.Date(2025, 3, 1, 9, 30, 0, 0, time.UTC)

func users(n int) []api.User {
	var us []api.User
	for i := range n {
		us = append(us, api.User{ID: fmt.Sprintf("usr_%d", i), Username: fmt.Sprintf("user%d", i),
			Kind: api.KindPerson, Status: api.UserActive, Roles: []string{"user"}, Groups: []string{"eng"}})
	}
	return us
}

var pending = api.Accepted{Approval: api.Approval{ID: "apr_7", Action: api.ActionFactorRevoke,
	TargetType: "factor", TargetID: "fac_1", State: api.ApprovalPending, ExpiresAt: t0}}

func TestCommandsPrintWhatTheDaemonAnswers(t *testing.T) {
	tests := []struct {
		name   string
		route  string
		answer http.HandlerFunc
		args   []string
		want   []string // substrings of stdout
		query  map[string]string
		body   string // substring of the request body
	}{
		{name: "users list prints a table across pages", route: "GET /v1/users", answer: clienttest.Pages(users(3)),
			args: []string{"users", "list", "--group", "eng"},
			want: []string{"USERNAME  ID     KIND    STATUS", "user0", "user2"}, query: map[string]string{"group": "eng"}},
		{name: "users list -o json prints an array", route: "GET /v1/users", answer: clienttest.Pages(users(1)),
			args: []string{"users", "list", "-o", "json"}, want: []string{"[\n  {\n    \"id\": \"usr_0\""}},
		{name: "an empty list in json is an empty array", route: "GET /v1/users", answer: clienttest.Pages([]api.User{}),
			args: []string{"users", "list", "-o", "json"}, want: []string{"[]"}},
		{name: "users create sends every flag", route: "POST /v1/users", answer: clienttest.JSON(201, users(1)[0]),
			args: []string{"users", "create", "user0", "--display-name", "U Zero", "--group", "eng", "--group", "ops", "--role", "admin", "--kind", "person"},
			want: []string{"Username:", "user0"}, body: `"groups":["eng","ops"],"roles":["admin"]`},
		{name: "users update sends only the changed fields", route: "PATCH /v1/users/{user}", answer: clienttest.JSON(200, users(1)[0]),
			args: []string{"users", "update", "user0", "--email", "u@example.com"},
			want: []string{"user0"}, body: `{"email":"u@example.com"}`},
		{name: "factors revoke prints the approval and the command to approve it",
			route: "POST /v1/factors/{id}/revoke", answer: clienttest.JSON(202, pending),
			args: []string{"factors", "revoke", "fac_1", "--reason", "stolen"},
			want: []string{"Approval apr_7 requested: factor.revoke on factor fac_1", "keyfleet approvals approve apr_7"},
			body: `"reason":"stolen"}`},
		{name: "factors revoke --replacement-planned lets the last factor go",
			route: "POST /v1/factors/{id}/revoke", answer: clienttest.JSON(202, pending),
			args: []string{"factors", "revoke", "fac_1", "--reason", "stolen", "--replacement-planned"},
			want: []string{"apr_7"}, body: `{"reason":"stolen","replacement_planned":true}`},
		{name: "factors delete --replacement-planned says so too",
			route: "DELETE /v1/factors/{id}", answer: clienttest.JSON(202, pending),
			args: []string{"factors", "delete", "fac_1", "--reason", "by mistake", "--replacement-planned"},
			want: []string{"apr_7"}, body: `"replacement_planned":true`},
		{name: "users reset-mfa in json prints the accepted object", route: "POST /v1/users/{user}/reset-mfa",
			answer: clienttest.JSON(202, pending), args: []string{"users", "reset-mfa", "alice", "-o", "json"},
			want: []string{`"approval": {`, `"id": "apr_7"`}},
		{name: "approvals list asks for pending ones by default", route: "GET /v1/approvals",
			answer: clienttest.Pages([]api.Approval{pending.Approval}), args: []string{"approvals", "list"},
			want: []string{"apr_7", "factor fac_1"}, query: map[string]string{"state": "pending"}},
		{name: "devices lost names the revoked factors", route: "POST /v1/devices/{id}/lost",
			answer: clienttest.JSON(200, api.Device{ID: "dev_1", Vendor: "Yubico", Model: "YubiKey 5 NFC", Serial: "123",
				State: api.DeviceLost, FactorIDs: []string{"fac_1", "fac_2"}}),
			args: []string{"devices", "lost", "dev_1"}, want: []string{"is now lost; factors revoked: fac_1,fac_2"}},
		{name: "factors rename sends the label", route: "PATCH /v1/factors/{id}",
			answer: clienttest.JSON(200, api.Factor{ID: "fac_1", Label: "desk key", State: api.FactorActive}),
			args:   []string{"factors", "rename", "fac_1", "desk key"}, want: []string{"desk key"}, body: `{"label":"desk key"}`},
		{name: "audit verify reports an intact chain from the newest checkpoint", route: "GET /v1/audit/verify",
			answer: clienttest.JSON(200, api.AuditVerification{OK: true, FromSeq: 7, Checked: 2, HeadSeq: 9, HeadHash: "ab12",
				Checkpoint: &api.CheckpointCheck{Seq: 7, OK: true, Checked: 2}}),
			args: []string{"audit", "verify"}, want: []string{"Audit chain intact from the newest signed checkpoint: 2 events checked after seq 7; head seq 9, hash ab12.",
				"passes through the newest signed checkpoint: seq 7", "What comes up to it (7 events) is sealed by its signature; keyfleet audit verify --full checks each event too."}},
		{name: "audit verify --full asks for every record", route: "GET /v1/audit/verify",
			answer: clienttest.JSON(200, api.AuditVerification{OK: true, Full: true, Checked: 9, HeadSeq: 9, HeadHash: "ab12"}),
			args:   []string{"audit", "verify", "--full"}, want: []string{"Audit chain intact: 9 events checked from the first; head seq 9, hash ab12."},
			query: map[string]string{"full": "true"}},
		{name: "whoami shows the user and roles", route: "GET /v1/me",
			answer: clienttest.JSON(200, api.Me{User: users(1)[0], Roles: []string{"admin", "auditor"}, Auth: "token"}),
			args:   []string{"whoami"}, want: []string{"user0 (usr_0)", "admin,auditor"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.srv.Handle(tt.route, tt.answer)
			r := e.run(tt.args...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, r.stdout)
				}
			}
			last := e.srv.Last()
			for k, v := range tt.query {
				if got := last.Query.Get(k); got != v {
					t.Errorf("query %s = %q, want %q", k, got, v)
				}
			}
			if !strings.Contains(string(last.Body), tt.body) {
				t.Errorf("request body %s lacks %s", last.Body, tt.body)
			}
		})
	}
}

func TestListsStopAtTheLimitAndSayHowToContinue(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		count  int
		note   string
		cursor string
	}{
		{"the limit cuts a long list and names the cursor", []string{"--limit", "3"}, 3, "add --cursor 3", ""},
		{"--all follows every cursor", []string{"--all"}, 5, "", ""},
		{"--cursor starts where the last list stopped", []string{"--cursor", "3"}, 2, "", "3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.srv.Handle("GET /v1/users", clienttest.Pages(users(5)))
			r := e.run(append([]string{"users", "list", "-o", "json"}, tt.args...)...)
			var got []api.User
			if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got) != tt.count {
				t.Fatalf("got %d users (%v):\n%s", len(got), err, r.stdout)
			}
			if tt.note != "" && !strings.Contains(r.stderr, tt.note) || tt.note == "" && r.stderr != "" {
				t.Errorf("stderr = %q, want %q", r.stderr, tt.note)
			}
			if tt.cursor != "" && e.srv.Requests()[0].Query.Get("cursor") != tt.cursor {
				t.Errorf("first query = %v", e.srv.Requests()[0].Query)
			}
		})
	}
}

func TestTokensCreateShowsTheSecretOnce(t *testing.T) {
	created := api.CreatedToken{Token: api.Token{ID: "tok_9", Name: "ci"}, Secret: "kfs_SECRET"}
	t.Run("without --out the secret goes to stdout and a warning to stderr", func(t *testing.T) {
		e := newEnv(t)
		e.srv.Handle("POST /v1/tokens", clienttest.JSON(201, created))
		r := e.run("tokens", "create", "ci", "--role", "service", "--ttl", "720h")
		if r.code != 0 || r.stdout != "kfs_SECRET\n" || !strings.Contains(r.stderr, "only time") {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		if b := string(e.srv.Last().Body); !strings.Contains(b, `"name":"ci","roles":["service"],"ttl":"720h"`) {
			t.Errorf("body = %s", b)
		}
	})
	t.Run("with --out the secret goes only to a 0600 file", func(t *testing.T) {
		e := newEnv(t)
		e.srv.Handle("POST /v1/tokens", clienttest.JSON(201, created))
		out := filepath.Join(t.TempDir(), "ci.token")
		r := e.run("tokens", "create", "ci", "--out", out)
		if r.code != 0 || strings.Contains(r.stdout+r.stderr, "kfs_SECRET") {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		b, err := os.ReadFile(out)
		st, _ := os.Stat(out)
		if err != nil || string(b) != "kfs_SECRET\n" || st.Mode().Perm() != 0o600 {
			t.Fatalf("file %q (%v), mode %v", b, err, st.Mode())
		}
		if r := e.run("tokens", "create", "ci", "--out", out); r.code != cli.ExitError || !strings.Contains(r.stderr, "already exists") {
			t.Fatalf("second create over the same file: exit %d, %s", r.code, r.stderr)
		}
	})
}

func TestEveryCommandHasHelpWithExamples(t *testing.T) {
	e := newEnv(t)
	var walk func(path []string)
	seen := 0
	walk = func(path []string) {
		r := e.run(append(path, "--help")...)
		if r.code != 0 || !strings.Contains(r.stdout, "Examples:") {
			t.Errorf("keyfleet %s --help: exit %d, no Examples section", strings.Join(path, " "), r.code)
		}
		seen++
		for _, sub := range subcommands(r.stdout) {
			walk(append(append([]string{}, path...), sub))
		}
	}
	walk(nil)
	if seen < 40 {
		t.Fatalf("only %d commands found", seen)
	}
}

// subcommands reads the "Available Commands:" section of a help text.
func subcommands(help string) []string {
	_, rest, ok := strings.Cut(help, "Available Commands:\n")
	if !ok {
		return nil
	}
	var names []string
	for _, line := range strings.Split(rest, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			break
		}
		if f[0] != "help" {
			names = append(names, f[0])
		}
	}
	return names
}

func TestEnrolmentsCreatePrintsTheCodeAndWhatTheUserDoesWithIt(t *testing.T) {
	en := api.Enrolment{ID: "enr_1", UserID: "usr_1", Kind: "piv", State: api.EnrolmentOpen, Challenge: []byte("0123456789abcdef0123456789abcdef"), ExpiresAt: t0}
	en.Code = api.EnrolmentCode(en.ID, en.Challenge)
	tests := []struct {
		name       string
		args       []string
		wantStdout string
	}{
		{"as text, a Code line", []string{"enrolments", "create", "--user", "alice", "--kind", "piv"}, "Code:"},
		{"as json, a code member", []string{"enrolments", "create", "--user", "alice", "--kind", "piv", "-o", "json"}, `"code": "` + en.Code + `"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.srv.Handle("POST /v1/enrolments", clienttest.JSON(201, en))
			r := e.run(tt.args...)
			if r.code != 0 || !strings.Contains(r.stdout, tt.wantStdout) || !strings.Contains(r.stdout, en.Code) {
				t.Fatalf("exit %d: %s %s", r.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, "keyfleet-agent enroll --code CODE") || strings.Contains(r.stderr, en.Code) {
				t.Fatalf("hint %q", r.stderr)
			}
		})
	}
}
