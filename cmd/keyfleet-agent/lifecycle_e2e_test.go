package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-piv/piv-go/v2/piv"

	agentpiv "github.com/keyfleet/keyfleet/agent/piv"
	"github.com/keyfleet/keyfleet/agent/vkey"
	"github.com/keyfleet/keyfleet/agent/vkey/vkeytest"
	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	"github.com/keyfleet/keyfleet/daemon/core"
	pivkind "github.com/keyfleet/keyfleet/daemon/kinds/piv"
)

// keyIsFresh opens the virtual key through pcscd and says whether its PIV
// applet has factory settings.
func keyIsFresh(t *testing.T) bool {
	t.Helper()
	tok, err := agentpiv.Opener{}.Open(pcsc.Slots[0].Reader)
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	fresh, err := tok.IsFactoryFresh()
	if err != nil {
		t.Fatal(err)
	}
	return fresh
}

// TestAKeyPassesFromCarolToDave: the IT desk provisions a key for carol;
// when she leaves (her account disabled by two admins) the key comes back,
// its factor is revoked, the agent wipes it after keyfleetd agrees, and it
// is reassigned and provisioned for dave without --reset. Before the
// return, neither provisioning it for dave nor wiping it touches the key.
// The key's audit trail tells the whole story.
func TestAKeyPassesFromCarolToDave(t *testing.T) {
	ca, _ := vkey.NewCA(nil)
	plug(t, vkey.Options{CA: ca, Serial: 40000150})
	d := startDaemon(t, ca.Root())
	token := d.deskToken(t)
	ctx := context.Background()
	for _, u := range []string{"carol", "dave"} {
		d.admin.CreateUser(ctx, api.CreateUser{Username: u})
	}
	reader := []string{"--reader", pcsc.Slots[0].Reader}
	mustAgent(t, d, token, append([]string{"provision", "--user", "carol", "--pin-file", writePIN(t, "24681357")}, reader...)...)
	dev, found, err := d.admin.DeviceBySerial(ctx, "Yubico", "40000150")
	if err != nil || !found {
		t.Fatalf("carol's key is unknown: %v", err)
	}

	_, errOut, code := agentCmd(t, d, token, "", append([]string{"provision", "--user", "dave", "--reset", "--pin-file", writePIN(t, "13572468")}, reader...)...)
	if code != 1 || !strings.Contains(errOut, "refused this key before anything on it was changed") || !strings.Contains(errOut, "belongs to another user") || keyIsFresh(t) {
		t.Fatalf("provisioning carol's key for dave: exit %d, %s (the key must not be reset)", code, errOut)
	}
	if _, errOut, code := agentCmd(t, d, token, "", append([]string{"wipe", "--no-fido2"}, reader...)...); code != 1 || !strings.Contains(errOut, "active") || keyIsFresh(t) {
		t.Fatalf("wiping a key in use: exit %d, %s", code, errOut)
	}

	disableWithTwoAdmins(t, d, "carol")
	if _, err := d.admin.ReturnDevice(ctx, dev.ID, api.ReturnDevice{Reason: "carol left"}); err != nil {
		t.Fatal(err)
	}
	// A PIV-only key: no FIDO2 application to reset (TestAWipeForgetsTheLastHoldersPasskeys wipes one).
	out := mustAgent(t, d, token, append([]string{"wipe", "--no-fido2", "--reason", "back from carol"}, reader...)...)
	if !strings.Contains(out, "in_stock") || !keyIsFresh(t) {
		t.Fatalf("wipe: %s", out)
	}
	if _, err := d.admin.AssignDevice(ctx, dev.ID, api.AssignDevice{User: "dave", Reason: "new starter"}); err != nil {
		t.Fatal(err)
	}
	mustAgent(t, d, token, append([]string{"provision", "--user", "dave", "--pin-file", writePIN(t, "13572468")}, reader...)...)
	if dev, _ = d.admin.GetDevice(ctx, dev.ID); dev.State != api.DeviceActive || dev.LastUserID == "" {
		t.Fatalf("dave's key %+v", dev)
	}
	trail := deviceTrail(t, d, dev.ID)
	want := []string{"device.assign", "device.return", "device.wipe", "device.assign", "device.assign"}
	if !slices.Equal(trail, want) {
		t.Fatalf("the key's audit trail %v, want %v", trail, want)
	}
}

