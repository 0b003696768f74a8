package radius_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/push"
	kfradius "github.com/keyfleet/keyfleet/daemon/radius"
	"github.com/keyfleet/keyfleet/daemon/seal"
	"github.com/keyfleet/keyfleet/daemon/store"
	pushkind "github.com/keyfleet/keyfleet/plugins/push"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// pushRadius is a domain with the push kind and its out-of-band host, and
// a RADIUS listener in front of it that asks for pushes through core.
type pushRadius struct {
	t    *testing.T
	svc  *core.Service
	hub  *push.Hub
	addr string
	// other is a second listener on the same domain and challenges, as
	// another keyfleetd on the same database.
	other string
}

func newPushRadius(t *testing.T) *pushRadius { return newPushRadiusShared(t, false) }

// newPushRadiusShared is newPushRadius whose listeners say, with
// sharedPushes, that pushes are shared by every keyfleetd (both share the
// one hub here, as keyfleetd on PostgreSQL share the push board).
func newPushRadiusShared(t *testing.T, sharedPushes bool) *pushRadius {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(store.Options{Dir: filepath.Join(dir, "store"), EncryptionKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	sl, _ := seal.New(make([]byte, 32))
	hub, _ := push.New(push.Config{}, push.Options{})
	svc, err := core.New(core.Config{Store: st, Sealer: sl, Kinds: []sdk.Factor{pushkind.Factor{}}, OutOfBand: hub})
	if err != nil {
		t.Fatal(err)
	}
	hub.Attach(svc)
	secret := filepath.Join(dir, "nas.secret")
	os.WriteFile(secret, []byte(testSecret+"\n"), 0o600)
	shared := kfradius.NewMemoryChallenges(nil)
	ctx, cancel := context.WithCancel(context.Background())
	var addrs []string
	var done []chan struct{}
	for range 2 {
		srv, err := kfradius.New(kfradius.Config{Listen: "127.0.0.1:0", Clients: []kfradius.ClientConfig{{Name: "vpn-gw1", Networks: []string{"127.0.0.1"}, SecretFile: secret}}},
			kfradius.Options{Service: svc, OutOfBand: map[string]kfradius.OutOfBand{"push": kfradius.CoreOutOfBand{Service: svc}}, Challenges: shared, SharedPushes: sharedPushes})
		if err != nil {
			t.Fatal(err)
		}
		conn, _ := net.ListenPacket("udp", "127.0.0.1:0")
		d := make(chan struct{})
		go func() { srv.Serve(ctx, conn); close(d) }()
		addrs, done = append(addrs, conn.LocalAddr().String()), append(done, d)
	}
	t.Cleanup(func() {
		cancel()
		for _, d := range done {
			<-d
		}
		hub.Close()
		st.Close()
	})
	return &pushRadius{t: t, svc: svc, hub: hub, addr: addrs[0], other: addrs[1]}
}

// phone enrols a push companion for a new user.
func (e *pushRadius) phone(name string) *pushkind.Device {
	e.t.Helper()
	ctx := context.Background()
	u, _, _ := e.svc.CreateUser(ctx, core.System, api.CreateUser{Username: name})
	en, _, _ := e.svc.CreateEnrolment(ctx, core.System, api.CreateEnrolment{User: u.ID, Kind: "push"})
	var params map[string]string
	json.Unmarshal(en.Params, &params)
	dev, _ := pushkind.NewDevice(nil)
	r, _ := dev.Enrol(en.ID, params["nonce"], "Pixel", "file")
	b, _ := json.Marshal(r)
	f, err := e.svc.CompleteEnrolment(ctx, core.System, en.ID, api.CompleteEnrolment{Label: "Pixel", Payload: b})
	if err != nil {
		e.t.Fatal(err)
	}
	dev.FactorID = f.ID
	return dev
}

// answer is the user's phone answering the push it has.
func (e *pushRadius) answer(dev *pushkind.Device, number, decision string) {
	e.t.Helper()
	pending := e.hub.Pending(dev.FactorID)
	if len(pending) != 1 {
		e.t.Fatalf("the phone has %d pushes", len(pending))
	}
	var d pushkind.Delivery
	json.Unmarshal(pending[0], &d)
	if d.Application != "RADIUS (test-nas)" || d.Address != "198.51.100.9" {
		e.t.Fatalf("the push says %+v", d)
	}
	a, _ := dev.Answer(d, number, decision, e.svc.Now())
	b, _ := json.Marshal(a)
	f, _ := e.svc.DeviceFactor(context.Background(), dev.FactorID)
	if _, err := e.hub.Answer(context.Background(), f, d.VerificationID, d.FactorID, b); err != nil {
		e.t.Fatal(err)
	}
}

func (e *pushRadius) send(user string, state []byte) *radius.Packet {
	e.t.Helper()
	return e.sendTo(e.addr, user, state)
}

func (e *pushRadius) sendTo(addr, user string, state []byte) *radius.Packet {
	e.t.Helper()
	p, _, err := exchange(addr, "", signed(request(testSecret, user, "x", func(q *radius.Packet) {
		rfc2865.CallingStationID_SetString(q, "198.51.100.9")
		if state != nil {
			rfc2865.State_Set(q, state)
		}
	}), testSecret), testSecret)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

var pickRE = regexp.MustCompile(`pick (\d\d)\. Then press Enter\.$`)

// TestAPushAnsweredOnThePhoneDecidesTheVPNSignIn walks the
// Access-Challenge loop with a real push: the challenge says which number
// to pick; pressing Enter before answering challenges again; the right
// number lets the sign-in through, a wrong one or "this wasn't me"
// refuses it, and after the report no push goes out.
func TestAPushAnsweredOnThePhoneDecidesTheVPNSignIn(t *testing.T) {
	e := newPushRadius(t)
	tests := []struct {
		name     string
		pick     func(right string, choices []string) (string, string)
		want     radius.Code
		reported bool
	}{
		{"the right number", func(n string, _ []string) (string, string) { return n, pushkind.Approve }, radius.CodeAccessAccept, false},
		{"a wrong number", func(n string, c []string) (string, string) {
			return c[slices.IndexFunc(c, func(x string) bool { return x != n })], pushkind.Approve
		}, radius.CodeAccessReject, false},
		{"this wasn't me", func(string, []string) (string, string) { return "", pushkind.Report }, radius.CodeAccessReject, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user := []string{"ana", "ben", "cho"}[i]
			dev := e.phone(user)
			p := e.send(user, nil)
			m := pickRE.FindStringSubmatch(rfc2865.ReplyMessage_GetString(p))
			if p.Code != radius.CodeAccessChallenge || m == nil {
				t.Fatalf("start: %v %q", p.Code, rfc2865.ReplyMessage_GetString(p))
			}
			if again := e.send(user, rfc2865.State_Get(p)); again.Code != radius.CodeAccessChallenge || !strings.Contains(rfc2865.ReplyMessage_GetString(again), "pick "+m[1]) {
				t.Fatalf("Enter before the answer: %v %q", again.Code, rfc2865.ReplyMessage_GetString(again))
			} else {
				p = again
			}
			var d pushkind.Delivery
			json.Unmarshal(e.hub.Pending(dev.FactorID)[0], &d)
			number, decision := tt.pick(m[1], d.Choices)
			e.answer(dev, number, decision)
			if got := e.send(user, rfc2865.State_Get(p)); got.Code != tt.want {
				t.Fatalf("after the answer: %v %q, want %v", got.Code, rfc2865.ReplyMessage_GetString(got), tt.want)
			}
			if tt.reported {
				if p := e.send(user, nil); p.Code != radius.CodeAccessReject || len(e.hub.Pending(dev.FactorID)) != 0 {
					t.Fatalf("a sign-in after the report: %v %q", p.Code, rfc2865.ReplyMessage_GetString(p))
				}
			}
		})
	}
}

// TestAPushWaitAnsweredToAnotherKeyfleetdSaysToSignInAgain: without
// shared pushes (Badger) the push waits in the memory of the keyfleetd
// that sent it. A NAS that sends
// the user's Enter to another keyfleetd gets a clear Access-Reject
// saying to sign in again (not a hang, not "denied"), audited; the
// State is spent there, and the first keyfleetd no longer takes it.
func TestAPushWaitAnsweredToAnotherKeyfleetdSaysToSignInAgain(t *testing.T) {
	e := newPushRadius(t)
	dev := e.phone("dara")
	p := e.send("dara", nil)
	if p.Code != radius.CodeAccessChallenge || len(e.hub.Pending(dev.FactorID)) != 1 {
		t.Fatalf("start: %v %q", p.Code, rfc2865.ReplyMessage_GetString(p))
	}
	state := rfc2865.State_Get(p)
	got := e.sendTo(e.other, "dara", state)
	if msg := rfc2865.ReplyMessage_GetString(got); got.Code != radius.CodeAccessReject || !strings.Contains(msg, "sign in again") {
		t.Fatalf("the wait answered elsewhere: %v %q", got.Code, msg)
	}
	recs, err := e.svc.ListAudit(context.Background(), core.System, core.AuditFilter{Action: core.LoginRefused}, 10)
	if err != nil || len(recs) == 0 {
		t.Fatalf("no refusal audited: %v", err)
	}
	ev, _ := recs[len(recs)-1].Event()
	if ev.Extra["reason"] != "push_elsewhere" || ev.Extra["nas_identifier"] != "test-nas" || ev.Extra["calling_station_id"] != "198.51.100.9" {
		t.Fatalf("audited as %+v", ev)
	}
	if again := e.send("dara", state); again.Code != radius.CodeAccessReject {
		t.Fatalf("the spent State on the first keyfleetd: %v %q", again.Code, rfc2865.ReplyMessage_GetString(again))
	}
}

// TestWithSharedPushesAPushWaitAnsweredToAnotherKeyfleetdPolls: with
// pushes shared by every keyfleetd (PostgreSQL), the NAS may send the
// user's Enter to another keyfleetd than the one that asked: before the
// phone answers it challenges again, after it the sign-in goes through;
// the State is spent and not taken again by the first keyfleetd.
func TestWithSharedPushesAPushWaitAnsweredToAnotherKeyfleetdPolls(t *testing.T) {
	e := newPushRadiusShared(t, true)
	dev := e.phone("dara")
	p := e.send("dara", nil)
	m := pickRE.FindStringSubmatch(rfc2865.ReplyMessage_GetString(p))
	if p.Code != radius.CodeAccessChallenge || m == nil {
		t.Fatalf("start: %v %q", p.Code, rfc2865.ReplyMessage_GetString(p))
	}
	again := e.sendTo(e.other, "dara", rfc2865.State_Get(p))
	if again.Code != radius.CodeAccessChallenge || !strings.Contains(rfc2865.ReplyMessage_GetString(again), "pick "+m[1]) {
		t.Fatalf("Enter on the other keyfleetd before the answer: %v %q", again.Code, rfc2865.ReplyMessage_GetString(again))
	}
	e.answer(dev, m[1], pushkind.Approve)
	state := rfc2865.State_Get(again)
	if got := e.sendTo(e.other, "dara", state); got.Code != radius.CodeAccessAccept {
		t.Fatalf("after the answer, on the other keyfleetd: %v %q", got.Code, rfc2865.ReplyMessage_GetString(got))
	}
	if replay := e.send("dara", state); replay.Code != radius.CodeAccessReject {
		t.Fatalf("the spent State on the first keyfleetd: %v %q", replay.Code, rfc2865.ReplyMessage_GetString(replay))
	}
}
