package cli_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client/clienttest"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/proof"
	"github.com/keyfleet/keyfleet/internal/cli"
)

// needsProof answers 403 proof-required to a request without a
// Keyfleet-Proof header, and ok to one with it.
func needsProof(ok http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(api.ProofHeader) == "" {
			clienttest.Problem(403, "proof-required", "token.create needs a fresh proof: none came with the request")(w, r)
			return
		}
		ok(w, r)
	}
}

// trail is "METHOD path" of each request, with "+proof" when it carried
// one.
func trail(e *env) []string {
	var out []string
	for _, r := range e.srv.Requests() {
		s := r.Method + " " + r.Path
		if r.Header.Get(api.ProofHeader) != "" {
			s += " +proof"
		}
		out = append(out, s)
	}
	return out
}

func TestAnActionIsSentAgainWithAProofOnlyWhenKeyfleetdAsksForOne(t *testing.T) {
	created := clienttest.JSON(201, api.CreatedToken{Token: api.Token{ID: "tok_1", Name: "laptop"}, Secret: "kf_secret"})
	tests := []struct {
		name   string
		answer http.HandlerFunc
		args   []string
		trail  []string
	}{
		{"your own token is proved with your factor", needsProof(created), []string{"tokens", "create", "laptop", "--ttl", "8h"},
			[]string{"POST /v1/tokens", "POST /v1/proofs", "POST /v1/tokens +proof"}},
		{"a service account's token needs no proof", created, []string{"tokens", "create", "ci", "--user", "ci-bot"},
			[]string{"POST /v1/tokens"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.srv.Handle("POST /v1/tokens", tt.answer)
			e.srv.Handle("POST /v1/proofs", codeChallenge)
			r := e.runIn("123456\n", tt.args...)
			if r.code != 0 || !strings.Contains(r.stdout, "kf_secret") {
				t.Fatalf("exit %d: %s %s", r.code, r.stdout, r.stderr)
			}
			if got := strings.Join(trail(e), ", "); got != strings.Join(tt.trail, ", ") {
				t.Fatalf("requests %s, want %s", got, strings.Join(tt.trail, ", "))
			}
			if len(tt.trail) == 1 {
				return
			}
			reqs := e.srv.Requests()
			var asked api.ProofRequest
			json.Unmarshal(reqs[1].Body, &asked)
			if asked.Action != "token.create" || string(asked.Request) != string(reqs[0].Body) {
				t.Fatalf("the proof was asked for %+v (request %s), not for the body sent %s", asked, asked.Request, reqs[0].Body)
			}
			p, err := core.DecodeProof(reqs[2].Header.Get(api.ProofHeader))
			if err != nil || p.ID != "vrf_1" || p.FactorID != "fac_totp" || string(p.Response) != `{"code":"123456"}` {
				t.Fatalf("the header carried %+v, %v", p, err)
			}
			if strings.Contains(r.stderr, "123456") {
				t.Fatal("the code was echoed")
			}
		})
	}
}

func TestDecisionsAreProvedBeforeTheyAreSent(t *testing.T) {
	decided := clienttest.JSON(200, api.Approval{ID: "apr_1", Action: api.ActionFactorRevoke, State: api.ApprovalApproved})
	tests := []struct {
		name   string
		proofs http.HandlerFunc
		trail  []string
	}{
		{"a person proves the decision with their factor", codeChallenge,
			[]string{"POST /v1/proofs", "POST /v1/approvals/apr_1/approve +proof"}},
		{"a break-glass session, which keyfleetd makes no challenge for, decides without one",
			clienttest.Problem(403, "forbidden", "a break-glass session needs no proof"),
			[]string{"POST /v1/proofs", "POST /v1/approvals/apr_1/approve"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.srv.Handle("POST /v1/proofs", tt.proofs)
			e.srv.Handle("POST /v1/approvals/{id}/approve", decided)
			r := e.runIn("123456\n", "approvals", "approve", "apr_1", "-m", "checked")
			if r.code != 0 || !strings.Contains(r.stdout, "approved") {
				t.Fatalf("exit %d: %s %s", r.code, r.stdout, r.stderr)
			}
			if got := strings.Join(trail(e), ", "); got != strings.Join(tt.trail, ", ") {
				t.Fatalf("requests %s, want %s", got, strings.Join(tt.trail, ", "))
			}
			var asked api.ProofRequest
			json.Unmarshal(e.srv.Requests()[0].Body, &asked)
			if asked.Action != "approval.approve" || asked.Subject != "apr_1" {
				t.Fatalf("proof asked for %+v", asked)
			}
			if !strings.Contains(string(e.srv.Last().Body), `"reason":"checked"`) {
				t.Fatalf("the decision's body %s lacks the reason", e.srv.Last().Body)
			}
		})
	}
}

