package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/push"
	"github.com/keyfleet/keyfleet/daemon/seal"
	"github.com/keyfleet/keyfleet/daemon/store"
	pushkind "github.com/keyfleet/keyfleet/plugins/push"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// TestKeyfleetdDeliversAndWaitsForIt runs the example through keyfleetd's
// own out-of-band host (daemon/push) and domain: the application begins,
// the device's channel (authenticated with its key) gets the delivery,
// the device answers, and the application's finish, waiting, says yes.
func TestKeyfleetdDeliversAndWaitsForIt(t *testing.T) {
	ctx := context.Background()
	st, _ := store.Open(store.Options{InMemory: true, EncryptionKey: make([]byte, 32)})
	defer st.Close()
	sl, _ := seal.New(make([]byte, 32))
	hub, _ := push.New(push.Config{}, push.Options{})
	defer hub.Close()
	svc, err := core.New(core.Config{Store: st, Sealer: sl, Kinds: []sdk.Factor{Confirm{}}, OutOfBand: hub})
	if err != nil {
		t.Fatal(err)
	}
	hub.Attach(svc)
	u, _, _ := svc.CreateUser(ctx, core.System, api.CreateUser{Username: "dana"})
	appUser, _, _ := svc.CreateUser(ctx, core.System, api.CreateUser{Username: "vpn", Kind: api.KindService})
	app := core.Principal{UserID: appUser.ID, Username: "vpn", Roles: []string{api.RoleService}, Auth: "token"}

	en, _, _ := svc.CreateEnrolment(ctx, core.System, api.CreateEnrolment{User: u.ID, Kind: "confirm"})
	var params map[string]string
	json.Unmarshal(en.Params, &params)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	d := device{key}
	pt, _ := key.PublicKey.Bytes()
	enrol, _ := json.Marshal(map[string]string{"public_key": base64.RawURLEncoding.EncodeToString(pt), "signature": d.sign(Message(en.ID, params["nonce"], "enrol"))})
	f, err := svc.CompleteEnrolment(ctx, core.System, en.ID, api.CompleteEnrolment{Payload: enrol})
	if err != nil {
		t.Fatal(err)
	}

	v, err := svc.BeginVerify(ctx, app, api.BeginVerify{User: "dana", Application: "VPN"})
	if err != nil || !v.Factors[0].OutOfBand {
		t.Fatalf("begin: %+v %v", v, err)
	}
	// The device's channel request, signed with its key as keyfleetd's
	// companions sign theirs.
	r := httptest.NewRequest("GET", "/v1/push/pending", nil)
	dev := &pushkind.Device{Key: key, FactorID: f.ID}
	h, _ := dev.Authorization("GET", "/v1/push/pending", time.Now())
	r.Header.Set(pushkind.DeviceHeader, h)
	if _, err := hub.Authenticate(r); err != nil {
		t.Fatalf("the device's channel: %v", err)
	}
	delivered := hub.Pending(f.ID)
	if len(delivered) != 1 {
		t.Fatalf("%d deliveries", len(delivered))
	}
	var ids map[string]string
	json.Unmarshal(delivered[0], &ids)
	answer := d.say(t, sdk.BeginVerifyResponse{Delivery: delivered[0]}, "yes")
	if out, err := hub.Answer(ctx, f, ids["verification_id"], ids["factor_id"], answer); err != nil || !out.Result.OK {
		t.Fatalf("answer: %+v %v", out, err)
	}
	res, err := svc.FinishVerify(ctx, app, api.FinishVerify{ID: v.ID, FactorID: f.ID})
	if err != nil || !res.OK {
		t.Fatalf("finish: %+v %v", res, err)
	}
}
