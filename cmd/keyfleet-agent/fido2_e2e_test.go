package main

import (
	"bytes"
	"context"
	"crypto/x509"

	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	agentfido2 "github.com/keyfleet/keyfleet/agent/fido2"
	"github.com/keyfleet/keyfleet/agent/vkey"
	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	"github.com/keyfleet/keyfleet/daemon"
	fido2kind "github.com/keyfleet/keyfleet/daemon/kinds/fido2"
	pivkind "github.com/keyfleet/keyfleet/daemon/kinds/piv"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

const testOrigin = "https://keyfleet.test"

// kindsConfig configures both hardware kinds of a test daemon.
type kindsConfig struct {
	piv   pivkind.Config
	fido2 fido2kind.Config
}

// startBoth is startDaemon with the piv and fido2 kinds.
func startBoth(t testing.TB, kc kindsConfig) *testDaemon {
	t.Helper()
	return serve(t, bothKinds(t, kc))
}

// bothKinds is the daemon options with the piv and fido2 kinds.
func bothKinds(t testing.TB, kc kindsConfig) daemon.Options {
	t.Helper()
	pk, err := pivkind.New(kc.piv)
	if err != nil {
		t.Fatal(err)
	}
	kc.fido2.RPID, kc.fido2.Origins = "keyfleet.test", []string{testOrigin}
	fk, err := fido2kind.New(kc.fido2)
	if err != nil {
		t.Fatal(err)
	}
	return daemon.Options{Kinds: []sdk.Factor{pk, fk}}
}

// softKey makes a software FIDO2 key with a state file.
func softKey(t testing.TB, ca *agentfido2.CA, serial uint32) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fido2.json")
	if _, err := agentfido2.NewSoft(agentfido2.SoftOptions{CA: ca, Serial: serial, Enterprise: true, Path: path}); err != nil {
		t.Fatal(err)
	}
	return path
}

// agentCmd runs keyfleet-agent with stdin.
func agentCmd(t testing.TB, d *testDaemon, token, in string, args ...string) (string, string, int) {
	t.Helper()
	stdin, lineIn = strings.NewReader(in), nil
	var out, errb bytes.Buffer
	all := append([]string{args[0], "--server", d.addr, "--token-file", token, "--ca", d.caFile}, args[1:]...)
	code := run(context.Background(), all, &out, &errb, func(string) string { return "" })
	return out.String(), errb.String(), code
}

func writePIN(t testing.TB, pin string) string {
	p := filepath.Join(t.TempDir(), "pin")
	os.WriteFile(p, []byte(pin+"\n"), 0o600)
	return p
}

