package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/agent"
	agentfido2 "github.com/keyfleet/keyfleet/agent/fido2"
	"github.com/keyfleet/keyfleet/agent/vkey"
	"github.com/keyfleet/keyfleet/agent/vkey/vkeytest"
	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	fido2kind "github.com/keyfleet/keyfleet/daemon/kinds/fido2"
	pivkind "github.com/keyfleet/keyfleet/daemon/kinds/piv"
)

// stepClock is the clock of a key's FIDO2 power-up window. slow makes
// every reading 10 s later than the one before: an operator (or agent)
// too slow for the window, whatever happens between plugging in and the
// reset.
type stepClock struct {
	mu   sync.Mutex
	t    time.Time
	slow bool
}

func (c *stepClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.slow {
		c.t = c.t.Add(10 * time.Second)
	}
	return c.t
}

func (c *stepClock) setSlow(slow bool) { c.mu.Lock(); c.slow = slow; c.mu.Unlock() }

// handKey is a virtual key with a FIDO2 applet in slot 0 that the test,
// as the operator at the desk, can pull out and plug back in.
type handKey struct {
	t      *testing.T
	card   *vkey.Card
	soft   *agentfido2.Soft
	clock  *stepClock
	mu     sync.Mutex
	unplug func()
}

// plugInHand plugs a new virtual key with a FIDO2 applet (attested by
// fca) into slot 0.
func plugInHand(t *testing.T, ca *vkey.CA, fca *agentfido2.CA, serial uint32) *handKey {
	t.Helper()
	h := &handKey{t: t, clock: &stepClock{t: time.Now()}}
	soft, err := agentfido2.NewSoft(agentfido2.SoftOptions{CA: fca, Serial: serial, Enterprise: true, Now: h.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	h.soft = soft
	if h.card, err = vkey.New(vkey.Options{CA: ca, Serial: serial, FIDO2: soft}); err != nil {
		t.Fatal(err)
	}
	pcsc.Need(t)
	h.push()
	t.Cleanup(h.pull)
	yk, err := vkeytest.OpenWhenReady(pcsc.Slots[0].Reader) // as the agent will
	if err != nil {
		t.Fatal(err)
	}
	yk.Close()
	return h
}

// push plugs the key in (once vpcd has seen it: pcscd notices it on its
// next poll).
func (h *handKey) push() {
	unplug, err := pcsc.Plug(h.card, 0)
	if err != nil {
		h.t.Error(err)
		return
	}
	h.mu.Lock()
	h.unplug = unplug
	h.mu.Unlock()
}

// pull unplugs the key, if it is plugged in.
func (h *handKey) pull() {
	h.mu.Lock()
	unplug := h.unplug
	h.unplug = nil
	h.mu.Unlock()
	if unplug != nil {
		unplug()
	}
}

// passkey makes a discoverable credential for rpID on the key, as a
// browser does when its holder registers with a site.
func (h *handKey) passkey(rpID, pin string) {
	h.t.Helper()
	cdh := sha256.Sum256([]byte("client data of " + rpID))
	_, err := h.soft.MakeCredential(agent.MakeCredentialRequest{ClientDataHash: cdh[:], RPID: rpID, UserID: []byte("carol@" + rpID),
		UserName: "carol", Algorithms: []int{-7}, ResidentKey: true, PIN: pin})
	if err != nil {
		h.t.Fatal(err)
	}
}

// signsIn reports whether the key still holds a credential for rpID
// (one of allow, or a discoverable one).
func (h *handKey) signsIn(rpID string, allow ...[]byte) bool {
	h.t.Helper()
	cdh := sha256.Sum256([]byte("sign in to " + rpID))
	_, err := h.soft.GetAssertion(agent.GetAssertionRequest{RPID: rpID, ClientDataHash: cdh[:], Allow: allow})
	if err != nil && !errors.Is(err, agent.ErrNoCredential) {
		h.t.Fatalf("signing in to %s: %v", rpID, err)
	}
	return err == nil
}

// operator is the stderr of a keyfleet-agent run with the person at the
// desk reading it: when a prompt asks to unplug the key, or to plug it
// back in, they do (once each).
type operator struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	actions []struct {
		prompt string
		do     func()
	}
	wg sync.WaitGroup
}

func (o *operator) on(prompt string, do func()) {
	o.actions = append(o.actions, struct {
		prompt string
		do     func()
	}{prompt, do})
}

func (o *operator) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	for i, a := range o.actions {
		if a.do != nil && strings.Contains(o.buf.String(), a.prompt) {
			o.actions[i].do = nil
			o.wg.Add(1)
			go func() { defer o.wg.Done(); a.do() }()
		}
	}
	return len(p), nil
}

