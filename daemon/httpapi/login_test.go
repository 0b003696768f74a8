package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
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
	if status, body := f.do(api.RoleService, "POST", "/v1/users/newbie/first-login-pass", ""); status != http.StatusForbidden || !strings.Contains(string(body), "first_login.enabled") {
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
	status, body := post(api.RoleService, "newbie")
	var pass api.FirstLoginPass
	json.Unmarshal(body, &pass)
	if status != http.StatusCreated || !strings.HasPrefix(pass.Code, "kfp-") || pass.WelcomeURL != "https://kf.example/welcome" {
		t.Fatalf("a service asking for newbie: %d %s", status, body)
	}
	if status, _ := post(api.RoleUser, "newbie"); status != http.StatusForbidden {
		t.Fatalf("a user token asking for someone's first-login pass: %d", status)
	}
	if status, body := post(api.RoleService, "as-helpdesk"); status != http.StatusConflict {
		t.Fatalf("a first-login pass for staff: %d %s", status, body)
	}
}
