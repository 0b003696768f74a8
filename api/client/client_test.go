package client_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	"github.com/keyfleet/keyfleet/api/client/clienttest"
)

func newClient(t *testing.T, s *clienttest.Server) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{Server: s.URL, Token: clienttest.Token, CAPEM: s.CAPEM, UserAgent: "test/1"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func TestNewRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  client.Config
		want string
	}{
		{"an empty server is refused", client.Config{}, "no server"},
		{"plain http is refused", client.Config{Server: "http://localhost:8443"}, "https"},
		{"a server with a query is refused", client.Config{Server: "https://h/?x=1"}, "want https://"},
		{"a token with a newline is refused", client.Config{Server: "h:1", Token: "abc\n"}, "white space"},
		{"a CA without certificates is refused", client.Config{Server: "h:1", CAPEM: []byte("nope")}, "no PEM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New() error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestNewAddsHTTPSToABareHost(t *testing.T) {
	c, err := client.New(client.Config{Server: "localhost:8443/"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Server(); got != "https://localhost:8443" {
		t.Fatalf("Server() = %q", got)
	}
}

func TestRequestsCarryTokenAgentAndBody(t *testing.T) {
	s := clienttest.NewServer(t)
	s.Handle("POST /v1/users", clienttest.JSON(http.StatusCreated, api.User{ID: "usr_1", Username: "alice"}))
	u, err := newClient(t, s).CreateUser(context.Background(), api.CreateUser{Username: "alice", Groups: []string{"eng"}})
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != "usr_1" {
		t.Fatalf("user = %+v", u)
	}
	r := s.Last()
	if got := r.Header.Get("User-Agent"); got != "test/1" {
		t.Errorf("User-Agent = %q", got)
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	var body api.CreateUser
	if err := json.Unmarshal(r.Body, &body); err != nil || body.Username != "alice" || body.Groups[0] != "eng" {
		t.Errorf("body = %s (%v)", r.Body, err)
	}
}

func TestPathSegmentsAreEscaped(t *testing.T) {
	s := clienttest.NewServer(t)
	s.Handle("GET /v1/users/{user}", func(w http.ResponseWriter, r *http.Request) {
		clienttest.JSON(http.StatusOK, api.User{Username: r.PathValue("user")})(w, r)
	})
	c := newClient(t, s)
	for _, name := range []string{"a b", "x/y", "..", "é?#"} {
		u, err := c.GetUser(context.Background(), name)
		if err != nil || u.Username != name {
			t.Errorf("GetUser(%q) = %q, %v", name, u.Username, err)
		}
	}
	n := len(s.Requests())
	if _, err := c.GetUser(context.Background(), ""); err == nil {
		t.Error("GetUser(\"\") succeeded")
	}
	if len(s.Requests()) != n {
		t.Error("GetUser(\"\") sent a request")
	}
}

func TestListFollowsTheCursor(t *testing.T) {
	s := clienttest.NewServer(t)
	users := []api.User{{Username: "a"}, {Username: "b"}, {Username: "c"}, {Username: "d"}, {Username: "e"}}
	s.Handle("GET /v1/users", clienttest.Pages(users))
	c := newClient(t, s)
	f := client.UserFilter{Group: "eng", Limit: 2}
	var got []string
	for {
		pg, err := c.ListUsers(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range pg.Items {
			got = append(got, u.Username)
		}
		if pg.NextCursor == "" {
			break
		}
		f.Cursor = pg.NextCursor
	}
	if strings.Join(got, "") != "abcde" {
		t.Fatalf("got %v", got)
	}
	reqs := s.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	if q := reqs[1].Query; q.Get("cursor") != "2" || q.Get("group") != "eng" || q.Get("limit") != "2" || q.Has("q") {
		t.Fatalf("second query = %v", q)
	}
}

func TestAuditPagesBySequence(t *testing.T) {
	s := clienttest.NewServer(t)
	events := []api.AuditEvent{{Seq: 1}, {Seq: 2}, {Seq: 3}}
	s.Handle("GET /v1/audit", clienttest.Audit(func() []api.AuditEvent { return events }))
	c := newClient(t, s)
	pg, err := c.ListAudit(context.Background(), client.AuditFilter{Action: "user.create"})
	if err != nil {
		t.Fatal(err)
	}
	after, more := client.NextAfter(pg)
	if after != 2 || !more {
		t.Fatalf("NextAfter = %d, %v", after, more)
	}
	pg, err = c.ListAudit(context.Background(), client.AuditFilter{After: after})
	if err != nil {
		t.Fatal(err)
	}
	if after, more = client.NextAfter(pg); after != 3 || more {
		t.Fatalf("NextAfter = %d, %v on the last page", after, more)
	}
	if q := s.Last().Query; q.Get("after") != "2" {
		t.Fatalf("query = %v", q)
	}
}