// wipeAtTheDesk runs keyfleet-agent wipe with an operator who pulls the
// key out and plugs back in what plugBack plugs (nil: nothing) when told.
func wipeAtTheDesk(t *testing.T, d *testDaemon, token string, h *handKey, plugBack func(), args ...string) (string, string, int) {
	t.Helper()
	op := &operator{}
	op.on("unplug the key", h.pull)
	if plugBack != nil {
		op.on("plug it back in, and touch", plugBack)
	}
	var out bytes.Buffer
	all := append([]string{"wipe", "--server", d.addr, "--token-file", token, "--ca", d.caFile, "--reader", pcsc.Slots[0].Reader, "--replug-wait", "20s"}, args...)
	code := run(context.Background(), all, &out, op, func(string) string { return "" })
	op.wg.Wait()
	return out.String(), op.buf.String(), code
}

// fido2CredentialID is the credential id of user's FIDO2 factor.
func fido2CredentialID(t *testing.T, d *testDaemon, user string) []byte {
	t.Helper()
	pg, err := d.admin.ListFactors(context.Background(), client.FactorFilter{User: user})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range pg.Items {
		var ev struct {
			CredentialID []byte `json:"credential_id"`
		}
		if f.Kind == "fido2" && json.Unmarshal(f.Evidence, &ev) == nil && len(ev.CredentialID) > 0 {
			return ev.CredentialID
		}
	}
	t.Fatalf("%s has no FIDO2 factor with a credential id", user)
	return nil
}

// startLifecycleDaemon serves a keyfleetd trusting the virtual key's PIV
// and FIDO2 roots.
func startLifecycleDaemon(t *testing.T, ca *vkey.CA, fca *agentfido2.CA) *testDaemon {
	t.Helper()
	return startBoth(t, kindsConfig{piv: pivkind.Config{Roots: []*x509.Certificate{ca.Root()}},
		fido2: fido2kind.Config{Roots: []*x509.Certificate{fca.Root()}, RequireAttestation: true, EnterpriseAttestation: true}})
}

// returnedWithPasskeys provisions user's PIV and FIDO2 factors on h, adds
// a passkey for their bank made elsewhere, and has the key come back
// after the user left. It returns the device id and the credential id of
// the user's keyfleet FIDO2 factor.
func returnedWithPasskeys(t *testing.T, d *testDaemon, h *handKey, user string) (string, []byte) {
	t.Helper()
	ctx := context.Background()
	d.admin.CreateUser(ctx, api.CreateUser{Username: user})
	mustAgent(t, d, d.deskToken(t), "provision", "--reader", pcsc.Slots[0].Reader, "--user", user, "--fido2", "--pin-file", writePIN(t, "24681357"))
	h.passkey("bank.example", "24681357")
	dev, found, err := d.admin.DeviceBySerial(ctx, "Yubico", "40000160")
	if err != nil || !found {
		t.Fatalf("%s's key is unknown: %v", user, err)
	}
	disableWithTwoAdmins(t, d, user)
	if _, err := d.admin.ReturnDevice(ctx, dev.ID, api.ReturnDevice{Reason: user + " left"}); err != nil {
		t.Fatal(err)
	}
	return dev.ID, fido2CredentialID(t, d, user)
}

// TestAWipeForgetsTheLastHoldersPasskeys: carol's key carried her PIV and
// FIDO2 factors and her bank's passkey. The wipe resets the PIV applet,
// asks the desk to plug the key in again, checks it is the same key and
// resets its FIDO2 application: neither her keyfleet credential nor her
// bank's passkey nor her FIDO2 PIN is on the key any more, and keyfleetd
// records both resets.
func TestAWipeForgetsTheLastHoldersPasskeys(t *testing.T) {
	ca, _ := vkey.NewCA(nil)
	fca, _ := agentfido2.NewCA()
	h := plugInHand(t, ca, fca, 40000160)
	d := startLifecycleDaemon(t, ca, fca)
	id, cred := returnedWithPasskeys(t, d, h, "carol")
	if !h.signsIn("bank.example") || !h.signsIn("keyfleet.test", cred) {
		t.Fatal("carol's credentials are not on the key before the wipe")
	}
	if _, errOut, code := wipeAtTheDesk(t, d, d.deskToken(t), h, h.push, "--no-fido2"); code != 1 ||
		!strings.Contains(errOut, "carried FIDO2 factor") || keyIsFresh(t) {
		t.Fatalf("a wipe claiming carol's key has no FIDO2 application: exit %d\n%s (nothing on the key may change)", code, errOut)
	}
	out, errOut, code := wipeAtTheDesk(t, d, d.deskToken(t), h, h.push, "--reason", "back from carol")
	if code != 0 || !strings.Contains(out, "PIV applet and FIDO2 application") || !strings.Contains(out, "in_stock") {
		t.Fatalf("wipe: exit %d\n%s%s", code, out, errOut)
	}
	if h.signsIn("bank.example") || h.signsIn("keyfleet.test", cred) || !keyIsFresh(t) {
		t.Fatal("carol's credentials survived the wipe")
	}
	if info, _ := h.soft.Info(); info.PINSet {
		t.Fatal("carol's FIDO2 PIN survived the wipe")
	}
	if dev, _ := d.admin.GetDevice(context.Background(), id); dev.FIDO2Wipe != api.FIDO2Reset {
		t.Fatalf("keyfleetd's record of the wipe: %+v", dev)
	}
}

