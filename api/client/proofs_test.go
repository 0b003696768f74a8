package client_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	"github.com/keyfleet/keyfleet/api/client/clienttest"
)

func TestAProofGoesOnlyWithTheCopyMadeForIt(t *testing.T) {
	s := clienttest.NewServer(t)
	s.Handle("POST /v1/breakglass/share", clienttest.JSON(201, api.BreakGlassShare{SetID: "bgs_1", Share: "x"}))
	c := newClient(t, s)
	pr := api.Proof{ID: "vrf_1", FactorID: "fac_1", Response: json.RawMessage(`{"signature":"AA=="}`)}
	if _, err := c.WithProof(pr).CollectBreakGlassShare(context.Background()); err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(s.Last().Header.Get(api.ProofHeader))
	var got api.Proof
	if err != nil || json.Unmarshal(raw, &got) != nil || got.ID != "vrf_1" || got.FactorID != "fac_1" || string(got.Response) != `{"signature":"AA=="}` {
		t.Fatalf("header %q decodes to %+v (%v)", s.Last().Header.Get(api.ProofHeader), got, err)
	}
	if _, err := c.CollectBreakGlassShare(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h := s.Last().Header.Get(api.ProofHeader); h != "" {
		t.Fatalf("the original client sent a proof: %q", h)
	}
}

func TestAnswersThatMayWaitForASecondPerson(t *testing.T) {
	pending := api.Accepted{Approval: api.Approval{ID: "apr_1", State: api.ApprovalPending}}
	asStands := pending
	asStands.User = &api.User{ID: "usr_1", Username: "sock", Roles: []string{"user"}}
	tests := []struct {
		name     string
		route    string
		answer   http.HandlerFunc
		call     func(c *client.Client) (string, *api.Accepted, error)
		wantName string
		waits    bool
	}{
		{"a user created at once", "POST /v1/users", clienttest.JSON(201, api.User{ID: "usr_1", Username: "sock"}),
			func(c *client.Client) (string, *api.Accepted, error) {
				r, err := c.CreateUser(context.Background(), api.CreateUser{Username: "sock"})
				return r.Username, r.Accepted, err
			}, "sock", false},
		{"a role grant that waits, with the user as it stands", "POST /v1/users", clienttest.JSON(202, asStands),
			func(c *client.Client) (string, *api.Accepted, error) {
				r, err := c.CreateUser(context.Background(), api.CreateUser{Username: "sock", Roles: []string{"admin"}})
				return r.Username, r.Accepted, err
			}, "sock", true},
		{"a weakening change that waits", "PATCH /v1/users/{user}", clienttest.JSON(202, asStands),
			func(c *client.Client) (string, *api.Accepted, error) {
				groups := []string{}
				r, err := c.UpdateUser(context.Background(), "sock", api.UpdateUser{Groups: &groups})
				return r.Username, r.Accepted, err
			}, "sock", true},
		{"a plain user's pass at once", "POST /v1/recovery/{id}/pass", clienttest.JSON(201, api.IssuedPass{Code: "kfp-1"}),
			func(c *client.Client) (string, *api.Accepted, error) {
				r, err := c.IssuePass(context.Background(), "rcv_1", api.IssuePass{})
				return r.Code, r.Accepted, err
			}, "kfp-1", false},
		{"a staff account's pass waits", "POST /v1/users/{user}/pass", clienttest.JSON(202, pending),
			func(c *client.Client) (string, *api.Accepted, error) {
				r, err := c.IssueOnboardingPass(context.Background(), "sock", api.IssuePass{})
				return r.Code, r.Accepted, err
			}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := clienttest.NewServer(t)
			s.Handle(tt.route, tt.answer)
			name, acc, err := tt.call(newClient(t, s))
			if err != nil || name != tt.wantName || (acc != nil) != tt.waits || (acc != nil && acc.Approval.ID != "apr_1") {
				t.Fatalf("got %q, %+v, %v", name, acc, err)
			}
		})
	}
}

func TestA202WithoutARequestIsAnError(t *testing.T) {
	s := clienttest.NewServer(t)
	s.Handle("POST /v1/users", clienttest.JSON(202, map[string]string{"message": "later"}))
	if _, err := newClient(t, s).CreateUser(context.Background(), api.CreateUser{Username: "x"}); err == nil {
		t.Fatal("a 202 without an approval was taken as a user")
	}
}

func TestLoginNeedsNoTokenAndSendsTheProof(t *testing.T) {
	s := clienttest.NewServer(t)
	c, err := client.New(client.Config{Server: s.URL, CAPEM: s.CAPEM})
	if err != nil {
		t.Fatal(err)
	}
	// The fake answers every tokenless /v1/ request 401; what matters
	// here is what the client sent.
	_, _ = c.Login(context.Background(), api.Login{Username: "bob"}, api.Proof{ID: "vrf_1", FactorID: "fac_1"})
	r := s.Last()
	if r.Header.Get("Authorization") != "" || r.Header.Get(api.ProofHeader) == "" || r.Path != "/v1/login" {
		t.Fatalf("login request: %s %v", r.Path, r.Header)
	}
}