func TestProvisionPIVAndFIDO2VerifyAndReportLost(t *testing.T) {
	ca, _ := vkey.NewCA(nil)
	card := plug(t, vkey.Options{CA: ca, Serial: 40000002})
	fca, _ := agentfido2.NewCA()
	soft := softKey(t, fca, 40000002) // the same YubiKey's FIDO2 applet
	d := startBoth(t, kindsConfig{piv: pivkind.Config{Roots: []*x509.Certificate{ca.Root()}},
		fido2: fido2kind.Config{Roots: []*x509.Certificate{fca.Root()}, RequireAttestation: true, EnterpriseAttestation: true}})
	token := d.deskToken(t)
	ctx := context.Background()
	d.admin.CreateUser(ctx, api.CreateUser{Username: "dora"})
	before, start := card.APDUs(), time.Now()
	out, errOut, code := agentCmd(t, d, token, "", "provision", "--reader", pcsc.Slots[0].Reader, "--user", "dora", "--fido2", "--soft-fido2", soft, "--pin-file", writePIN(t, "24681357"))
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	t.Logf("provisioned one virtual key (PIV + FIDO2) in %v with %d APDUs", time.Since(start).Round(time.Millisecond), card.APDUs()-before)
	if !strings.Contains(errOut, "Touch your key now") || strings.Contains(out+errOut, "24681357") {
		t.Fatalf("output %q %q", out, errOut)
	}
	pg, _ := d.admin.ListFactors(ctx, client.FactorFilter{User: "dora"})
	if len(pg.Items) != 2 || pg.Items[0].DeviceID == "" || pg.Items[0].DeviceID != pg.Items[1].DeviceID {
		t.Fatalf("factors %+v: both applets of one key should be one device", pg.Items)
	}
	for _, kind := range []string{"piv", "fido2"} {
		out, errOut, code = agentCmd(t, d, d.tokenFile, "24681357\n", "verify", "--reader", pcsc.Slots[0].Reader, "--soft-fido2", soft, "--user", "dora", "--kind", kind)
		if code != 0 || !strings.Contains(out, "verified dora: "+kind) || strings.Contains(out+errOut, "24681357") {
			t.Fatalf("verify %s: exit %d: %s %s", kind, code, out, errOut)
		}
	}
	dev, err := d.admin.ReportDeviceLost(ctx, pg.Items[0].DeviceID, "left on a train")
	if err != nil || dev.State != api.DeviceLost {
		t.Fatalf("%+v %v", dev, err)
	}
	for _, f := range pg.Items {
		if g, _ := d.admin.GetFactor(ctx, f.ID); g.State != api.FactorRevoked {
			t.Fatalf("factor %s is %s after the key was lost", f.ID, g.State)
		}
	}
}

// TestProvisionAndVerifyFIDO2ThroughPCSC: without --soft-fido2 and
// without USB HID keys, the agent reaches the virtual key's FIDO applet
// through pcscd (CTAP2 in NFCCTAP_MSG APDUs), as it would an NFC key.
func TestProvisionAndVerifyFIDO2ThroughPCSC(t *testing.T) {
	ca, _ := vkey.NewCA(nil)
	fca, _ := agentfido2.NewCA()
	soft, err := agentfido2.NewSoft(agentfido2.SoftOptions{CA: fca, Serial: 40000003, Enterprise: true})
	if err != nil {
		t.Fatal(err)
	}
	card := plug(t, vkey.Options{CA: ca, Serial: 40000003, FIDO2: soft})
	d := startBoth(t, kindsConfig{piv: pivkind.Config{Roots: []*x509.Certificate{ca.Root()}},
		fido2: fido2kind.Config{Roots: []*x509.Certificate{fca.Root()}, RequireAttestation: true, EnterpriseAttestation: true}})
	token := d.deskToken(t)
	ctx := context.Background()
	d.admin.CreateUser(ctx, api.CreateUser{Username: "erin"})
	before, start := card.APDUs(), time.Now()
	out, errOut, code := agentCmd(t, d, token, "", "provision", "--reader", pcsc.Slots[0].Reader, "--user", "erin", "--fido2", "--pin-file", writePIN(t, "24681357"))
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	t.Logf("provisioned one virtual key (PIV + FIDO2, both through pcscd) in %v with %d APDUs", time.Since(start).Round(time.Millisecond), card.APDUs()-before)
	pg, _ := d.admin.ListFactors(ctx, client.FactorFilter{User: "erin"})
	if len(pg.Items) != 2 || pg.Items[0].DeviceID == "" || pg.Items[0].DeviceID != pg.Items[1].DeviceID {
		t.Fatalf("factors %+v: both applets of one key should be one device", pg.Items)
	}
	out, errOut, code = agentCmd(t, d, d.tokenFile, "24681357\n", "verify", "--user", "erin", "--kind", "fido2")
	if code != 0 || !strings.Contains(out, "verified erin: fido2") || strings.Contains(out+errOut, "24681357") {
		t.Fatalf("verify: exit %d: %s %s", code, out, errOut)
	}
	if soft.Counter() != 2 {
		t.Fatalf("sign counter %d: the credential and the assertion should both have gone through the card", soft.Counter())
	}
}
