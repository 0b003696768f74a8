package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	agentfido2 "github.com/keyfleet/keyfleet/agent/fido2"
	"github.com/keyfleet/keyfleet/agent/vkey"
	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	"github.com/keyfleet/keyfleet/daemon"
	fido2kind "github.com/keyfleet/keyfleet/daemon/kinds/fido2"
	"github.com/keyfleet/keyfleet/internal/cli"
)

// The tests in this file drive keyfleet as an administrator types it, in
// process (cli.Run), against a real keyfleetd; keyfleet runs the real
// keyfleet-agent binary for every proof, with a software FIDO2 key
// (--soft-fido2) or the virtual YubiKey through pcscd.

var (
	agentBinOnce sync.Once
	agentBinPath string
	agentBinErr  error
)

// agentBinary builds keyfleet-agent once per test run and returns its
// path; keyfleet finds it through KEYFLEET_AGENT.
func agentBinary(t testing.TB) string {
	t.Helper()
	agentBinOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			agentBinErr = fmt.Errorf("the go command is not on PATH: %w", err)
			return
		}
		dir, err := os.MkdirTemp("", "keyfleet-agent-bin-")
		if err != nil {
			agentBinErr = err
			return
		}
		agentBinDir = dir
		agentBinPath = filepath.Join(dir, "keyfleet-agent")
		if out, err := exec.Command(goBin, "build", "-o", agentBinPath, ".").CombinedOutput(); err != nil {
			agentBinErr = fmt.Errorf("go build keyfleet-agent: %v\n%s", err, out)
		}
	})
	if agentBinErr != nil {
		t.Fatal(agentBinErr)
	}
	return agentBinPath
}

// founded is a keyfleetd made by keyfleetd init with two founding
// administrators, admin and bob, each with an onboarding pass for their
// first key, and the fido2 kind trusting the software keys' CA.
type founded struct {
	*testDaemon
	fca    *agentfido2.CA
	passes map[string]string // founder → pass file
}

func startFounded(t *testing.T) *founded {
	t.Helper()
	fca, err := agentfido2.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	d, res := serveInit(t, bothKinds(t, kindsConfig{fido2: fido2kind.Config{Roots: []*x509.Certificate{fca.Root()}}}),
		daemon.InitOptions{Admins: []string{"bob"}, BreakGlassShares: 2, BreakGlassThreshold: 2})
	return &founded{testDaemon: d, fca: fca, passes: res.FounderPassFiles}
}

// person is someone at their own workstation: their keyfleet
// configuration, and their security key (a software FIDO2 key) whose PIN
// keyfleet-agent reads from a file.
type person struct {
	t         *testing.T
	d         *testDaemon
	name      string
	key, pin  string
	env       map[string]string
	agentArgs string
}

func (d *founded) person(t *testing.T, name string, serial uint32) *person {
	t.Helper()
	p := &person{t: t, d: d.testDaemon, name: name, key: softKey(t, d.fca, serial), pin: writePIN(t, "2468"+fmt.Sprint(serial%10000))}
	p.agentArgs = "--soft-fido2 " + p.key + " --pin-file " + p.pin
	p.env = map[string]string{
		cli.EnvConfig: filepath.Join(t.TempDir(), "config.json"),
		cli.EnvAgent:  agentBinary(t),
		// The key a person holds, and its PIN (typed at the prompt in
		// real life).
		cli.EnvAgentArgs: p.agentArgs,
	}
	return p
}

// enrolFirstKey registers the person's key with their founding pass, as
// they would with keyfleet-agent enroll.
func (p *person) enrolFirstKey(passFile string) {
	p.t.Helper()
	code, err := os.ReadFile(passFile)
	if err != nil {
		p.t.Fatal(err)
	}
	pin := strings.TrimSpace(readFile(p.t, p.pin))
	out, errOut, exit := enrollCmd(p.t, p.d, pin+"\n"+pin+"\n", "--code", strings.TrimSpace(string(code)), "--piv=false", "--fido2", "--soft-fido2", p.key)
	if exit != 0 {
		p.t.Fatalf("%s enrolling their first key: exit %d: %s %s", p.name, exit, out, errOut)
	}
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// keyfleet runs the keyfleet CLI as the person, with stdin.
func (p *person) keyfleet(stdin string, args ...string) (int, string, string) {
	p.t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), args, strings.NewReader(stdin), &out, &errb, func(k string) string { return p.env[k] })
	if pin := strings.TrimSpace(readFile(p.t, p.pin)); strings.Contains(out.String()+errb.String(), pin) {
		p.t.Errorf("keyfleet %s printed %s's PIN", strings.Join(args, " "), p.name)
	}
	return code, out.String(), errb.String()
}

