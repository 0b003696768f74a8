package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/agent"
	agentfido2 "github.com/keyfleet/keyfleet/agent/fido2"
	agentpiv "github.com/keyfleet/keyfleet/agent/piv"
	"github.com/keyfleet/keyfleet/agent/vkey"
	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	fido2kind "github.com/keyfleet/keyfleet/daemon/kinds/fido2"
	pivkind "github.com/keyfleet/keyfleet/daemon/kinds/piv"
)

func TestProvisioningFailuresLeaveNothingBehind(t *testing.T) {
	ca, _ := vkey.NewCA(nil)
	fca, _ := agentfido2.NewCA()
	other, _ := agentfido2.NewCA()
	trustAll := kindsConfig{piv: pivkind.Config{Roots: []*x509.Certificate{ca.Root()}}, fido2: fido2kind.Config{Roots: []*x509.Certificate{fca.Root()}, RequireAttestation: true}}
	tests := []struct {
		name     string
		card     vkey.Options
		kinds    kindsConfig
		args     []string
		pull     bool
		wantErr  string
		openLeft bool // the enrolment was created and stays open
	}{
		{name: "a FIDO2 key from an untrusted root", kinds: kindsConfig{piv: trustAll.piv, fido2: fido2kind.Config{Roots: []*x509.Certificate{other.Root()}, RequireAttestation: true}},
			args: []string{"--piv=false", "--fido2"}, wantErr: "does not chain to a trusted root", openLeft: true},
		{name: "a PIV key whose firmware is below the policy minimum", card: vkey.Options{Firmware: [3]byte{5, 4, 3}},
			kinds: kindsConfig{piv: pivkind.Config{Roots: []*x509.Certificate{ca.Root()}, Defaults: pivkind.Requirements{MinFirmware: "5.7.0"}}, fido2: trustAll.fido2},
			args:  []string{"--reset"}, wantErr: "below the minimum", openLeft: true},
		{name: "a FIDO2 key pulled out while it blinks", kinds: trustAll, args: []string{"--piv=false", "--fido2"}, pull: true, wantErr: "removed", openLeft: true},
		{name: "a PIV key from an untrusted root", kinds: kindsConfig{fido2: trustAll.fido2}, args: []string{"--reset"}, wantErr: "untrusted", openLeft: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.card.CA = ca
			plug(t, tt.card)
			d := startBoth(t, tt.kinds)
			token := d.deskToken(t)
			ctx := context.Background()
			d.admin.CreateUser(ctx, api.CreateUser{Username: "erin"})
			soft := softKey(t, fca, 40000003)
			if tt.pull {
				saved := fido2Opener
				fido2Opener = agentfido2.SoftOpener{Key: pulledWhileBlinking(t, soft)}
				t.Cleanup(func() { fido2Opener = saved })
				soft = ""
			}
			args := append([]string{"provision", "--reader", pcsc.Slots[0].Reader, "--user", "erin", "--pin-file", writePIN(t, "24681357")}, tt.args...)
			if soft != "" {
				args = append(args, "--soft-fido2", soft)
			}
			out, errOut, code := agentCmd(t, d, token, "", args...)
			if code != 1 || !strings.Contains(errOut, tt.wantErr) || strings.Contains(out+errOut, "24681357") {
				t.Fatalf("exit %d: %s %s", code, out, errOut)
			}
			assertNothingHalfDone(t, d, "erin", tt.openLeft)
		})
	}
}

