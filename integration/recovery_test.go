package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/plugins/totp"
)

// totpDaemon starts keyfleetd with the TOTP plugin pinned.
func totpDaemon(t *testing.T) (*daemon, string) {
	t.Helper()
	dir := initData(t)
	plugins, sum := pluginDir(t)
	cfg := fmt.Sprintf("plugins:\n  dir: %s\n  plugins:\n    - name: keyfleet-plugin-totp\n      sha256: %s\n", plugins, sum)
	os.WriteFile(filepath.Join(dir, "keyfleetd.yaml"), []byte(cfg), 0o600)
	return start(t, dir), dir
}

// enrolTOTP enrols a TOTP factor for user with token (an admin's or a
// pass's). The seed is shown only to the user: an admin's enrolment for
// someone else comes with an enrolment code instead, which the user
// redeems to see the seed and complete it, and then gets the first
// factor's recovery codes.
func (d *daemon) enrolTOTP(token, user string) api.Factor {
	d.t.Helper()
	var en api.Enrolment
	if code := d.call(token, "POST", "/v1/enrolments", api.CreateEnrolment{User: user, Kind: "totp"}, &en); code != 201 {
		d.t.Fatalf("TOTP enrolment for %s answered %d", user, code)
	}
	if en.Display["secret"] == "" {
		var red api.RedeemedEnrolment
		if code := d.call("", "POST", "/v1/enrolments/redeem", api.RedeemEnrolmentCode{Code: en.Code}, &red); code != 201 || red.Enrolment.Display["secret"] == "" {
			d.t.Fatalf("redeeming the TOTP enrolment code for %s answered %d", user, code)
		}
		token, en = red.Token, red.Enrolment
	}
	code, _ := totp.Code(en.Display["secret"], "SHA1", 6, 30, time.Now())
	var f api.Factor
	body := api.CompleteEnrolment{Payload: json.RawMessage(fmt.Sprintf(`{"code":%q}`, code))}
	if status := d.call(token, "POST", "/v1/enrolments/"+en.ID+"/complete", body, &f); status != 201 {
		d.t.Fatalf("completing TOTP enrolment answered %d", status)
	}
	return f
}

func TestALostKeyIsReplacedThroughARecoveryCaseFromTheCLI(t *testing.T) {
	d, dir := totpDaemon(t)
	admin := adminToken(t, dir)
	root := newCLI(t)
	root.login(d, filepath.Join(dir, "admin.token"))
	root.must("users", "create", "rosa")
	// The administrator works the case, as the helpdesk would (a helpdesk
	// person signs in with their own key; nobody mints their token).
	desk := root

	lost := d.enrolTOTP(admin, "rosa")
	if len(lost.RecoveryCodes) != 10 {
		t.Fatalf("the first enrolment gave %d recovery codes", len(lost.RecoveryCodes))
	}
	var c api.RecoveryCase
	json.Unmarshal([]byte(desk.must("recovery", "open", "--user", "rosa", "--reason", "phone stolen", "--suspend", "-o", "json")), &c)
	desk.must("recovery", "code", c.ID, lost.RecoveryCodes[0])
	var pass api.IssuedPass
	json.Unmarshal([]byte(desk.must("recovery", "pass", c.ID, "--ttl", "15m", "-o", "json")), &pass)

	var red api.RedeemedPass
	if status := d.call("", "POST", "/v1/passes/redeem", api.RedeemPass{Code: pass.Code}, &red); status != 201 {
		t.Fatalf("redeeming the pass answered %d", status)
	}
	if status := d.call(red.Token, "GET", "/v1/users", nil, nil); status != 403 {
		t.Fatalf("the pass token listing users answered %d, want 403", status)
	}
	replacement := d.enrolTOTP(red.Token, "rosa")
	if status := d.call("", "POST", "/v1/passes/redeem", api.RedeemPass{Code: pass.Code}, nil); status != 401 {
		t.Fatalf("redeeming the pass twice answered %d, want 401", status)
	}
	var old api.Factor
	d.call(admin, "GET", "/v1/factors/"+lost.ID, nil, &old)
	json.Unmarshal([]byte(desk.must("recovery", "show", c.ID, "-o", "json")), &c)
	if old.State != api.FactorRevoked || c.State != api.CaseClosed || c.NewFactorID != replacement.ID {
		t.Fatalf("after recovery: old factor %s, case %+v", old.State, c)
	}
	if code, _, _ := desk.run("recovery", "code", c.ID, lost.RecoveryCodes[0]); code == 0 {
		t.Fatal("a closed case accepted a code")
	}
	if out := root.must("audit", "verify"); !strings.Contains(out, "intact") {
		t.Fatalf("audit verify: %s", out)
	}
}

func TestBreakGlassFromShareFilesActsWithoutASecondApproverOnce(t *testing.T) {
	d, dir := totpDaemon(t)
	admin := adminToken(t, dir)
	d.call(admin, "POST", "/v1/users", api.CreateUser{Username: "sam"}, nil)
	f := d.enrolTOTP(admin, "sam")
	d.enrolTOTP(admin, "sam")
	shares, _ := filepath.Glob(filepath.Join(dir, "breakglass", "share-*-of-5.txt"))
	if len(shares) != 5 {
		t.Fatalf("init wrote %d share files", len(shares))
	}
	bg := newCLI(t)
	ca := filepath.Join(dir, "tls", "cert.pem")
	if code, _, _ := bg.run("breakglass", "use", "--server", d.url, "--ca", ca, "--share", shares[0], "--share", shares[1], "--reason", "test"); code == 0 {
		t.Fatal("two shares of three opened a session")
	}
	bg.must("breakglass", "use", "--server", d.url, "--ca", ca, "--share", shares[0], "--share", shares[2], "--share", shares[4], "--reason", "all admins locked out", "--duration", "10m")
	// whoami works in the session: it names the session, not a user record.
	if who := bg.must("whoami"); !strings.Contains(who, "User:   break-glass") || !strings.Contains(who, "Auth:   breakglass") {
		t.Fatalf("whoami in a break-glass session:\n%s", who)
	}
	var a api.Approval
	json.Unmarshal([]byte(bg.must("factors", "revoke", f.ID, "--reason", "emergency", "-o", "json")), &a)
	var got api.Factor
	d.call(admin, "GET", "/v1/factors/"+f.ID, nil, &got)
	if got.State != api.FactorRevoked {
		t.Fatalf("in break-glass the revoke left the factor %s", got.State)
	}
	bg.must("breakglass", "end")
	if code, _, _ := bg.run("users", "list"); code != 3 {
		t.Fatalf("after end the session token still works (exit %d)", code)
	}
	var st api.BreakGlassStatus
	d.call(admin, "GET", "/v1/breakglass", nil, &st)
	if !st.NeedsRotation {
		t.Fatal("after use the credential does not need rotation")
	}
	export := d.get(admin, "/v1/audit/export")
	for _, want := range []string{`"breakglass.failed"`, `"breakglass.start"`, `"breakglass.end"`, `"breakglass":"true"`} {
		if !strings.Contains(export, want) {
			t.Errorf("the audit log has no %s", want)
		}
	}
}