// keyChallenge offers only a FIDO2 key, which keyfleet-agent answers.
var keyChallenge = clienttest.JSON(201, api.ProofChallenge{
	Verification: api.Verification{ID: "vrf_2", UserID: "usr_1", Factors: []api.VerificationFactor{
		{FactorID: "fac_key", Kind: "fido2", Prompt: json.RawMessage(`{"challenge":"AAAA","rpId":"keyfleet.test"}`)}}},
	Action: "approval.deny", Subject: "apr_1", Summary: "approval.deny apr_1: action=factor.revoke", Digest: "ab"})

func TestAKeyProofWithoutAWorkingAgentSendsNothing(t *testing.T) {
	tests := []struct {
		name, agent string
		code        int
		want        string
	}{
		{"an agent that is not there", "/nonexistent/keyfleet-agent", cli.ExitError, "--agent /nonexistent/keyfleet-agent is not an executable keyfleet-agent"},
		{"an agent that fails", "/bin/false", cli.ExitError, "keyfleet-agent could not prove approval.deny (exit status 1): its message is above; connect your enrolled security key"},
		{"a program that prints no proof", "/bin/echo", cli.ExitError, "/bin/echo prove printed no proof of this challenge"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.srv.Handle("POST /v1/proofs", keyChallenge)
			e.srv.Handle("POST /v1/approvals/{id}/deny", clienttest.JSON(200, api.Approval{ID: "apr_1"}))
			r := e.run("--agent", tt.agent, "approvals", "deny", "apr_1", "-m", "no ticket")
			if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("exit %d, want %d and %q: %s", r.code, tt.code, tt.want, r.stderr)
			}
			if got := trail(e); len(got) != 1 {
				t.Fatalf("requests %v: the decision went out without a proof", got)
			}
		})
	}
}

func TestTheCLIsProofActionsAreKeyfleetdsOwn(t *testing.T) {
	// The names keyfleet asks for proofs of (internal/cli/proof.go) must
	// be in daemon/proof's catalogue.
	for _, a := range []string{"approval.approve", "approval.deny", "policy.apply", "breakglass.rotate", "breakglass.share",
		"pass.issue", "token.create", "factor.add", "factor.remove", "recovery_codes.regenerate"} {
		if !proof.Known(a) {
			t.Errorf("%s is not an action keyfleetd proves", a)
		}
	}
}

