package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/internal/cli"
	"github.com/keyfleet/keyfleet/plugins/totp"
)

// oathtool computes the TOTP code of a base32 seed at a time with Debian's
// oathtool: an implementation keyfleet does not share code with.
func oathtool(t *testing.T, alg string, digits, period int, seed string, at time.Time) string {
	t.Helper()
	tool, err := exec.LookPath("oathtool")
	if err != nil {
		t.Fatal("oathtool is not installed: apt-get install oathtool (make deps installs it)")
	}
	out, err := exec.Command(tool, "--totp="+strings.ToLower(alg), fmt.Sprintf("--digits=%d", digits),
		fmt.Sprintf("--time-step-size=%ds", period), "--base32", "-N", fmt.Sprintf("@%d", at.Unix()), seed).Output()
	if err != nil {
		t.Fatalf("oathtool: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestATOTPFactorWithSHA256EightDigitsAndAMinuteStepMatchesOathtool: an
// enrolment asks for SHA-256, 8 digits and 60 s through POST
// /v1/enrolments; the otpauth URI says so, oathtool's code completes it,
// and a later oathtool code verifies, while the default SHA-1 code of the
// same seed does not.
func TestATOTPFactorWithSHA256EightDigitsAndAMinuteStepMatchesOathtool(t *testing.T) {
	d, dir := totpDaemon(t)
	admin := adminToken(t, dir)
	d.call(admin, "POST", "/v1/users", api.CreateUser{Username: "tess"}, nil)
	d.call(admin, "POST", "/v1/users", api.CreateUser{Username: "app", Kind: api.KindService}, nil)
	var tok api.CreatedToken
	d.call(admin, "POST", "/v1/tokens", api.CreateToken{User: "app", Name: "login-service"}, &tok)

	var en api.Enrolment
	opts := map[string]string{"algorithm": "SHA256", "digits": "8", "period": "60"}
	if code := d.call(admin, "POST", "/v1/enrolments", api.CreateEnrolment{User: "tess", Kind: "totp", Options: opts}, &en); code != 201 {
		t.Fatalf("an enrolment with options answered %d", code)
	}
	// The seed goes only to tess: she redeems the enrolment code.
	var red api.RedeemedEnrolment
	if code := d.call("", "POST", "/v1/enrolments/redeem", api.RedeemEnrolmentCode{Code: en.Code}, &red); code != 201 {
		t.Fatalf("redeeming tess's code answered %d", code)
	}
	en, holder := red.Enrolment, red.Token
	for _, q := range []string{"algorithm=SHA256", "digits=8", "period=60"} {
		if !strings.Contains(en.Display["uri"], q) {
			t.Fatalf("the otpauth URI %q lacks %s", en.Display["uri"], q)
		}
	}
	seed, now := en.Display["secret"], time.Now()
	first := oathtool(t, "SHA256", 8, 60, seed, now)
	if ours, _ := totp.Code(seed, "SHA256", 8, 60, now); ours != first || len(first) != 8 {
		t.Fatalf("oathtool says %s, keyfleet's TOTP %s", first, ours)
	}
	var f api.Factor
	body := api.CompleteEnrolment{Payload: json.RawMessage(fmt.Sprintf(`{"code":%q}`, first))}
	if code := d.call(holder, "POST", "/v1/enrolments/"+en.ID+"/complete", body, &f); code != 201 || f.State != api.FactorActive {
		t.Fatalf("completing with oathtool's code: %d %+v", code, f)
	}
	check := func(code string) bool {
		var res api.VerifyResult
		d.call(tok.Secret, "POST", "/v1/verify", api.CheckVerify{User: "tess", Response: json.RawMessage(fmt.Sprintf(`{"code":%q}`, code))}, &res)
		return res.OK
	}
	later := now.Add(60 * time.Second)
	if sha1, _ := totp.Code(seed, "SHA1", 6, 30, later); check(sha1) {
		t.Fatal("a SHA-1 six-digit code of the same seed verified")
	}
	if !check(oathtool(t, "SHA256", 8, 60, seed, later)) {
		t.Fatal("oathtool's code of the next minute did not verify")
	}
}

// TestThePolicyChoosesTOTPParametersAndRefusesWeakerOnes: a policy asking
// SHA-256, 8 digits and 60 s makes `keyfleet factors add-totp` enrol such
// an app without any flag (oathtool answers the prompt), and an enrolment
// asking SHA-1 against it is refused with the reason.
func TestThePolicyChoosesTOTPParametersAndRefusesWeakerOnes(t *testing.T) {
	plugins, sum := pluginDir(t)
	d, _, k, _ := founders(t, fmt.Sprintf("plugins:\n  dir: %s\n  plugins:\n    - name: keyfleet-plugin-totp\n      sha256: %s\n", plugins, sum))
	doc := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(doc, []byte("version: 1\nrules:\n  - name: everyone\n    match: {everyone: true}\n    require:\n"+
		"      totp: {algorithms: [SHA256], digits: [8], periods: [60]}\n"), 0o600)
	k.must("policy", "apply", doc, "--yes") // proved with the admin's key
	k.must("users", "create", "bea")
	// The seed goes only to bea: the admin hands her an enrolment code and
	// she adds the app with it.
	_, out, errOut := k.run("factors", "add-totp", "--user", "bea", "-o", "json")
	var en api.Enrolment
	if err := json.Unmarshal([]byte(out), &en); err != nil || en.Code == "" {
		t.Fatalf("add-totp for bea gave no enrolment code: %v\n%s%s", err, out, errOut)
	}
	stdin, codeOut := io.Pipe()
	w := &oathWatcher{seedWatcher: seedWatcher{code: codeOut}, t: t}
	var errb strings.Builder
	beaEnv := map[string]string{"KEYFLEET_CONFIG": filepath.Join(t.TempDir(), "bea.json")}
	status := cli.Run(t.Context(), []string{"factors", "add-totp", "--code", en.Code, "--server", d.url, "--ca", filepath.Join(d.dir, "tls", "cert.pem")},
		stdin, w, &errb, func(n string) string { return beaEnv[n] })
	if status != 0 || !strings.Contains(w.out.String(), "The app must make 8-digit codes with SHA256 every 60 s") {
		t.Fatalf("add-totp under the policy exited %d\n%s%s", status, w.out.String(), errb.String())
	}
	code, out, errOut := k.run("enrolments", "create", "--user", "bea", "--kind", "totp", "--option", "algorithm=SHA1")
	if code == 0 || !strings.Contains(errOut, `totp algorithm "SHA1" is not one the policy accepts`) {
		t.Fatalf("a SHA-1 enrolment against the policy: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = k.run("enrolments", "create", "--user", "bea", "--kind", "totp", "--option", "exclude_credentials=x")
	if code == 0 || !strings.Contains(errOut, "set by keyfleetd itself") {
		t.Fatalf("a reserved option: exit %d\n%s", code, errOut)
	}
}

// oathWatcher answers add-totp's code prompt with oathtool's SHA-256,
// 8-digit, 60 s code once the seed is printed.
type oathWatcher struct {
	seedWatcher
	t *testing.T
}

func (w *oathWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.out.Write(p)
	if m := seedLine.FindStringSubmatch(w.out.String()); m != nil && !w.sent {
		w.sent = true
		code := oathtool(w.t, "SHA256", 8, 60, m[1], time.Now())
		go w.code.Write([]byte(code + "\n"))
	}
	return len(p), nil
}
