package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
)

const (
	everyone = "version: 1\nrules:\n  - name: everyone\n    match: {everyone: true}\n    require:\n      enroll_within: 30d\n"
	stricter = everyone + "  - name: eng\n    match: {groups: [eng]}\n    require:\n      min_factors: 2\n"
)

func jsonDoc(doc string) string {
	b, _ := json.Marshal(api.PolicyDocument{Document: doc, Comment: "test"})
	return string(b)
}

// doYAML posts a YAML body as role, with a proof header when proof is set.
func (f *fixture) doYAML(role, path, body, proof string) (int, []byte) {
	f.t.Helper()
	req, _ := http.NewRequest("POST", f.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+f.tokens[role])
	if proof != "" {
		req.Header.Set(api.ProofHeader, proof)
	}
	req.Header.Set("Content-Type", "application/yaml")
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestPolicyRoutesApplyVersionsAndNeedASecondApproverToWeaken(t *testing.T) {
	f := newFixture(t)
	steps := []struct {
		name, role, method, path, body string
		status                         int
		want                           string
		proved                         bool // with a fresh proof of policy.apply
	}{
		{"no policy reads as version 0", help, "GET", "/v1/policy", "", 200, `"version":0`, false},
		{"a dry run lists who changes", admin, "POST", "/v1/policy/dry-run", jsonDoc(everyone), 200, `"transitions":{"compliant->grace":4}`, false},
		{"applying without a proof of a key is refused", admin, "YAML", "/v1/policy?comment=first", everyone, 403, "/problems/proof-required", false},
		{"applying YAML makes version 1", admin, "YAML", "/v1/policy?comment=first", everyone, 201, `"version":1`, true},
		{"a stricter document applies at once", so, "POST", "/v1/policy", jsonDoc(stricter), 201, `"version":2`, true},
		{"the same document again is refused", so, "POST", "/v1/policy", jsonDoc(stricter), 409, "/problems/already-exists", false},
		{"history lists both", aud, "GET", "/v1/policy/versions", "", 200, `"version":2`, false},
		{"one version carries its document", aud, "GET", "/v1/policy/versions/1", "", 200, `"document":"version: 1`, false},
		{"an unknown version is not found", aud, "GET", "/v1/policy/versions/7", "", 404, "/problems/not-found", false},
		{"a bad version number is refused", aud, "GET", "/v1/policy/versions/x", "", 400, "/problems/bad-request", false},
		{"the diff says stricter", help, "GET", "/v1/policy/diff?from=1&to=2", "", 200, `"effect":"stricter"`, false},
		{"a rollback that weakens waits for approval", admin, "POST", "/v1/policy/rollback", `{"version":1}`, 202, `"action":"policy.apply"`, true},
		{"the policy is still version 2", help, "GET", "/v1/policy", "", 200, `"version":2`, false},
		{"the compliance report counts everyone", aud, "GET", "/v1/reports/compliance?near_days=40", "", 200, `"policy_version":2`, false},
		{"an exemption waits for approval", help, "POST", "/v1/users/as-user/exemptions",
			fmt.Sprintf(`{"until":%q,"reason":"leave"}`, time.Now().Add(48*time.Hour).UTC().Format(time.RFC3339)), 202, `"action":"user.exempt"`, false},
		{"an exemption in the past is refused", help, "POST", "/v1/users/as-user/exemptions", `{"until":"2001-01-01T00:00:00Z","reason":"x"}`, 400, "/problems/validation-failed", false},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			var status int
			var body []byte
			var proof string
			if s.proved {
				req := json.RawMessage(s.body)
				if s.method == "YAML" {
					req, _ = json.Marshal(api.PolicyDocument{Document: s.body})
				}
				proof = f.proof(s.role, "policy.apply", "", req)
			}
			switch {
			case s.method == "YAML":
				status, body = f.doYAML(s.role, s.path, s.body, proof)
			case proof != "":
				status, body = f.doProved(s.role, s.method, s.path, s.body, proof)
			default:
				status, body = f.do(s.role, s.method, s.path, s.body)
			}
			if status != s.status || !bytes.Contains(body, []byte(s.want)) {
				t.Fatalf("%d %s, want %d with %s", status, body, s.status, s.want)
			}
		})
	}
	var pending api.Page[api.Approval]
	_, b := f.do(admin, "GET", "/v1/approvals?state=pending", "")
	json.Unmarshal(b, &pending)
	for _, a := range pending.Items {
		if a.Action != api.ActionPolicyApply {
			continue
		}
		if status, body := f.do(admin, "POST", "/v1/approvals/"+a.ID+"/approve", `{"reason":"mine"}`); status != 403 {
			t.Fatalf("the requester approved the rollback: %d %s", status, body)
		}
		if status, body := f.doProved(so, "POST", "/v1/approvals/"+a.ID+"/approve", `{"reason":"checked the diff"}`, f.proof(so, "approval.approve", a.ID, nil)); status != 200 {
			t.Fatalf("approving the rollback: %d %s", status, body)
		}
	}
	if _, body := f.do(help, "GET", "/v1/policy", ""); !bytes.Contains(body, []byte(`"version":3`)) || !bytes.Contains(body, []byte(`"rollback_of":1`)) {
		t.Fatalf("after approval: %s", body)
	}
}

func TestABadPolicyIsAProblemWithLineNumbersAndChangesNothing(t *testing.T) {
	f := newFixture(t)
	head := f.st.AuditHead()
	bad := "version: 1\nrules:\n  - name: everyone\n    match: {everyone: true}\n    require:\n      min_factors: 0\n      bogus: 1\n"
	for _, send := range []func() (int, []byte){
		func() (int, []byte) { return f.doYAML(admin, "/v1/policy", bad, "") },
		func() (int, []byte) { return f.do(admin, "POST", "/v1/policy/dry-run", jsonDoc(bad)) },
		func() (int, []byte) { return f.do(admin, "POST", "/v1/policy", jsonDoc("")) },
	} {
		status, body := send()
		var p api.Problem
		if err := json.Unmarshal(body, &p); err != nil || status != 400 || p.Type != "/problems/validation-failed" || len(p.Fields) == 0 {
			t.Fatalf("%d %s", status, body)
		}
		if bad := p.Fields["rules[0].require.min_factors"]; p.Fields["document"] == "" && !strings.HasPrefix(bad, "line 6: ") {
			t.Fatalf("fields %v: want the field with its line", p.Fields)
		}
	}
	if f.st.AuditHead() != head {
		t.Fatal("a refused document changed the store")
	}
}

func TestRemovingTheLastFactorIsAPolicyViolation(t *testing.T) {
	f := newFixture(t)
	_, fid, _ := f.victim()
	status, body := f.do(help, "POST", "/v1/factors/"+fid+"/revoke", `{"reason":"lost"}`)
	var p api.Problem
	json.Unmarshal(body, &p)
	if status != 422 || p.Type != "/problems/policy-violation" || p.Fields["last_factor"] == "" {
		t.Fatalf("%d %s", status, body)
	}
	if status, body := f.do(help, "POST", "/v1/factors/"+fid+"/revoke", `{"reason":"lost","replacement_planned":true}`); status != 202 ||
		!bytes.Contains(body, []byte(`"replacement_planned":"true"`)) {
		t.Fatalf("with a planned replacement: %d %s", status, body)
	}
}
