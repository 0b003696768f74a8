package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	agentfido2 "github.com/keyfleet/keyfleet/agent/fido2"
	"github.com/keyfleet/keyfleet/agent/vkey"
	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	fido2kind "github.com/keyfleet/keyfleet/daemon/kinds/fido2"
	pivkind "github.com/keyfleet/keyfleet/daemon/kinds/piv"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

func TestActivateReplacesTheHandoverPIN(t *testing.T) {
	fca, _ := agentfido2.NewCA()
	d := startBoth(t, kindsConfig{fido2: fido2kind.Config{Roots: []*x509.Certificate{fca.Root()}}})
	token := d.enrollerToken(t)
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
	ct, _ := d.admin.CreateToken(ctx, api.CreateToken{User: "ivy", Name: "laptop"})
	userToken := filepath.Join(t.TempDir(), "ivy.token")
	os.WriteFile(userToken, []byte(ct.Secret), 0o600)
	// A wrong hand-over PIN first: the retries are shown, the PIN is not.
	out, errOut, code = agentCmd(t, d, userToken, "00000000\n13572468\n13572468\n", "activate", "--soft-fido2", soft)
	if code != 1 || !strings.Contains(errOut, "7 tries left") || strings.Contains(out+errOut, "13572468") {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	out, errOut, code = agentCmd(t, d, userToken, handover+"\n13572468\n13572468\n", "activate", "--soft-fido2", soft)
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

func TestEnrollWithACodeAgainstAFakeDaemon(t *testing.T) {
	fca, _ := agentfido2.NewCA()
	kind, _ := fido2kind.New(fido2kind.Config{RPID: "keyfleet.test", Origins: []string{testOrigin}, Roots: []*x509.Certificate{fca.Root()}})
	mux := http.NewServeMux()
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	challenge := make([]byte, 32)
	rand.Read(challenge)
	var enrolState []byte
	mux.HandleFunc("POST /v1/passes/redeem", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Errorf("the code was sent with a token")
		}
		json.NewEncoder(w).Encode(api.RedeemedPass{Token: "kft_pass_1", UserID: "usr_jo", Username: "jo", ExpiresAt: time.Now().Add(time.Hour), Kinds: []string{"fido2"}})
	})
	mux.HandleFunc("POST /v1/enrolments", func(w http.ResponseWriter, r *http.Request) {
		begun, _ := kind.BeginEnrol(r.Context(), sdkBegin("usr_jo", challenge))
		enrolState = begun.State
		params, _ := json.Marshal(begun.Params)
		json.NewEncoder(w).Encode(api.Enrolment{ID: "enr_1", UserID: "usr_jo", Kind: "fido2", Challenge: challenge, Params: params})
	})
	mux.HandleFunc("POST /v1/enrolments/{id}/complete", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer kft_pass_1" {
			t.Errorf("completed without the pass token")
		}
		var in api.CompleteEnrolment
		json.NewDecoder(r.Body).Decode(&in)
		if _, err := kind.FinishEnrol(r.Context(), sdkFinish(challenge, enrolState, in.Payload)); err != nil {
			t.Errorf("finish: %v", err)
		}
		json.NewEncoder(w).Encode(api.Factor{ID: "fac_1", Kind: "fido2", State: api.FactorActive})
	})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	soft := softKey(t, fca, 40000006)
	stdin, lineIn = strings.NewReader("97531864\n97531864\n"), nil
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"enroll", "--server", srv.URL, "--ca", ca, "--code", "ABCD-EFGH", "--piv=false", "--fido2", "--soft-fido2", soft}, &out, &errb, func(string) string { return "" })
	if code != 0 || !strings.Contains(out.String(), "factor fac_1") || strings.Contains(out.String()+errb.String(), "97531864") {
		t.Fatalf("exit %d: %s %s", code, out.String(), errb.String())
	}
}

func TestBatchResumesWithoutProvisioningAKeyTwice(t *testing.T) {
	ca, _ := vkey.NewCA(nil)
	d := startBoth(t, kindsConfig{piv: pivkind.Config{Roots: []*x509.Certificate{ca.Root()}}})
	token := d.enrollerToken(t)
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

func sdkBegin(user string, challenge []byte) sdk.BeginEnrolRequest {
	return sdk.BeginEnrolRequest{User: sdk.User{ID: user, Username: "jo"}, Challenge: challenge}
}

func sdkFinish(challenge, state, payload []byte) sdk.FinishEnrolRequest {
	return sdk.FinishEnrolRequest{Challenge: challenge, State: state, Response: payload}
}