func mustAgent(t *testing.T, d *testDaemon, token string, args ...string) string {
	t.Helper()
	out, errOut, code := agentCmd(t, d, token, "", args...)
	if code != 0 {
		t.Fatalf("keyfleet-agent %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func disableWithTwoAdmins(t *testing.T, d *testDaemon, user string) {
	t.Helper()
	ctx := context.Background()
	a, err := d.admin.DisableUser(ctx, user, "left the company")
	if err != nil {
		t.Fatal(err)
	}
	// The second approver works elsewhere (HR's decision, approved with
	// their own key): the daemon's domain stands in for them here;
	// cmd/keyfleet-agent/proof_e2e_test.go shows approvals with keys.
	if _, err := d.svc.Approve(ctx, core.System, a.Approval.ID, "confirmed with HR"); err != nil {
		t.Fatal(err)
	}
}

// deviceTrail lists the device.* actions audited about a device, oldest
// first.
func deviceTrail(t *testing.T, d *testDaemon, id string) []string {
	t.Helper()
	evs, err := d.admin.ListAudit(context.Background(), client.AuditFilter{Target: id, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs.Items {
		if strings.HasPrefix(ev.Action, "device.") {
			out = append(out, ev.Action)
		}
	}
	return out
}

// financeBlocksEUCLEAK is a policy whose finance rule blocks keys in
// YSA-2024-03's firmware range.
const financeBlocksEUCLEAK = "version: 1\nrules:\n- name: finance\n  match: {groups: [finance]}\n  require:\n    block_advisories: [YSA-2024-03]\n"

// applyPolicy applies doc as a security officer would, with their own key
// elsewhere; the daemon's domain stands in for them here.
func applyPolicy(t *testing.T, d *testDaemon, doc, comment string) {
	t.Helper()
	if _, err := d.svc.ApplyPolicy(context.Background(), core.System, api.PolicyDocument{Document: doc, Comment: comment}); err != nil {
		t.Fatal(err)
	}
}

// TestAKeyThePolicyRefusesIsNotTouchedEvenWithReset: erin's key is in a
// blocked advisory's firmware range and was used before (its own PIN and
// a key in slot 9a). The desk runs provision with --reset: keyfleetd's
// pre-flight refuses it for the policy's rule before the agent changes
// anything, so the old PIN and key are still on it, and the enrolment the
// agent opened is cancelled.
func TestAKeyThePolicyRefusesIsNotTouchedEvenWithReset(t *testing.T) {
	ca, _ := vkey.NewCA(nil)
	plug(t, vkey.Options{CA: ca, Serial: 40000152, Firmware: [3]byte{5, 4, 3}})
	d := startDaemon(t, ca.Root())
	token := d.deskToken(t)
	d.admin.CreateUser(context.Background(), api.CreateUser{Username: "erin", Groups: []string{"finance"}})
	applyPolicy(t, d, financeBlocksEUCLEAK, "finance keys must be fixed")
	before := usedBefore(t, "11223344")

	out, errOut, code := agentCmd(t, d, token, "", "provision", "--reader", pcsc.Slots[0].Reader, "--user", "erin", "--reset", "--pin-file", writePIN(t, "24681357"))
	for _, want := range []string{"refused this key before anything on it was changed", "YSA-2024-03", "rule finance", "a key the policy accepts"} {
		if code != 1 || !strings.Contains(errOut, want) {
			t.Fatalf("provisioning a key the policy refuses: exit %d, want %q in\n%s%s", code, want, out, errOut)
		}
	}
	if after := usedBefore(t, "11223344"); !after.Equal(before) {
		t.Fatal("the key in slot 9a changed: the refused key was touched")
	}
	assertNothingHalfDone(t, d, "erin", false)
}

// usedBefore opens the key in slot 0 with piv-go: the first time it
// generates a key in slot 9a and sets pin, as a key someone used before;
// every time it checks pin still works and returns the 9a key, as the
// key attests it.
func usedBefore(t *testing.T, pin string) interface{ Equal(crypto.PublicKey) bool } {
	t.Helper()
	yk, err := vkeytest.OpenWhenReady(pcsc.Slots[0].Reader)
	if err != nil {
		t.Fatal(err)
	}
	defer yk.Close()
	if _, err := yk.Attest(piv.SlotAuthentication); err != nil {
		if _, err := yk.GenerateKey(piv.DefaultManagementKey, piv.SlotAuthentication, piv.Key{Algorithm: piv.AlgorithmEC256, PINPolicy: piv.PINPolicyOnce, TouchPolicy: piv.TouchPolicyNever}); err != nil {
			t.Fatal(err)
		}
		if err := yk.SetPIN(piv.DefaultPIN, pin); err != nil {
			t.Fatal(err)
		}
	}
	if err := yk.VerifyPIN(pin); err != nil {
		t.Fatalf("the key's PIN: %v", err)
	}
	cert, err := yk.Attest(piv.SlotAuthentication)
	if err != nil {
		t.Fatal(err)
	}
	return cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
}

// TestARefusedProvisioningLeavesTheKeyForTheNextRun: the security officer
// blocks the advisory erin's key is affected by while the desk sets the
// key up (after the pre-flight passed), so keyfleetd refuses it at
// completion: the agent puts the key back to factory settings and says
// so, and the next run, for frank, succeeds without --reset.
func TestARefusedProvisioningLeavesTheKeyForTheNextRun(t *testing.T) {
	ca, _ := vkey.NewCA(nil)
	var tighten func()
	var once sync.Once
	plug(t, vkey.Options{CA: ca, Serial: 40000151, Firmware: [3]byte{5, 4, 3}, OnTouch: func() { once.Do(tighten) }})
	d := startBoth(t, kindsConfig{piv: pivkind.Config{Roots: []*x509.Certificate{ca.Root()}}})
	tighten = func() { applyPolicy(t, d, financeBlocksEUCLEAK, "finance keys must be fixed") }
	token := d.deskToken(t)
	ctx := context.Background()
	d.admin.CreateUser(ctx, api.CreateUser{Username: "erin", Groups: []string{"finance"}})
	d.admin.CreateUser(ctx, api.CreateUser{Username: "frank"})
	reader := []string{"--reader", pcsc.Slots[0].Reader}
	out, errOut, code := agentCmd(t, d, token, "", append([]string{"provision", "--user", "erin", "--pin-file", writePIN(t, "24681357")}, reader...)...)
	if code != 1 || !strings.Contains(errOut, "YSA-2024-03") || !strings.Contains(errOut, "put back to factory settings") ||
		strings.Contains(errOut, "with --reset") || strings.Contains(out+errOut, "24681357") {
		t.Fatalf("erin's refused key: exit %d\n%s%s", code, out, errOut)
	}
	if !keyIsFresh(t) {
		t.Fatal("the refused key was left changed")
	}
	assertNothingHalfDone(t, d, "erin", true)
	mustAgent(t, d, token, append([]string{"provision", "--user", "frank", "--pin-file", writePIN(t, "13572468")}, reader...)...)
}
