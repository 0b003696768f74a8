package cli_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client/clienttest"
	"github.com/keyfleet/keyfleet/internal/cli"
)

// usersByID answers GET /v1/users/{user} for the users of users(n), and
// 403 for anyone else (a user reading their own records sees only
// themselves), as keyfleetd does.
func usersByID(n int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for _, u := range users(n) {
			if r.PathValue("user") == u.ID || r.PathValue("user") == u.Username {
				clienttest.JSON(200, u)(w, r)
				return
			}
		}
		clienttest.Problem(403, "forbidden", "you may read only your own user")(w, r)
	}
}

func TestListsNameTheirUsersNotTheirIDs(t *testing.T) {
	tests := []struct {
		name   string
		route  string
		answer http.HandlerFunc
		args   []string
	}{
		{"factors list", "GET /v1/factors", clienttest.Pages([]api.Factor{
			{ID: "fac_a", UserID: "usr_0", Kind: "fido2", State: api.FactorActive},
			{ID: "fac_b", UserID: "usr_1", Kind: "totp", State: api.FactorActive},
			{ID: "fac_c", UserID: "usr_gone", Kind: "totp", State: api.FactorRevoked}}), []string{"factors", "list"}},
		{"devices list", "GET /v1/devices", clienttest.Pages([]api.Device{
			{ID: "dev_a", UserID: "usr_0", Vendor: "Yubico", Serial: "1", State: api.DeviceActive},
			{ID: "dev_b", UserID: "usr_1", Vendor: "Yubico", Serial: "2", State: api.DeviceActive},
			{ID: "dev_c", UserID: "usr_gone", Vendor: "Yubico", Serial: "3", State: api.DeviceLost}}), []string{"devices", "list"}},
		{"enrolments list", "GET /v1/enrolments", clienttest.Pages([]api.Enrolment{
			{ID: "enr_a", UserID: "usr_0", Kind: "fido2", State: api.EnrolmentOpen},
			{ID: "enr_b", UserID: "usr_1", Kind: "totp", State: api.EnrolmentOpen},
			{ID: "enr_c", UserID: "usr_gone", Kind: "totp", State: api.EnrolmentOpen}}), []string{"enrolments", "list"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.srv.Handle(tt.route, tt.answer)
			e.srv.Handle("GET /v1/users/{user}", usersByID(2))
			r := e.run(tt.args...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
			if len(lines) != 4 {
				t.Fatalf("want a header and three rows:\n%s", r.stdout)
			}
			for i, want := range []string{"user0", "user1", "usr_gone"} {
				if !strings.Contains(lines[i+1], " "+want+" ") {
					t.Errorf("row %d does not name %s:\n%s", i+1, want, lines[i+1])
				}
			}
			if strings.Contains(r.stdout, "usr_0 ") || strings.Contains(r.stdout, "usr_1 ") {
				t.Errorf("the table shows user ids where it could name people:\n%s", r.stdout)
			}
			// -o json prints the API's records as they are, with no
			// lookups of names.
			before := len(e.srv.Requests())
			if r := e.run(append(tt.args, "-o", "json")...); r.code != 0 || !strings.Contains(r.stdout, `"user_id": "usr_0"`) {
				t.Fatalf("-o json: exit %d\n%s", r.code, r.stdout)
			}
			if n := len(e.srv.Requests()) - before; n != 1 {
				t.Errorf("-o json sent %d requests, want 1 (the list)", n)
			}
		})
	}
}

func TestUsersShowAndMFAStatusSayHowTheUserStands(t *testing.T) {
	until := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	deadline := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		status api.MFAStatus
		want   []string
	}{
		{"an exempt user reads as exempt, not compliant", api.MFAStatus{UserID: "usr_0", Status: "compliant", ExemptUntil: &until,
			Reasons: []string{"user0 is exempt from the policy until 2026-07-01: parental leave"}},
			[]string{"MFA status:", "exempt until 2026-07-01T00:00:00Z", "parental leave"}},
		{"a user in grace reads until when, and what to do", api.MFAStatus{UserID: "usr_0", Status: "grace", GraceUntil: &deadline,
			AllowedKinds: []string{"fido2"}, Reasons: []string{"too few factors"}, NextSteps: []string{"register a security key"}},
			[]string{"in grace until 2026-03-01T00:00:00Z", "Sign in with:", "fido2", "What they must do:", "- register a security key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.srv.Handle("GET /v1/users/{user}", usersByID(1))
			e.srv.Handle("GET /v1/users/{user}/mfa-status", clienttest.JSON(200, tt.status))
			for _, args := range [][]string{{"users", "show", "user0"}, {"users", "mfa-status", "user0"}} {
				r := e.run(args...)
				if r.code != 0 {
					t.Fatalf("%v: exit %d: %s", args, r.code, r.stderr)
				}
				for _, w := range tt.want {
					if !strings.Contains(r.stdout, w) {
						t.Errorf("%v: stdout lacks %q:\n%s", args, w, r.stdout)
					}
				}
			}
			if last := e.srv.Last(); last.Path != "/v1/users/user0/mfa-status" {
				t.Errorf("mfa-status asked %s", last.Path)
			}
		})
	}
	t.Run("a role that may not read MFA status still sees the user", func(t *testing.T) {
		e := newEnv(t)
		e.srv.Handle("GET /v1/users/{user}", usersByID(1))
		e.srv.Handle("GET /v1/users/{user}/mfa-status", clienttest.Problem(403, "forbidden", "enrollers may not read MFA status"))
		r := e.run("users", "show", "user0")
		if r.code != 0 || !strings.Contains(r.stdout, "user0") || !strings.Contains(r.stderr, "do not show MFA status") {
			t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
}

func TestListsPrintCSVAndOtherCommandsRefuseIt(t *testing.T) {
	e := newEnv(t)
	us := users(2)
	us[1].Groups = []string{"=HYPERLINK(\"http://x\")"}
	e.srv.Handle("GET /v1/users", clienttest.Pages(us))
	r := e.run("users", "list", "-o", "csv")
	want := "USERNAME,ID,KIND,STATUS,ROLES,GROUPS\nuser0,usr_0,person,active,user,eng\nuser1,usr_1,person,active,user,\"'=HYPERLINK(\"\"http://x\"\")\"\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("exit %d, stdout:\n%s\nwant:\n%s", r.code, r.stdout, want)
	}
	n := len(e.srv.Requests())
	r = e.run("users", "show", "user0", "-o", "csv")
	if r.code != cli.ExitUsage || !strings.Contains(r.stderr, "-o csv is for lists and reports") || len(e.srv.Requests()) != n {
		t.Fatalf("users show -o csv: exit %d, %d requests\n%s", r.code, len(e.srv.Requests())-n, r.stderr)
	}
}

func TestJSONOutputOnFailureIsOneJSONValueOnStdout(t *testing.T) {
	e := newEnv(t)
	e.srv.Handle("GET /v1/users/{user}", clienttest.Problem(404, "not-found", `user "nobody" not found`))
	r := e.run("users", "show", "nobody", "-o", "json")
	if r.code != cli.ExitNotFound || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var got struct {
		Error    string       `json:"error"`
		ExitCode int          `json:"exit_code"`
		Problem  *api.Problem `json:"problem"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, r.stdout)
	}
	if got.ExitCode != cli.ExitNotFound || got.Problem == nil || got.Problem.Status != 404 || !strings.Contains(got.Error, `user "nobody" not found`) {
		t.Fatalf("stdout: %+v", got)
	}
	// A failure before any request (a usage error) is JSON too.
	r = e.run("users", "show", "-o", "json")
	if r.code != cli.ExitUsage || !strings.Contains(r.stdout, `"exit_code": 2`) {
		t.Fatalf("usage error with -o json: exit %d\n%s", r.code, r.stdout)
	}
	// Without -o json, stdout stays empty.
	if r := e.run("users", "show", "nobody"); r.stdout != "" {
		t.Fatalf("a failure printed on stdout: %q", r.stdout)
	}
}

func TestAFailureGivesOnePieceOfAdviceNotTwo(t *testing.T) {
	tests := []struct {
		name          string
		route         string
		answer        http.HandlerFunc
		args          []string
		want, notWant string
	}{
		{"a daemon detail that says what to do is printed as it is", "POST /v1/enrolments",
			clienttest.Problem(400, "unsupported-kind", `unsupported factor kind: "totp"; this daemon supports fido2, piv`),
			[]string{"enrolments", "create", "--user", "alice", "--kind", "totp"},
			`keyfleet: unsupported factor kind: "totp"; this daemon supports fido2, piv` + "\n", "use a factor kind"},
		{"a validation problem with its own advice gets no generic hint", "POST /v1/users",
			clienttest.Problem(400, "validation-failed", "username: is empty; give the person's login name"),
			[]string{"users", "create", "x"}, "keyfleet: username: is empty; give the person's login name\n", "correct the input"},
		{"where the advice is a keyfleet command it replaces the daemon's", "POST /v1/tokens",
			clienttest.Problem(409, "no-usable-factor", "no usable factor: admin has no active security key (PIV or FIDO2) to prove this with; enrol one first (keyfleet-agent enroll)"),
			[]string{"tokens", "create", "mine"},
			"keyfleet: no usable factor: admin has no active security key (PIV or FIDO2) to prove this with; enrol a security key of your own first", "enrol one first"},
		{"a detail without advice gets the CLI's", "GET /v1/users/{user}", clienttest.Problem(404, "not-found", `user "bob" not found`),
			[]string{"users", "show", "bob"}, `keyfleet: user "bob" not found; check the id or name; 'keyfleet users list' shows them`, ";;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.srv.Handle(tt.route, tt.answer)
			e.srv.Handle("POST /v1/proofs", clienttest.Problem(409, "no-usable-factor",
				"no usable factor: admin has no active security key (PIV or FIDO2) to prove this with; enrol one first (keyfleet-agent enroll)"))
			r := e.run(tt.args...)
			if r.code == 0 || !strings.Contains(r.stderr, tt.want) || strings.Contains(r.stderr, tt.notWant) {
				t.Fatalf("exit %d, stderr:\n%s\nwant %q without %q", r.code, r.stderr, tt.want, tt.notWant)
			}
			if strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("more than one line:\n%s", r.stderr)
			}
		})
	}
}