// TestAFIDO2ResetThatMissesTheWindowLeavesTheKeyReturned: the key comes
// back too late for its reset window. The agent says so; the PIV applet
// was reset but carol's passkeys are still there, and keyfleetd keeps the
// key returned (it cannot be reassigned). The same command, in time,
// finishes the wipe.
func TestAFIDO2ResetThatMissesTheWindowLeavesTheKeyReturned(t *testing.T) {
	ca, _ := vkey.NewCA(nil)
	fca, _ := agentfido2.NewCA()
	h := plugInHand(t, ca, fca, 40000160)
	d := startLifecycleDaemon(t, ca, fca)
	id, _ := returnedWithPasskeys(t, d, h, "carol")
	d.admin.CreateUser(context.Background(), api.CreateUser{Username: "dave"})
	h.clock.setSlow(true)
	out, errOut, code := wipeAtTheDesk(t, d, d.deskToken(t), h, h.push)
	for _, want := range []string{"first seconds after it is plugged in", "PIV applet was reset, but its FIDO2 application was not", "run the same command again"} {
		if code != 1 || !strings.Contains(errOut, want) {
			t.Fatalf("a late reset: exit %d, want %q in\n%s%s", code, want, out, errOut)
		}
	}
	if !h.signsIn("bank.example") {
		t.Fatal("a refused reset removed carol's passkey")
	}
	if _, err := d.admin.AssignDevice(context.Background(), id, api.AssignDevice{User: "dave"}); err == nil || !strings.Contains(err.Error(), "returned") {
		t.Fatalf("reassigning a key whose FIDO2 application was not reset: %v", err)
	}
	h.clock.setSlow(false)
	if _, errOut, code := wipeAtTheDesk(t, d, d.deskToken(t), h, h.push); code != 0 || h.signsIn("bank.example") {
		t.Fatalf("the wipe again, in time: exit %d\n%s", code, errOut)
	}
}

// TestAnotherKeyPluggedBackIsNotReset: asked to plug carol's key back in,
// the operator plugs in someone else's. The agent sees the serial differ
// and leaves that key's FIDO2 application alone.
func TestAnotherKeyPluggedBackIsNotReset(t *testing.T) {
	ca, _ := vkey.NewCA(nil)
	fca, _ := agentfido2.NewCA()
	h := plugInHand(t, ca, fca, 40000160)
	d := startLifecycleDaemon(t, ca, fca)
	id, _ := returnedWithPasskeys(t, d, h, "carol")
	other := &handKey{t: t, clock: &stepClock{t: time.Now()}}
	other.soft, _ = agentfido2.NewSoft(agentfido2.SoftOptions{CA: fca, Serial: 40000161, Now: other.clock.now})
	other.card, _ = vkey.New(vkey.Options{CA: ca, Serial: 40000161, FIDO2: other.soft})
	t.Cleanup(other.pull)
	other.passkey("bank.example", "")
	_, errOut, code := wipeAtTheDesk(t, d, d.deskToken(t), h, other.push)
	if code != 1 || !strings.Contains(errOut, "key 40000161 was plugged in, not key 40000160") || !other.signsIn("bank.example") {
		t.Fatalf("another key plugged back: exit %d\n%s", code, errOut)
	}
	if dev, _ := d.admin.GetDevice(context.Background(), id); dev.State != api.DeviceReturned {
		t.Fatalf("carol's key after a wipe that did not finish: %+v", dev)
	}
}
