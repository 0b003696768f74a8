package radius_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/daemon/core"
	kfradius "github.com/keyfleet/keyfleet/daemon/radius"
)

// slapd is a private OpenLDAP server on a loopback port, started in the
// foreground so the test owns its process.
type slapd struct {
	url string
	cmd *exec.Cmd
}

// startSlapd loads people (uid → password) under ou=people,dc=example,dc=org
// and serves them.
func startSlapd(t *testing.T, people map[string]string) *slapd {
	t.Helper()
	bin := need(t, "slapd", "slapd")
	need(t, "slapadd", "slapd")
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "db"), 0o700)
	conf := filepath.Join(dir, "slapd.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile %[1]s/slapd.pid
database mdb
suffix "dc=example,dc=org"
rootdn "cn=admin,dc=example,dc=org"
rootpw admin-secret-for-tests
directory %[1]s/db
access to attrs=userPassword by anonymous auth by * none
access to * by * read
`, dir)), 0o600)
	ldif := "dn: dc=example,dc=org\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n" +
		"dn: ou=people,dc=example,dc=org\nobjectClass: organizationalUnit\nou: people\n\n"
	for uid, pw := range people {
		ldif += fmt.Sprintf("dn: uid=%[1]s,ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: %[1]s\ncn: %[1]s\nsn: %[1]s\nuserPassword: %[2]s\n\n", uid, pw)
	}
	load := exec.Command("slapadd", "-f", conf)
	load.Stdin = strings.NewReader(ldif)
	if out, err := load.CombinedOutput(); err != nil {
		t.Fatalf("slapadd: %v\n%s", err, out)
	}
	addr := freeTCP(t)
	s := &slapd{url: "ldap://" + addr}
	s.cmd = exec.Command(bin, "-d", "0", "-f", conf, "-h", s.url+"/")
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatal("slapd did not start listening within 10s")
		}
	}
}

func (s *slapd) stop() {
	if s.cmd.ProcessState == nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	}
}

func freeTCP(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// ldapEnv is a listener with first_factor ldap in front of a private slapd.
func ldapEnv(t *testing.T, firstLogin bool, people map[string]string) (*env, *slapd) {
	dir := startSlapd(t, people)
	e := newEnv(t, func(c *kfradius.Config, o *kfradius.Options) {
		c.FirstFactor = kfradius.FirstFactorLDAP
		c.LDAP = kfradius.LDAPConfig{URL: dir.url, BindDN: "uid={user},ou=people,dc=example,dc=org"}
		if firstLogin {
			o.FirstLogin = kfradius.FirstLogin{PassTTL: time.Hour, WelcomeURL: "https://keyfleet.example/welcome"}
		}
	})
	return e, dir
}

const everyoneNow = "version: 1\nrules:\n  - name: everyone\n    match: {everyone: true}\n"

const everyoneWithin30Days = everyoneNow + "    require:\n      min_factors: 1\n      enroll_within: 30d\n"

func TestPasswordThenCodeSignsInAndAWrongPasswordNeverReachesTheCode(t *testing.T) {
	e, _ := ldapEnv(t, false, map[string]string{"alice": "wonderland"})
	e.person("alice")
	_, seed := e.totpFactor("alice", "Phone")
	if r := radclient(t, e.addr, testSecret, pap("alice", "wonderland"+code(seed, 0))...); r.code != "Access-Accept" {
		t.Fatalf("password and code: %s %v\n%s", r.code, r.attrs, r.out)
	}
	for _, tc := range []struct{ name, password string }{
		{"a wrong password with a fresh code", "looking-glass" + code(seed, 1)},
		{"no password, only the code (an anonymous bind would succeed)", code(seed, 1)},
		{"a name that tries to change the DN", "wonderland" + code(seed, 1)},
	} {
		user := "alice"
		if strings.Contains(tc.name, "DN") {
			user = "alice,ou=people"
		}
		r := radclient(t, e.addr, testSecret, pap(user, tc.password)...)
		if r.code != "Access-Reject" || r.attrs["Reply-Message"] != "Sign-in refused: wrong user name, password or code." {
			t.Fatalf("%s: %s %q", tc.name, r.code, r.attrs["Reply-Message"])
		}
	}
	if n := len(e.events("factor.verify_failed")); n != 0 {
		t.Fatalf("refused passwords still tried the code %d times", n)
	}
	if r := radclient(t, e.addr, testSecret, pap("alice", "wonderland"+code(seed, 1))...); r.code != "Access-Accept" {
		t.Fatalf("the code the refused attempts carried is fresh, yet: %s %v", r.code, r.attrs)
	}
}

func TestThePasswordAloneIsAnsweredWithAChallengeForTheCode(t *testing.T) {
	e, _ := ldapEnv(t, false, map[string]string{"bea": "hunter2-but-longer"})
	e.person("bea")
	_, seed := e.totpFactor("bea", "Phone")
	r := radclient(t, e.addr, testSecret, pap("bea", "hunter2-but-longer")...)
	if r.code != "Access-Challenge" || !strings.Contains(r.attrs["Reply-Message"], "Enter the code from Phone") {
		t.Fatalf("the password alone: %s %v", r.code, r.attrs)
	}
	if r := radclient(t, e.addr, testSecret, pap("bea", code(seed, 0), "State = "+r.attrs["State"])...); r.code != "Access-Accept" {
		t.Fatalf("the code to the challenge: %s %v", r.code, r.attrs)
	}
}

var passRE = regexp.MustCompile(`kfp-[0-9a-z]{5}-[0-9a-z]{5}-[0-9a-z]{5}-[0-9a-z]{5}`)

func TestFirstLoginLeadsToEnrolmentWithAnAccessPass(t *testing.T) {
	e, _ := ldapEnv(t, true, map[string]string{"newbie": "first-day-at-work"})
	e.applyPolicy(everyoneNow)
	e.person("newbie")
	r := radclient(t, e.addr, testSecret, pap("newbie", "first-day-at-work")...)
	msg := r.attrs["Reply-Message"]
	first := passRE.FindString(msg)
	if r.code != "Access-Reject" || first == "" || !strings.Contains(msg, "https://keyfleet.example/welcome") {
		t.Fatalf("first login: %s %q", r.code, msg)
	}
	if ev := e.lastEvent("pass.issue"); ev.Extra["purpose"] != "first_login" || ev.Actor.Auth != "radius" || ev.Extra["nas_identifier"] != "vpn-gw1.example" {
		t.Fatalf("pass.issue = %+v", ev)
	}
	second := passRE.FindString(radclient(t, e.addr, testSecret, pap("newbie", "first-day-at-work")...).attrs["Reply-Message"])
	if second == "" || second == first {
		t.Fatalf("the second attempt's pass: %q", second)
	}
	if _, err := e.svc.RedeemPass(context.Background(), core.Principal{}, first); err == nil {
		t.Fatal("the first pass still works after a second was issued")
	}
	if _, err := e.svc.RedeemPass(context.Background(), core.Principal{}, second); err != nil {
		t.Fatalf("the pass from the Reply-Message does not redeem: %v", err)
	}
	// Someone who knows the name but not the password gets nothing.
	r = radclient(t, e.addr, testSecret, pap("newbie", "guessed-password")...)
	if r.code != "Access-Reject" || passRE.MatchString(r.attrs["Reply-Message"]) {
		t.Fatalf("a wrong password: %s %q", r.code, r.attrs["Reply-Message"])
	}
}

func TestWithoutFirstLoginPassesTheRefusalSaysWhomToAsk(t *testing.T) {
	e, _ := ldapEnv(t, false, map[string]string{"newbie": "first-day-at-work"})
	e.applyPolicy(everyoneNow)
	e.person("newbie")
	r := radclient(t, e.addr, testSecret, pap("newbie", "first-day-at-work")...)
	if r.code != "Access-Reject" || !strings.Contains(r.attrs["Reply-Message"], "Ask the helpdesk for an access pass") || len(e.events("pass.issue")) != 0 {
		t.Fatalf("%s %q", r.code, r.attrs["Reply-Message"])
	}
}

func TestAUserThePolicyDoesNotAskYetSignsInWithThePassword(t *testing.T) {
	e, _ := ldapEnv(t, false, map[string]string{"casual": "no-mfa-yet-please", "intern": "starting-monday"})
	e.person("casual")
	if r := radclient(t, e.addr, testSecret, pap("casual", "no-mfa-yet-please")...); r.code != "Access-Accept" {
		t.Fatalf("no rule applies: %s %v", r.code, r.attrs)
	}
	if ev := e.lastEvent(core.LoginAllowed); ev.Extra["reason"] != "not_required" || ev.Target.Name != "casual" {
		t.Fatalf("login.allowed = %+v", ev)
	}
	e.applyPolicy(everyoneWithin30Days)
	e.person("intern")
	r := radclient(t, e.addr, testSecret, pap("intern", "starting-monday")...)
	if r.code != "Access-Accept" || !strings.Contains(r.attrs["Reply-Message"], "Enrol a second factor before") {
		t.Fatalf("within the enrolment deadline: %s %v", r.code, r.attrs)
	}
}

func TestAnUnreachableDirectoryRefusesWithAClearMessage(t *testing.T) {
	e, dir := ldapEnv(t, false, map[string]string{"alice": "wonderland"})
	e.person("alice")
	_, seed := e.totpFactor("alice", "Phone")
	dir.stop()
	r := radclient(t, e.addr, testSecret, pap("alice", "wonderland"+code(seed, 0))...)
	if r.code != "Access-Reject" || !strings.Contains(r.attrs["Reply-Message"], "directory cannot be reached") {
		t.Fatalf("%s %q", r.code, r.attrs["Reply-Message"])
	}
	if ev := e.lastEvent(core.LoginRefused); ev.Extra["reason"] != "directory_unavailable" {
		t.Fatalf("%+v", ev)
	}
}

// syncBuffer collects log lines from concurrent requests.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestPasswordsCodesAndPassesStayOutOfLogsAndAudit(t *testing.T) {
	logs := &syncBuffer{}
	dir := startSlapd(t, map[string]string{"alice": "wonderland-7", "newbie": "first-day-at-work"})
	e := newEnv(t, func(c *kfradius.Config, o *kfradius.Options) {
		c.FirstFactor = kfradius.FirstFactorLDAP
		c.LDAP = kfradius.LDAPConfig{URL: dir.url, BindDN: "uid={user},ou=people,dc=example,dc=org"}
		o.FirstLogin = kfradius.FirstLogin{PassTTL: time.Hour}
		o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	e.applyPolicy(everyoneNow)
	e.person("alice")
	e.person("newbie")
	_, seed := e.totpFactor("alice", "Phone")
	good, wrong := code(seed, 0), "000000"
	radclient(t, e.addr, testSecret, pap("alice", "wonderland-7"+good)...)
	radclient(t, e.addr, testSecret, pap("alice", "wonderland-7"+wrong)...)
	radclient(t, e.addr, testSecret, pap("alice", "not-her-password"+code(seed, 1))...)
	pass := passRE.FindString(radclient(t, e.addr, testSecret, pap("newbie", "first-day-at-work")...).attrs["Reply-Message"])
	if pass == "" {
		t.Fatal("no first-login pass to look for")
	}
	var trail strings.Builder
	recs, _ := e.svc.ListAudit(context.Background(), e.admin, core.AuditFilter{}, 500)
	for _, r := range recs {
		trail.Write(r.Body)
	}
	for _, secret := range []string{"wonderland-7", "not-her-password", "first-day-at-work", good, wrong, code(seed, 1), pass, testSecret} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds %q", secret)
		}
		if strings.Contains(trail.String(), secret) {
			t.Errorf("the audit trail holds %q", secret)
		}
	}
	if !strings.Contains(logs.String(), `"answer":"accept"`) {
		t.Fatalf("the log has no decisions at all:\n%s", logs.String())
	}
}
