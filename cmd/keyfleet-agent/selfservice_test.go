package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	agentfido2 "github.com/keyfleet/keyfleet/agent/fido2"
	"github.com/keyfleet/keyfleet/agent/vkey"
	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	fido2kind "github.com/keyfleet/keyfleet/daemon/kinds/fido2"
	pivkind "github.com/keyfleet/keyfleet/daemon/kinds/piv"
)

func TestActivateReplacesTheHandoverPIN(t *testing.T) {
	fca, _ := agentfido2.NewCA()
	d := startBoth(t, kindsConfig{fido2: fido2kind.Config{Roots: []*x509.Certificate{fca.Root()}}})
	token := d.deskToken(t)
	ctx := context.Background()
	d.admin.CreateUser(ctx, api.CreateUser{Username: "ivy"})
	soft := softKey(t, fca, 40000005)
	out, errOut, code := agentCmd(t, d, token, "", "provision", "--piv=false", "--fido2", "--soft-fido2", soft, "--user", "ivy")
	if code != 0 || !strings.Contains(out, "state fido2 pending") {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	handover := strings.TrimSpace(out[strings.LastIndex(out, ":")+1:])
	pg, _ := d.admin.ListFactors(ctx, client.FactorFilter{User: "ivy"})
	var pub struct {
		CredentialID string `json:"credential_id"`
	}
	json.Unmarshal(pg.Items[0].Public, &pub)
	// Ivy has no active factor yet, so no token of her own: she activates
	// the key at the desk, typing the hand-over PIN and her new one, with
	// the desk's token (an administrator may activate a plain user's key).
	userToken := d.tokenFile
	// A wrong hand-over PIN first: the retries are shown, the PIN is not.
	out, errOut, code = agentCmd(t, d, userToken, "00000000\n13572468\n13572468\n", "activate", "--user", "ivy", "--soft-fido2", soft)
	if code != 1 || !strings.Contains(errOut, "7 tries left") || strings.Contains(out+errOut, "13572468") {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	out, errOut, code = agentCmd(t, d, userToken, handover+"\n13572468\n13572468\n", "activate", "--user", "ivy", "--soft-fido2", soft)
	if code != 0 || !strings.Contains(out, "state active") || strings.Contains(out+errOut, "13572468") || strings.Contains(out+errOut, handover) {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	key, _ := agentfido2.NewSoft(agentfido2.SoftOptions{Path: soft})
	if err := key.ChangePIN("13572468", "24681357"); err != nil {
		t.Fatalf("the new PIN is not on the key: %v", err)
	}
	if f, _ := d.admin.GetFactor(ctx, pg.Items[0].ID); f.State != api.FactorActive || f.LastUsedAt == nil {
		t.Fatalf("after activation keyfleetd has the factor %s", f.State)
	}
}

func TestBatchResumesWithoutProvisioningAKeyTwice(t *testing.T) {
	ca, _ := vkey.NewCA(nil)
	d := startBoth(t, kindsConfig{piv: pivkind.Config{Roots: []*x509.Certificate{ca.Root()}}})
	token := d.deskToken(t)
	ctx := context.Background()
	for _, u := range []string{"kai", "lea"} {
		d.admin.CreateUser(ctx, api.CreateUser{Username: u})
	}
	dir := t.TempDir()
	batch := filepath.Join(dir, "users.csv")
	os.WriteFile(batch, []byte("user,label\nkai,laptop key\nlea,\n"), 0o600)
	plug(t, vkey.Options{CA: ca, Serial: 40000010})
	// First run: kai's key, then the operator stops.
	out, errOut, code := agentCmd(t, d, token, "\nq\n", "provision", "--reader", pcsc.Slots[0].Reader, "--batch", batch)
	if code != 1 || !strings.Contains(errOut, "[1/2] kai: done") || !strings.Contains(out, "hand-over PIN") {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	// Resumed with the same key still inserted: kai is skipped, and the
	// key is refused for lea.
	_, errOut, code = agentCmd(t, d, token, "\n", "provision", "--reader", pcsc.Slots[0].Reader, "--batch", batch)
	if code != 1 || !strings.Contains(errOut, "kai: already provisioned") || !strings.Contains(errOut, "already provisioned for kai") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	results, _ := os.ReadFile(batch + ".results.csv")
	if !strings.Contains(string(results), "kai,done,40000010") || !strings.Contains(string(results), "lea,failed") {
		t.Fatalf("results %s", results)
	}
	pg, _ := d.admin.ListFactors(ctx, client.FactorFilter{User: "kai"})
	if len(pg.Items) != 1 || pg.Items[0].Label != "laptop key" {
		t.Fatalf("kai's factors %+v", pg.Items)
	}
}
