package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	"github.com/keyfleet/keyfleet/daemon"
	"github.com/keyfleet/keyfleet/daemon/core"
	pushkind "github.com/keyfleet/keyfleet/plugins/push"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// TestThePushCapHoldsAcrossKeyfleetdOnOneDatabase: the cap on pushes per
// user (push.max_per_user in push.period) is what keeps a person from
// being worn into approving. With two keyfleetd behind a load balancer on
// one PostgreSQL database, an attacker who knows the password and asks
// for pushes alternately through each gets the cap once, not once per
// keyfleetd: the fourth push of a cap of three is refused (429, with
// Retry-After), whichever keyfleetd it reaches.
func TestThePushCapHoldsAcrossKeyfleetdOnOneDatabase(t *testing.T) {
	dir, cfg, _ := initOn(t, postgres)
	cfg.Push.MaxPerUser = 3
	cfg.Push.Period.Duration = 10 * time.Minute
	n := serveNodes(t, dir, cfg, daemon.Options{LogOut: logOut(), Kinds: []sdk.Factor{pushkind.Factor{}}}, 2)
	ctx := context.Background()
	svc := n.servers[0].Service()
	u, _, err := svc.CreateUser(ctx, core.System, api.CreateUser{Username: "vpn-gateway", Kind: api.KindService})
	if err != nil {
		t.Fatal(err)
	}
	_, tok, err := svc.CreateToken(ctx, core.System, api.CreateToken{User: u.ID, Name: "vpn"})
	if err != nil {
		t.Fatal(err)
	}
	enrolPush(t, svc, "zoe")
	ca, _ := os.ReadFile(filepath.Join(dir, "tls", "cert.pem"))
	apps := make([]*client.Client, len(n.urls))
	for i, url := range n.urls {
		if apps[i], err = client.New(client.Config{Server: url, Token: tok, CAPEM: ca}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if _, err := apps[i%2].BeginVerify(ctx, api.BeginVerify{User: "zoe", Kinds: []string{"push"}, Application: "VPN"}); err != nil {
			t.Fatalf("push %d of 3, through keyfleetd %d: %v", i+1, i%2+1, err)
		}
	}
	for i, app := range apps {
		_, err := app.BeginVerify(ctx, api.BeginVerify{User: "zoe", Kinds: []string{"push"}, Application: "VPN"})
		var p *api.Problem
		if !errors.As(err, &p) || p.Status != http.StatusTooManyRequests || !strings.Contains(p.Detail, "3 pushes to zoe") {
			t.Fatalf("a fourth push through keyfleetd %d, past a cap of 3 counted across both: %v", i+1, err)
		}
	}
	// Another user has a budget of their own.
	enrolPush(t, svc, "yann")
	if _, err := apps[1].BeginVerify(ctx, api.BeginVerify{User: "yann", Kinds: []string{"push"}, Application: "VPN"}); err != nil {
		t.Fatalf("another user's first push: %v", err)
	}
}

// enrolPush enrols a push companion for a new user named name.
func enrolPush(t *testing.T, svc *core.Service, name string) {
	t.Helper()
	ctx := context.Background()
	u, _, err := svc.CreateUser(ctx, core.System, api.CreateUser{Username: name})
	if err != nil {
		t.Fatal(err)
	}
	en, _, err := svc.CreateEnrolment(ctx, core.System, api.CreateEnrolment{User: u.ID, Kind: "push"})
	if err != nil {
		t.Fatal(err)
	}
	var params map[string]string
	json.Unmarshal(en.Params, &params)
	dev, _ := pushkind.NewDevice(nil)
	r, _ := dev.Enrol(en.ID, params["nonce"], name+"'s phone", "file")
	b, _ := json.Marshal(r)
	if _, err := svc.CompleteEnrolment(ctx, core.System, en.ID, api.CompleteEnrolment{Label: "phone", Payload: b}); err != nil {
		t.Fatal(err)
	}
}