func TestTwoPersonAnswersSayWhatWaits(t *testing.T) {
	waiting := api.Accepted{Approval: api.Approval{ID: "apr_9", Action: api.ActionUserAccess, TargetType: "user", TargetName: "sock",
		State: api.ApprovalPending, ExpiresAt: t0}, Message: "user.access needs a second approver"}
	sock := api.User{ID: "usr_9", Username: "sock", Roles: []string{"user"}}
	withUser := waiting
	withUser.User = &sock
	pass := api.IssuedPass{PassID: "tap_1", Code: "kfp-abcd-efgh", UserID: "usr_9", ExpiresAt: t0, Uses: 1}
	tests := []struct {
		name   string
		routes map[string]http.HandlerFunc
		args   []string
		want   []string
	}{
		{"a role grant prints the user and the request", map[string]http.HandlerFunc{"POST /v1/users": clienttest.JSON(202, withUser)},
			[]string{"users", "create", "sock", "--role", "security_officer"},
			[]string{"Username:", "sock", "Approval apr_9 requested: user.access on user sock", "keyfleet approvals approve apr_9 --reason"}},
		{"a grant in json is the accepted object with the user", map[string]http.HandlerFunc{"PATCH /v1/users/{user}": clienttest.JSON(202, withUser)},
			[]string{"users", "update", "sock", "--role", "admin", "-o", "json"},
			[]string{`"approval": {`, `"user": {`, `"username": "sock"`}},
		{"a staff account's pass waits and is not shown to the requester", map[string]http.HandlerFunc{
			"GET /v1/users/{user}":       clienttest.JSON(200, sock),
			"POST /v1/proofs":            codeChallenge,
			"POST /v1/users/{user}/pass": needsProof(clienttest.JSON(202, waiting))},
			[]string{"users", "pass", "sock"}, []string{"Approval apr_9 requested"}},
		{"the approver of a staff pass sees it once", map[string]http.HandlerFunc{
			"POST /v1/proofs": codeChallenge,
			"POST /v1/approvals/{id}/approve": clienttest.JSON(200, api.Approval{ID: "apr_9", Action: api.ActionRecoveryPass,
				State: api.ApprovalApproved, IssuedPass: &pass})},
			[]string{"approvals", "approve", "apr_9", "-m", "olga starts today"}, []string{"State:", "approved", "Temporary access pass", "kfp-abcd-efgh"}},
		{"an import names the grants that wait", map[string]http.HandlerFunc{"POST /v1/users/import": clienttest.JSON(200,
			api.ImportResult{Created: 1, Approvals: []string{"apr_9"}})},
			[]string{"users", "import", writeCSV(t, "username,roles\nsock,security_officer\n")}, []string{"1 change(s) wait for a second person", "apr_9"}},
		{"the privileged report is a table", map[string]http.HandlerFunc{"GET /v1/reports/privileged": clienttest.JSON(200,
			api.Page[api.PrivilegedHolder]{Items: []api.PrivilegedHolder{{Username: "sock", Kind: "person", Status: "active", Role: "security_officer",
				GrantedBy: &api.Actor{Name: "admin"}, ApprovedBy: &api.Actor{Name: "bob"}, GrantedAt: &t0, Tokens: 2, NoExpiry: 1}}})},
			[]string{"report", "privileged"}, []string{"USERNAME  KIND", "GRANTED BY", "sock", "security_officer", "admin", "bob"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			for route, h := range tt.routes {
				e.srv.Handle(route, h)
			}
			r := e.runIn("123456\n", tt.args...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s %s", r.code, r.stdout, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, r.stdout)
				}
			}
		})
	}
}

func TestADryRunImportNamesNoRequestToApprove(t *testing.T) {
	// keyfleetd rolls a dry run back, the requests it would open with it:
	// their ids name nothing, so the CLI says what would wait and no more.
	e := newEnv(t)
	e.srv.Handle("POST /v1/users/import", clienttest.JSON(200, api.ImportResult{Created: 1, DryRun: true, Approvals: []string{"apr_9"}}))
	r := e.run("users", "import", writeCSV(t, "username,roles\nsock,security_officer\n"), "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, "1 change(s) would wait for a second person") ||
		strings.Contains(r.stdout, "apr_9") || strings.Contains(r.stdout, "approvals approve") {
		t.Fatalf("exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestEndingABreakGlassSessionSaysHowToSignInAgain(t *testing.T) {
	// The session's token was the saved login; a person gets their own
	// back with their key, as nobody hands out person tokens.
	e := newEnv(t)
	e.srv.Handle("DELETE /v1/breakglass/session", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	r := e.run("breakglass", "end")
	if r.code != 0 || !strings.Contains(r.stderr, "break-glass session ended; sign in again with your key: keyfleet login --user NAME") {
		t.Fatalf("exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func writeCSV(t *testing.T, text string) string {
	path := filepath.Join(t.TempDir(), "users.csv")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestABreakGlassShareGoesOnlyToItsNewFile(t *testing.T) {
	e := newEnv(t)
	e.srv.Handle("POST /v1/proofs", codeChallenge)
	e.srv.Handle("POST /v1/breakglass/share", needsProof(clienttest.JSON(201, api.BreakGlassShare{SetID: "bgs_1", Threshold: 2, Share: "SHARE-SECRET-1"})))
	out := filepath.Join(t.TempDir(), "share.txt")
	r := e.runIn("123456\n", "breakglass", "share", "--out", out)
	if r.code != 0 || strings.Contains(r.stdout+r.stderr, "SHARE-SECRET-1") {
		t.Fatalf("exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	assertMode(t, out, 0o600)
	if b, _ := os.ReadFile(out); !strings.HasSuffix(string(b), "\nSHARE-SECRET-1\n") {
		t.Fatalf("share file:\n%s", b)
	}
	// A file that exists is never written over.
	r = e.runIn("123456\n", "breakglass", "share", "--out", out)
	if r.code != cli.ExitError || !strings.Contains(r.stderr, "could not be saved") || strings.Contains(r.stdout+r.stderr, "SHARE-SECRET-1") {
		t.Fatalf("exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
}
