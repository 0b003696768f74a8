package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/plugins/totp"
)

// pluginDir builds the TOTP plugin into a folder with an unpinned copy
// beside it, and returns the folder and the pinned binary's checksum.
func pluginDir(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "keyfleet-plugin-totp")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/keyfleet-plugin-totp").CombinedOutput(); err != nil {
		t.Fatalf("building the TOTP plugin: %v\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "keyfleet-plugin-rogue"), b, 0o755)
	sum := sha256.Sum256(b)
	return dir, hex.EncodeToString(sum[:])
}

func TestTOTPThroughThePluginAndTheVerificationAPI(t *testing.T) {
	dir := initData(t)
	plugins, sum := pluginDir(t)
	cfg := fmt.Sprintf("plugins:\n  dir: %s\n  plugins:\n    - name: keyfleet-plugin-totp\n      sha256: %s\n", plugins, sum)
	if err := os.WriteFile(filepath.Join(dir, "keyfleetd.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d := start(t, dir)
	admin := adminToken(t, dir)
	d.call(admin, "POST", "/v1/users", api.CreateUser{Username: "pat"}, nil)
	d.call(admin, "POST", "/v1/users", api.CreateUser{Username: "app", Kind: api.KindService}, nil)
	var tok api.CreatedToken
	d.call(admin, "POST", "/v1/tokens", api.CreateToken{User: "app", Name: "login-service"}, &tok)
	app := tok.Secret

	// The admin opens the enrolment; the seed is not shown to them but to
	// pat, who redeems its code and completes it.
	var en api.Enrolment
	if code := d.call(admin, "POST", "/v1/enrolments", api.CreateEnrolment{User: "pat", Kind: "totp"}, &en); code != 201 || en.Code == "" || en.Display["secret"] != "" {
		t.Fatalf("TOTP enrolment: %d %+v", code, en)
	}
	var red api.RedeemedEnrolment
	if code := d.call("", "POST", "/v1/enrolments/redeem", api.RedeemEnrolmentCode{Code: en.Code}, &red); code != 201 || red.Enrolment.Display["secret"] == "" {
		t.Fatalf("redeeming the enrolment code: %d", code)
	}
	seed := red.Enrolment.Display["secret"]
	now := time.Now()
	first, _ := totp.Code(seed, "SHA1", 6, 30, now)
	var f api.Factor
	body := api.CompleteEnrolment{Label: "phone", Payload: json.RawMessage(fmt.Sprintf(`{"code":%q}`, first))}
	if code := d.call(red.Token, "POST", "/v1/enrolments/"+en.ID+"/complete", body, &f); code != 201 || f.State != api.FactorActive {
		t.Fatalf("completing TOTP enrolment: %d %+v", code, f)
	}

	verify := func(code string) (int, api.VerifyResult) {
		var v api.Verification
		if status := d.call(app, "POST", "/v1/verify/begin", api.BeginVerify{User: "pat", Kinds: []string{"totp"}}, &v); status != 201 {
			return status, api.VerifyResult{}
		}
		var res api.VerifyResult
		status := d.call(app, "POST", "/v1/verify/finish", api.FinishVerify{ID: v.ID, FactorID: f.ID, Response: json.RawMessage(fmt.Sprintf(`{"code":%q}`, code))}, &res)
		return status, res
	}
	check := func(code string) (int, api.VerifyResult) {
		var res api.VerifyResult
		status := d.call(app, "POST", "/v1/verify", api.CheckVerify{User: "pat", Response: json.RawMessage(fmt.Sprintf(`{"code":%q}`, code))}, &res)
		return status, res
	}
	next, _ := totp.Code(seed, "SHA1", 6, 30, now.Add(30*time.Second))
	if status, res := check(next); status != 200 || !res.OK || res.FactorID != f.ID {
		t.Fatalf("a good code in one call: %d %+v", status, res)
	}
	// The same code again, by either path: the plugin's state refuses it.
	if _, res := verify(next); res.OK {
		t.Fatal("a code replayed through begin and finish was accepted")
	}
	if _, res := check(next); res.OK {
		t.Fatal("a code replayed in one call was accepted")
	}
	for range 3 {
		verify("000000")
	}
	if status, _ := verify(next); status != http.StatusTooManyRequests {
		t.Fatalf("after five failures begin answered %d, want 429", status)
	}

	metrics := d.get("", "/metrics")
	for _, want := range []string{`keyfleet_verifications_total{kind="totp",outcome="ok"} 1`,
		`keyfleet_verifications_total{kind="totp",outcome="failed"}`, `keyfleet_lockouts_total{what="user"} 1`,
		`keyfleet_enrolments_total{kind="totp",outcome="ok"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
	var v api.AuditVerification
	d.call(admin, "GET", "/v1/audit/verify", nil, &v)
	if !v.OK {
		t.Fatalf("audit chain: %+v", v)
	}
	export := d.get(admin, "/v1/audit/export")
	for _, action := range []string{`"plugin.refused"`, `"factor.verify"`, `"factor.verify_failed"`, `"user.lockout"`} {
		if !strings.Contains(export, action) {
			t.Errorf("the audit log has no %s", action)
		}
	}
	for where, text := range map[string]string{"the audit export": export, "the daemon log": d.log(),
		"the enrolment": d.get(admin, "/v1/enrolments/"+en.ID), "the factor": d.get(admin, "/v1/factors/"+f.ID)} {
		if strings.Contains(text, seed) {
			t.Errorf("the TOTP seed appears in %s", where)
		}
	}
}

// get returns a GET answer's body.
func (d *daemon) get(token, path string) string {
	d.t.Helper()
	req, _ := http.NewRequest("GET", d.url+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := d.http.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