// pulledWhileBlinking is a software key that is pulled out when it asks
// for a touch.
func pulledWhileBlinking(t *testing.T, path string) *agentfido2.Soft {
	var k *agentfido2.Soft
	k, err := agentfido2.NewSoft(agentfido2.SoftOptions{Path: path, OnTouch: func() { k.Remove() }})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func assertNothingHalfDone(t *testing.T, d *testDaemon, user string, openLeft bool) {
	t.Helper()
	ctx := context.Background()
	f, _ := d.admin.ListFactors(ctx, client.FactorFilter{User: user})
	dev, _ := d.admin.ListDevices(ctx, client.DeviceFilter{User: user})
	e, _ := d.admin.ListEnrolments(ctx, client.EnrolmentFilter{User: user})
	if len(f.Items) != 0 || len(dev.Items) != 0 {
		t.Fatalf("a failed provisioning left factors %+v devices %+v", f.Items, dev.Items)
	}
	for _, en := range e.Items {
		// An enrolment the agent opened for a key the daemon refused up
		// front is cancelled; one refused later stays open for another key.
		if en.State != api.EnrolmentCancelled && (en.State != api.EnrolmentOpen || !openLeft) {
			t.Fatalf("enrolment %+v", en)
		}
	}
}

func TestAnEnrolmentChallengeCannotBeReplayed(t *testing.T) {
	fca, _ := agentfido2.NewCA()
	d := startBoth(t, kindsConfig{fido2: fido2kind.Config{Roots: []*x509.Certificate{fca.Root()}}})
	ctx := context.Background()
	d.admin.CreateUser(ctx, api.CreateUser{Username: "finn"})
	key, _ := agentfido2.NewSoft(agentfido2.SoftOptions{CA: fca})
	key.SetPIN("4711")
	e, err := d.admin.CreateEnrolment(ctx, api.CreateEnrolment{User: "finn", Kind: "fido2"})
	if err != nil {
		t.Fatal(err)
	}
	opts, _, _ := agent.CreationOptions(e.Params)
	reg, err := agent.Register(key, opts, agent.Ceremony{Origin: testOrigin, PIN: "4711"})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(reg)
	if _, err := d.admin.CompleteEnrolment(ctx, e.ID, api.CompleteEnrolment{Payload: body}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.admin.CompleteEnrolment(ctx, e.ID, api.CompleteEnrolment{Payload: body}); err == nil || !strings.Contains(err.Error(), "completed") {
		t.Fatalf("the same enrolment completed twice: %v", err)
	}
	e2, _ := d.admin.CreateEnrolment(ctx, api.CreateEnrolment{User: "finn", Kind: "fido2"})
	if _, err := d.admin.CompleteEnrolment(ctx, e2.ID, api.CompleteEnrolment{Payload: body}); err == nil || !strings.Contains(err.Error(), "another challenge") {
		t.Fatalf("a registration replayed into a new enrolment: %v", err)
	}
}

func TestTouchNeverWhereAlwaysIsRequiredIsRejected(t *testing.T) {
	ca, _ := vkey.NewCA(nil)
	plug(t, vkey.Options{CA: ca})
	d := startBoth(t, kindsConfig{piv: pivkind.Config{Roots: []*x509.Certificate{ca.Root()}}})
	ctx := context.Background()
	d.admin.CreateUser(ctx, api.CreateUser{Username: "gus"})
	tok, err := agentpiv.Opener{}.Open(pcsc.Slots[0].Reader)
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()
	_, err = agent.ProvisionPIV(ctx, d.admin, touchNever{tok}, agent.ProvisionOptions{User: "gus", PIN: "24681357", Reset: true})
	if err == nil || !strings.Contains(err.Error(), "touch policy") {
		t.Fatalf("error %v", err)
	}
	assertNothingHalfDone(t, d, "gus", true)
}

// touchNever generates keys with touch policy never, whatever the
// enrolment asks: a key set up by another tool.
type touchNever struct{ agent.PIVToken }

func (n touchNever) GenerateKey(mk []byte, spec agent.KeySpec) (crypto.PublicKey, error) {
	spec.TouchPolicy = "never"
	return n.PIVToken.GenerateKey(mk, spec)
}

func TestAWrongPINShowsTheRetriesLeft(t *testing.T) {
	fca, _ := agentfido2.NewCA()
	d := startBoth(t, kindsConfig{fido2: fido2kind.Config{Roots: []*x509.Certificate{fca.Root()}}})
	token := d.deskToken(t)
	d.admin.CreateUser(context.Background(), api.CreateUser{Username: "hana"})
	soft := softKey(t, fca, 40000004)
	if _, errOut, code := agentCmd(t, d, token, "", "provision", "--piv=false", "--fido2", "--soft-fido2", soft, "--user", "hana", "--pin-file", writePIN(t, "24681357")); code != 0 {
		t.Fatal(errOut)
	}
	out, errOut, code := agentCmd(t, d, d.tokenFile, "11112222\n", "verify", "--soft-fido2", soft, "--user", "hana", "--kind", "fido2")
	if code != 1 || !strings.Contains(errOut, "wrong PIN: 7 tries left") || strings.Contains(out+errOut, "11112222") || strings.Contains(out+errOut, "24681357") {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
}
