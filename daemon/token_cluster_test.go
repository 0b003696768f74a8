package daemon_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	"github.com/keyfleet/keyfleet/daemon"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// TestATokenDiesAtOnceOnEveryKeyfleetd: two keyfleetd on one PostgreSQL
// database. A person's token works through the second; an administrator
// takes a role from her through the first, and the very next
// request through the second has lost it; the token is revoked through
// the first, and the very next request through the second is refused.
// No keyfleetd answers from a copy of the token or its user: each request
// reads both, in one statement.
func TestATokenDiesAtOnceOnEveryKeyfleetd(t *testing.T) {
	dir, cfg, _ := initOn(t, postgres)
	n := serveNodes(t, dir, cfg, daemon.Options{LogOut: logOut()}, 2)
	ctx := context.Background()
	svc := n.servers[0].Service()
	u, _, err := svc.CreateUser(ctx, core.System, api.CreateUser{Username: "ada", Roles: []string{api.RoleUser, api.RoleAuditor}})
	if err != nil {
		t.Fatal(err)
	}
	tok, secret, err := svc.CreateToken(ctx, core.System, api.CreateToken{User: u.ID, Name: "reports"})
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := os.ReadFile(filepath.Join(dir, "tls", "cert.pem"))
	second, err := client.New(client.Config{Server: n.urls[1], Token: secret, CAPEM: ca})
	if err != nil {
		t.Fatal(err)
	}
	me, err := second.Me(ctx)
	if err != nil || !slices.Contains(me.Roles, api.RoleAuditor) {
		t.Fatalf("the token through the second keyfleetd: %+v, %v; want it working, with the auditor role", me, err)
	}

	first := n.servers[0].Service()
	if _, _, err := first.UpdateUser(ctx, core.System, u.ID, api.UpdateUser{Roles: &[]string{api.RoleUser}}); err != nil {
		t.Fatal(err)
	}
	if me, err = second.Me(ctx); err != nil || slices.Contains(me.Roles, api.RoleAuditor) {
		t.Fatalf("right after the auditor role was taken through the first keyfleetd, the second answered %+v, %v", me, err)
	}

	if _, err := first.RevokeToken(ctx, core.System, tok.ID); err != nil {
		t.Fatal(err)
	}
	_, err = second.Me(ctx)
	var p *api.Problem
	if !errors.As(err, &p) || p.Status != http.StatusUnauthorized {
		t.Fatalf("right after the token was revoked through the first keyfleetd, the second answered %v; want 401", err)
	}
}
