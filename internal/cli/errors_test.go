package cli_test

import (
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client/clienttest"
	"github.com/keyfleet/keyfleet/internal/cli"
)

func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "https://" + l.Addr().String()
}

func TestFailuresExitWithTheDocumentedCode(t *testing.T) {
	problem := func(status int, slug string) http.HandlerFunc {
		return clienttest.Problem(status, slug, "daemon says "+slug)
	}
	tests := []struct {
		name   string
		route  string
		answer http.HandlerFunc
		vars   map[string]string
		args   []string
		code   int
		want   string
	}{
		{name: "an unknown flag is a usage error", args: []string{"users", "list", "--colour"},
			code: cli.ExitUsage, want: "unknown flag: --colour; run 'keyfleet users list --help'"},
		{name: "a missing argument is a usage error", args: []string{"factors", "rename", "fac_1"},
			code: cli.ExitUsage, want: "missing LABEL"},
		{name: "an unknown command is a usage error with a suggestion", args: []string{"userz"},
			code: cli.ExitUsage, want: `did you mean "users"?`},
		{name: "an unknown output format is a usage error", args: []string{"users", "list", "-o", "yaml"},
			code: cli.ExitUsage, want: `unknown output format "yaml"`},
		{name: "a bad kind is refused before any request", args: []string{"users", "create", "x", "--kind", "robot"},
			code: cli.ExitUsage, want: "--kind must be person or service"},
		{name: "an update without changes is a usage error", args: []string{"users", "update", "alice"},
			code: cli.ExitUsage, want: "nothing to update"},
		{name: "a bad ttl is a usage error", args: []string{"tokens", "create", "ci", "--ttl", "forever"},
			code: cli.ExitUsage, want: `--ttl "forever"`},
		{name: "not being logged in is exit 3", vars: map[string]string{cli.EnvServer: "", cli.EnvToken: ""},
			args: []string{"whoami"}, code: cli.ExitAuth, want: "not logged in; sign in with your key: keyfleet login"},
		{name: "a refused token is exit 3", vars: map[string]string{cli.EnvToken: "wrong"},
			args: []string{"whoami"}, code: cli.ExitAuth, want: "sign in again with your key"},
		{name: "an expired token is exit 3", route: "GET /v1/me", answer: problem(401, "token-expired"),
			args: []string{"whoami"}, code: cli.ExitAuth, want: "keyfleet login --user NAME"},
		{name: "a missing role is exit 3", route: "GET /v1/users", answer: problem(403, "forbidden"),
			args: []string{"users", "list"}, code: cli.ExitAuth, want: "your roles do not allow this"},
		{name: "an unknown user is exit 4", route: "GET /v1/users/{user}", answer: problem(404, "not-found"),
			args: []string{"users", "show", "bob"}, code: cli.ExitNotFound, want: "'keyfleet users list' shows them"},
		{name: "an unknown factor points at the factor list", route: "POST /v1/factors/{id}/suspend", answer: problem(404, "not-found"),
			args: []string{"factors", "suspend", "fac_x"}, code: cli.ExitNotFound, want: "'keyfleet factors list'"},
		{name: "an existing username is exit 5", route: "POST /v1/users", answer: problem(409, "already-exists"),
			args: []string{"users", "create", "alice"}, code: cli.ExitConflict, want: "choose another name"},
		{name: "an illegal transition is exit 5", route: "POST /v1/factors/{id}/resume", answer: problem(409, "illegal-transition"),
			args: []string{"factors", "resume", "fac_1"}, code: cli.ExitConflict, want: "check its current state"},
		{name: "approving one's own request is exit 5", route: "POST /v1/approvals/{id}/approve", answer: problem(409, "self-approval"),
			args: []string{"approvals", "approve", "apr_1", "-m", "ok"}, code: cli.ExitConflict, want: "a different person must approve"},
		{name: "an approver who is not independent is exit 5", route: "POST /v1/approvals/{id}/approve", answer: problem(403, "not-independent"),
			args: []string{"approvals", "approve", "apr_1", "-m", "ok"}, code: cli.ExitConflict, want: "a person independent of the requester"},
		{name: "a refused proof is exit 3", route: "POST /v1/approvals/{id}/deny", answer: problem(403, "proof-required"),
			args: []string{"approvals", "deny", "apr_1", "-m", "no"}, code: cli.ExitAuth, want: "connect your own enrolled security key"},
		{name: "no key to prove with is exit 3", route: "POST /v1/proofs", answer: problem(409, "no-usable-factor"),
			args: []string{"breakglass", "share"}, code: cli.ExitAuth, want: "enrol a security key of your own first"},
		{name: "a double approval is exit 5", route: "POST /v1/approvals/{id}/approve", answer: problem(409, "approval-closed"),
			args: []string{"approvals", "approve", "apr_1", "--reason", "ok"}, code: cli.ExitConflict, want: "already decided"},
		{name: "a closed enrolment is exit 5", route: "DELETE /v1/enrolments/{id}", answer: problem(409, "enrolment-closed"),
			args: []string{"enrolments", "cancel", "enr_1"}, code: cli.ExitConflict, want: "create a new one"},
		{name: "a validation failure names the fields", route: "POST /v1/users", answer: clienttest.JSON(422, api.Problem{
			Type: "/problems/validation-failed", Status: 422, Detail: "invalid user", Fields: map[string]string{"username": "bad"}}),
			args: []string{"users", "create", "B!"}, code: cli.ExitError, want: "invalid user (username: bad); correct the input"},
		{name: "an internal error names the request id", route: "GET /v1/me", answer: problem(500, "internal"),
			args: []string{"whoami"}, code: cli.ExitError, want: "request id req_test"},
		{name: "an unreachable daemon is exit 6", vars: map[string]string{cli.EnvServer: closedAddr(t)},
			args: []string{"users", "list"}, code: cli.ExitUnreachable, want: "connection refused; is keyfleetd running on this machine? start it with 'keyfleetd serve' (in a source checkout: make run)"},
		{name: "an untrusted certificate is exit 6", vars: map[string]string{cli.EnvCA: ""},
			args: []string{"whoami"}, code: cli.ExitUnreachable, want: "pass --ca with the certificate path"},
		{name: "a broken audit chain is exit 7", route: "GET /v1/audit/verify", answer: clienttest.JSON(200, api.AuditVerification{
			OK: false, Checked: 41, BrokenAt: 42, Problem: "prev_hash does not match"}),
			args: []string{"audit", "verify"}, code: cli.ExitAuditBroken, want: "audit chain broken at seq 42: prev_hash does not match"},
		{name: "a failed approved action is exit 1", route: "POST /v1/approvals/{id}/approve", answer: clienttest.JSON(200, api.Approval{
			ID: "apr_1", Action: api.ActionFactorRevoke, State: api.ApprovalFailed, Error: "factor already revoked"}),
			args: []string{"approvals", "approve", "apr_1", "--reason", "ok"}, code: cli.ExitError, want: "failed: factor already revoked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.route != "" {
				e.srv.Handle(tt.route, tt.answer)
			}
			// Decisions are proved first, with an authenticator app's
			// code here; a share is asked for without a proof first.
			if tt.route != "POST /v1/proofs" {
				e.srv.Handle("POST /v1/proofs", codeChallenge)
			}
			e.srv.Handle("POST /v1/breakglass/share", problem(403, "proof-required"))
			for k, v := range tt.vars {
				e.vars[k] = v
			}
			r := e.runIn("123456\n", tt.args...)
			if r.code != tt.code {
				t.Errorf("exit code = %d, want %d", r.code, tt.code)
			}
			// Prompts may come first; the error is the last line.
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "keyfleet: ") || !strings.Contains(last, "; ") || !strings.Contains(last, tt.want) {
				t.Errorf("stderr = %q, want a last line \"keyfleet: …; …\" containing %q", r.stderr, tt.want)
			}
			if strings.Contains(r.stderr+r.stdout, clienttest.Token) {
				t.Errorf("the token leaked into the output")
			}
		})
	}
}

func TestUsageErrorsSendNoRequest(t *testing.T) {
	e := newEnv(t)
	for _, args := range [][]string{
		{"users", "create", "x", "--kind", "robot"},
		{"enrolments", "create", "--user", "alice"},
		{"audit", "tail", "--interval", "0s"},
		{"users", "list", "--limit", "0"},
	} {
		if r := e.run(args...); r.code != cli.ExitUsage {
			t.Errorf("%v: exit %d (%s)", args, r.code, r.stderr)
		}
	}
	if n := len(e.srv.Requests()); n != 0 {
		t.Fatalf("%d requests sent", n)
	}
}