func (p *person) must(args ...string) string {
	p.t.Helper()
	code, out, errOut := p.keyfleet("", args...)
	if code != 0 {
		p.t.Fatalf("%s: keyfleet %s: exit %d\n%s%s", p.name, strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// loginWithKey signs the person in with their key.
func (p *person) loginWithKey() string {
	p.t.Helper()
	return p.must("login", "--server", p.d.addr, "--ca", p.d.caFile, "--user", p.name)
}

// api is an API client with the person's saved token.
func (p *person) api() *client.Client {
	p.t.Helper()
	saved, err := cli.LoadSavedLogin(func(k string) string { return p.env[k] }, os.Stderr)
	if err != nil || saved.Token == "" {
		p.t.Fatalf("%s has no saved login: %v", p.name, err)
	}
	c, err := client.New(client.Config{Server: saved.Server, Token: saved.Token, CAPEM: saved.CAPEM})
	if err != nil {
		p.t.Fatal(err)
	}
	return c
}

// founders starts the daemon and gives admin (logged in with the token
// keyfleetd init wrote) and bob (signed in with his key) their keys.
func founders(t *testing.T) (*founded, *person, *person) {
	t.Helper()
	d := startFounded(t)
	admin, bob := d.person(t, "admin", 40000101), d.person(t, "bob", 40000102)
	admin.enrolFirstKey(d.passes["admin"])
	bob.enrolFirstKey(d.passes["bob"])
	admin.must("login", "--server", d.addr, "--token-file", d.tokenFile, "--ca", d.caFile)
	bob.loginWithKey()
	return d, admin, bob
}

func decodeJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	return v
}

func wantExit(t *testing.T, what string, code, want int, out, errOut string, says ...string) {
	t.Helper()
	if code != want {
		t.Fatalf("%s: exit %d, want %d\n%s%s", what, code, want, out, errOut)
	}
	for _, s := range says {
		if !strings.Contains(out+errOut, s) {
			t.Fatalf("%s: the output does not say %q:\n%s%s", what, s, out, errOut)
		}
	}
}

func TestOneAdminCannotActAloneThroughTheCLI(t *testing.T) {
	d, admin, bob := founders(t)
	ctx := context.Background()

	// The admin makes a security officer: the account exists at once, the
	// role waits for a second person.
	acc := decodeJSON[api.Accepted](t, admin.must("users", "create", "sock", "--role", "security_officer", "-o", "json"))
	if acc.Approval.State != api.ApprovalPending || acc.User == nil || acc.User.Username != "sock" || len(acc.User.Roles) != 1 || acc.User.Roles[0] != "user" {
		t.Fatalf("creating a security officer answered %+v", acc)
	}
	code, out, errOut := admin.keyfleet("", "users", "create", "sock2", "--role", "security_officer")
	wantExit(t, "a grant in a table", code, 0, out, errOut, "Approval apr_", "keyfleet approvals approve apr_")
	id := acc.Approval.ID

	// A decision needs a reason.
	code, out, errOut = bob.keyfleet("", "approvals", "approve", id)
	wantExit(t, "approving without a reason", code, cli.ExitUsage, out, errOut, "--reason is required")

	// The admin approves their own grant, proved with their own key: refused.
	code, out, errOut = admin.keyfleet("", "approvals", "approve", id, "--reason", "I trust myself")
	wantExit(t, "self-approval", code, cli.ExitConflict, out, errOut, "You are proving: approval.approve "+id, "a different person must approve or deny it")

	// A token for the new officer, to approve as them: refused.
	code, out, errOut = admin.keyfleet("", "tokens", "create", "sock-laptop", "--user", "sock")
	wantExit(t, "a token for another person", code, cli.ExitAuth, out, errOut, "administrators make tokens for service accounts only")

	// bob's token alone, without his key, as a thief who copied it would
	// send it: refused, with what to do.
	_, err := bob.api().Approve(ctx, id, "token alone")
	if !client.IsProofRequired(err) || !strings.Contains(err.Error(), "keyfleet-agent") {
		t.Fatalf("approving with a token alone: %v", err)
	}
	// bob's token with the admin's key (the thief's own): the key holds
	// none of bob's credentials, and nothing is sent.
	thief := *bob
	thief.env = map[string]string{cli.EnvConfig: bob.env[cli.EnvConfig], cli.EnvAgent: bob.env[cli.EnvAgent], cli.EnvAgentArgs: admin.agentArgs}
	code, out, errOut = thief.keyfleet("", "approvals", "approve", id, "-m", "stolen token, own key")
	wantExit(t, "a stolen token with another key", code, cli.ExitError, out, errOut, "none of the connected keys holds a factor")
	if u := decodeJSON[api.User](t, admin.must("users", "show", "sock", "-o", "json")); len(u.Roles) != 1 || u.Roles[0] != "user" {
		t.Fatalf("sock holds %v before a second person approved", u.Roles)
	}

	// bob, a different person, approves with his own key.
	out = bob.must("approvals", "approve", id, "--reason", "confirmed with HR, ticket 4711")
	if !strings.Contains(out, "approved") {
		t.Fatalf("bob's approval printed:\n%s", out)
	}
	if u := decodeJSON[api.User](t, admin.must("users", "show", "sock", "-o", "json")); !contains(u.Roles, "security_officer") {
		t.Fatalf("sock holds %v after bob approved", u.Roles)
	}
	rows := decodeJSON[[]api.PrivilegedHolder](t, admin.must("report", "privileged", "-o", "json"))
	if h := holder(rows, "sock", "security_officer"); h == nil || h.GrantedBy == nil || h.GrantedBy.Name != "admin" || h.ApprovedBy == nil || h.ApprovedBy.Name != "bob" {
		t.Fatalf("privileged report: %+v", rows)
	}
	if table := admin.must("report", "privileged"); !strings.Contains(table, "GRANTED BY") || !strings.Contains(table, "sock") {
		t.Fatalf("privileged report table:\n%s", table)
	}
	audit := auditText(t, d.testDaemon)
	for _, want := range []string{`"approval.refused"`, `"proof_factor_id"`, `"token.refused"`} {
		if !strings.Contains(audit, want) {
			t.Errorf("the audit trail has no %s", want)
		}
	}
}

// TestAStaffAccountsPassGoesToTheSecondOfficer: the admin asks for an
// onboarding pass for a security officer; it is issued only when bob
// approves, and shown to bob, once.
func TestAStaffAccountsPassGoesToTheSecondOfficer(t *testing.T) {
	_, admin, bob := founders(t)
	acc := decodeJSON[api.Accepted](t, admin.must("users", "create", "olga", "--role", "security_officer", "-o", "json"))
	bob.must("approvals", "approve", acc.Approval.ID, "-m", "new officer")
	code, out, errOut := admin.keyfleet("", "users", "pass", "olga", "--ttl", "30m")
	wantExit(t, "a staff account's pass", code, 0, out, errOut, "Approval apr_", "issued to the approver")
	if strings.Contains(out+errOut, "kfp-") {
		t.Fatalf("the requester saw a pass:\n%s%s", out, errOut)
	}
	pending := decodeJSON[[]api.Approval](t, bob.must("approvals", "list", "-o", "json"))
	if len(pending) != 1 || pending[0].Action != api.ActionRecoveryPass {
		t.Fatalf("pending approvals %+v", pending)
	}
	out = bob.must("approvals", "approve", pending[0].ID, "-m", "olga starts today")
	if !strings.Contains(out, "Temporary access pass") || !strings.Contains(out, "kfp-") {
		t.Fatalf("the approver was not shown the pass:\n%s", out)
	}
}

func TestKeyLoginGivesAWorkingTokenThatExpires(t *testing.T) {
	d, admin, bob := founders(t)
	out := bob.must("whoami", "-o", "json")
	me := decodeJSON[api.Me](t, out)
	if me.User.Username != "bob" || !contains(me.Roles, "admin") || me.Token == "" {
		t.Fatalf("whoami after a key login: %+v", me)
	}
	tok := token(decodeJSON[[]api.Token](t, bob.must("tokens", "list", "--user", "bob", "-o", "json")), me.Token)
	if tok == nil || tok.Name != "login" || tok.ExpiresAt == nil || tok.ExpiresAt.Sub(tok.CreatedAt) != 12*time.Hour {
		t.Fatalf("bob's token after a key login: %+v", tok)
	}
	// Signing in again needs only --user: the server and CA are saved.
	if out := bob.must("login", "--user", "bob", "--ttl", "1h"); !strings.Contains(out, "Signed in to "+d.addr+" as bob") {
		t.Fatalf("a second sign-in printed:\n%s", out)
	}
	// Signing in as bob with the admin's key: refused, nothing saved.
	thief := d.person(t, "thief", 40000103)
	thief.env[cli.EnvAgentArgs] = admin.agentArgs
	code, out, errOut := thief.keyfleet("", "login", "--server", d.addr, "--ca", d.caFile, "--user", "bob")
	wantExit(t, "signing in with another's key", code, cli.ExitError, out, errOut, "none of the connected keys holds a factor")
	// A name with no key: the same answer as any name, nothing learnt.
	code, out, errOut = thief.keyfleet("", "login", "--server", d.addr, "--ca", d.caFile, "--user", "nobody")
	wantExit(t, "signing in as nobody", code, cli.ExitAuth, out, errOut, "no security key is registered for that username")
	if code, _, _ := thief.keyfleet("", "whoami"); code != cli.ExitAuth {
		t.Fatalf("a refused sign-in left a login behind (whoami exit %d)", code)
	}
	// Your own token with a proof; tokens for other people are refused.
	if out := bob.must("tokens", "create", "laptop", "--ttl", "2h", "-o", "json"); !strings.Contains(out, `"secret": "kf_`) {
		t.Fatalf("bob's own token:\n%s", out)
	}
	code, out, errOut = bob.keyfleet("", "tokens", "create", "for-admin", "--user", "admin")
	wantExit(t, "a token for someone else", code, cli.ExitAuth, out, errOut, "service accounts only")
	// New recovery codes: with the key, not with the token alone.
	if _, err := bob.api().RegenerateRecoveryCodes(context.Background()); !client.IsProofRequired(err) {
		t.Fatalf("recovery codes with a token alone: %v", err)
	}
	code, out, errOut = bob.keyfleet("", "recovery", "codes")
	wantExit(t, "new recovery codes", code, 0, out, errOut, "You are proving: recovery_codes.regenerate", "Your recovery codes")
}

func TestBreakGlassRotationThenEachHolderCollectsTheirOwnShare(t *testing.T) {
	d, admin, bob := founders(t)
	code, out, errOut := admin.keyfleet("", "breakglass", "rotate", "--holders", "admin,bob", "--threshold", "2")
	wantExit(t, "rotate", code, 0, out, errOut, "You are proving:", "Approval apr_", "keyfleet breakglass share")
	pending := decodeJSON[[]api.Approval](t, bob.must("approvals", "list", "-o", "json"))
	if len(pending) != 1 || pending[0].Action != api.ActionBreakGlassRotate {
		t.Fatalf("pending approvals %+v", pending)
	}
	bob.must("approvals", "approve", pending[0].ID, "--reason", "yearly rotation")

	dir := t.TempDir()
	files := map[string]string{"admin": filepath.Join(dir, "admin.share"), "bob": filepath.Join(dir, "bob.share")}
	for _, p := range []*person{admin, bob} {
		out := p.must("breakglass", "share", "--out", files[p.name])
		st, err := os.Stat(files[p.name])
		if err != nil || st.Mode().Perm() != 0o600 || !strings.Contains(out, "mode 0600") {
			t.Fatalf("%s's share file: %v %v\n%s", p.name, err, st, out)
		}
	}
	if readFile(t, files["admin"]) == readFile(t, files["bob"]) {
		t.Fatal("both holders got the same share")
	}
	// A second collection, to get it again or to print it: refused.
	code, out, errOut = admin.keyfleet("", "breakglass", "share")
	wantExit(t, "collecting twice", code, cli.ExitAuth, out, errOut, "no uncollected share")
	// The two shares open a session.
	opener := d.person(t, "opener", 40000104)
	out = opener.must("breakglass", "use", "--server", d.addr, "--ca", d.caFile, "--share", files["admin"], "--share", files["bob"], "--reason", "drill")
	if !strings.Contains(out, "BREAK-GLASS SESSION OPEN") {
		t.Fatalf("breakglass use:\n%s", out)
	}
}

func TestKeyfleetSaysHowToInstallAMissingAgent(t *testing.T) {
	_, _, bob := founders(t)
	bob.env[cli.EnvAgent] = ""
	t.Setenv("PATH", t.TempDir()) // and none on PATH
	code, out, errOut := bob.keyfleet("", "--agent", filepath.Join(t.TempDir(), "nowhere"), "tokens", "create", "laptop")
	wantExit(t, "a missing --agent", code, cli.ExitError, out, errOut, "is not an executable keyfleet-agent", "make build")
	code, out, errOut = bob.keyfleet("", "tokens", "create", "laptop")
	wantExit(t, "no agent anywhere", code, cli.ExitError, out, errOut, "keyfleet-agent, which is not installed", "--agent PATH or KEYFLEET_AGENT")
	tokens, _ := bob.api().ListTokens(context.Background(), client.TokenFilter{User: "bob"})
	for _, tok := range tokens.Items {
		if tok.Name == "laptop" {
			t.Fatalf("a token was made without a proof: %+v", tok)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func token(list []api.Token, id string) *api.Token {
	for i := range list {
		if list[i].ID == id {
			return &list[i]
		}
	}
	return nil
}

func holder(rows []api.PrivilegedHolder, user, role string) *api.PrivilegedHolder {
	for i := range rows {
		if rows[i].Username == user && rows[i].Role == role {
			return &rows[i]
		}
	}
	return nil
}

// TestKeyLoginWithAPIVKeyThroughPCSCD: the proof comes from the virtual
// YubiKey's PIV applet, through libpcsclite, pcscd and vpcd, as from a
// real key; the reader's name (with spaces) goes to keyfleet-agent whole
// through --agent-arg.
func TestKeyLoginWithAPIVKeyThroughPCSCD(t *testing.T) {
	ca, _ := vkey.NewCA(nil)
	card := plug(t, vkey.Options{CA: ca, Serial: 40000105})
	d := startDaemon(t, ca.Root())
	if _, err := d.admin.CreateUser(context.Background(), api.CreateUser{Username: "dora"}); err != nil {
		t.Fatal(err)
	}
	pin := writePIN(t, "24681357")
	if out, errOut, code := agentRun(t, d, d.deskToken(t), "--user", "dora", "--pin-file", pin); code != 0 {
		t.Fatalf("provisioning dora's key: exit %d: %s %s", code, out, errOut)
	}
	env := map[string]string{cli.EnvConfig: filepath.Join(t.TempDir(), "config.json"), cli.EnvAgent: agentBinary(t)}
	keyfleet := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := cli.Run(context.Background(), args, strings.NewReader(""), &out, &errb, func(k string) string { return env[k] })
		return code, out.String(), errb.String()
	}
	before := card.APDUs()
	code, out, errOut := keyfleet("--agent-arg=--reader="+pcsc.Slots[0].Reader, "--agent-arg", "--pin-file="+pin,
		"login", "--server", d.addr, "--ca", d.caFile, "--user", "dora")
	wantExit(t, "a PIV sign-in", code, 0, out, errOut, "You are proving: token.login", "Signed in to "+d.addr+" as dora")
	t.Logf("a PIV proof through pcscd: %d APDUs", card.APDUs()-before)
	if strings.Contains(out+errOut, "24681357") {
		t.Fatal("the PIN was printed")
	}
	if code, out, errOut := keyfleet("whoami"); code != 0 || !strings.Contains(out, "dora") {
		t.Fatalf("whoami with the new token: exit %d: %s %s", code, out, errOut)
	}
}
