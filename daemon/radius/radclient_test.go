package radius_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/daemon/core"
	kfradius "github.com/keyfleet/keyfleet/daemon/radius"
)

// These tests drive the listener with FreeRADIUS's own clients, radtest
// and radclient (Debian freeradius-utils), as an operator checks a
// deployment.

func TestRadtestSignsInWithAFreshTOTPCode(t *testing.T) {
	e := newEnv(t, nil)
	e.person("alice")
	_, seed := e.totpFactor("alice", "Phone")
	radtest := need(t, "radtest", "freeradius-utils")
	out, err := exec.Command(radtest, "alice", code(seed, 0), e.addr, "7", testSecret, "0", "192.0.2.1").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Received Access-Accept") {
		t.Fatalf("radtest with a fresh code: %v\n%s", err, out)
	}
	ev := e.lastEvent("factor.verify")
	if ev.Actor.Auth != "radius" || ev.Extra["radius_client"] != "vpn-gw1" || ev.Extra["nas_ip_address"] == "" ||
		ev.Target.Name != "Phone" || !strings.HasPrefix(ev.Source, "127.0.0.1:") {
		t.Fatalf("factor.verify event = %+v", ev)
	}
}

func TestACodeIsAcceptedOnceAndItsReplayRefused(t *testing.T) {
	e := newEnv(t, nil)
	e.person("bob")
	_, seed := e.totpFactor("bob", "Phone")
	c := code(seed, 0)
	if r := radclient(t, e.addr, testSecret, pap("bob", c)...); r.code != "Access-Accept" {
		t.Fatalf("a fresh code: %s\n%s", r.code, r.out)
	}
	r := radclient(t, e.addr, testSecret, pap("bob", c)...)
	if r.code != "Access-Reject" || !strings.Contains(r.attrs["Reply-Message"], "wrong user name or code") {
		t.Fatalf("the same code again: %s %q\n%s", r.code, r.attrs["Reply-Message"], r.out)
	}
	failed := e.lastEvent("factor.verify_failed")
	if failed.Extra["suspicious"] != "true" || failed.Extra["nas_identifier"] != "vpn-gw1.example" || failed.Extra["calling_station_id"] != "203.0.113.9" {
		t.Fatalf("the replay's audit event = %+v", failed)
	}
	if r := radclient(t, e.addr, testSecret, pap("bob", code(seed, 1))...); r.code != "Access-Accept" {
		t.Fatalf("the next step's code after a replay: %s\n%s", r.code, r.out)
	}
}

func TestAWrongSecretOrNoMessageAuthenticatorGetsNoAnswer(t *testing.T) {
	e := newEnv(t, nil)
	e.person("carol")
	_, seed := e.totpFactor("carol", "Phone")
	r := radclient(t, e.addr, "not-the-shared-secret-at-all", pap("carol", code(seed, 0))...)
	if r.code != "" {
		t.Fatalf("a request signed with the wrong secret was answered: %s\n%s", r.code, r.out)
	}
	noMA := pap("carol", code(seed, 0))[:4] // the same lines without Message-Authenticator
	if r := radclient(t, e.addr, testSecret, noMA...); r.code != "" {
		t.Fatalf("a request without Message-Authenticator was answered: %s\n%s", r.code, r.out)
	}
	if got := e.counter("keyfleet_radius_dropped_total", "vpn-gw1", "bad_message_authenticator"); got < 1 {
		t.Fatalf("wrong-secret drops counted %v", got)
	}
	if got := e.counter("keyfleet_radius_dropped_total", "vpn-gw1", "no_message_authenticator"); got < 1 {
		t.Fatalf("drops without Message-Authenticator counted %v", got)
	}
	reasons := map[string]bool{}
	for _, ev := range e.events(core.LoginRefused) {
		reasons[ev.Extra["reason"]] = true
	}
	if !reasons["bad_message_authenticator"] || !reasons["no_message_authenticator"] {
		t.Fatalf("the drops were not audited: %v", reasons)
	}
	if n := len(e.events("factor.verify")) + len(e.events("factor.verify_failed")); n != 0 {
		t.Fatalf("a dropped request reached verification (%d events)", n)
	}
	if r := radclient(t, e.addr, testSecret, pap("carol", code(seed, 0))...); r.code != "Access-Accept" {
		t.Fatalf("the code the dropped requests carried is still fresh, yet: %s\n%s", r.code, r.out)
	}
}

func TestAUserWithTwoFactorsPicksOneThroughAccessChallenge(t *testing.T) {
	e := newEnv(t, nil)
	e.person("dave")
	e.totpFactor("dave", "Phone")
	_, tablet := e.totpFactor("dave", "Tablet")
	r := radclient(t, e.addr, testSecret, pap("dave", code(tablet, 0))...)
	if r.code != "Access-Challenge" || r.attrs["State"] == "" || !strings.Contains(r.attrs["Reply-Message"], "2 = Tablet (totp)") {
		t.Fatalf("a code with two factors: %s %v\n%s", r.code, r.attrs, r.out)
	}
	r = radclient(t, e.addr, testSecret, pap("dave", "2", "State = "+r.attrs["State"])...)
	if r.code != "Access-Challenge" || !strings.Contains(r.attrs["Reply-Message"], "Enter the code from Tablet") {
		t.Fatalf("picking the tablet: %s %v\n%s", r.code, r.attrs, r.out)
	}
	state := r.attrs["State"]
	if r := radclient(t, e.addr, testSecret, pap("dave", code(tablet, 0), "State = "+state)...); r.code != "Access-Accept" {
		t.Fatalf("the tablet's code: %s %v\n%s", r.code, r.attrs, r.out)
	}
	r = radclient(t, e.addr, testSecret, pap("dave", code(tablet, 1), "State = "+state)...)
	if r.code != "Access-Reject" || !strings.Contains(r.attrs["Reply-Message"], "expired or was already answered") {
		t.Fatalf("a challenge answered twice: %s %v\n%s", r.code, r.attrs, r.out)
	}
	if n := len(e.events(core.LoginChallenged)); n != 2 {
		t.Fatalf("%d challenges audited, want 2", n)
	}
}

func TestAStateFromAnotherUserIsRefused(t *testing.T) {
	e := newEnv(t, nil)
	e.person("erin")
	e.person("mallory")
	e.totpFactor("erin", "Phone")
	_, erin2 := e.totpFactor("erin", "Tablet")
	_, mal := e.totpFactor("mallory", "Phone")
	r := radclient(t, e.addr, testSecret, pap("erin", code(erin2, 0))...)
	if r.code != "Access-Challenge" {
		t.Fatalf("%s\n%s", r.code, r.out)
	}
	// Mallory answers erin's challenge with her own code and name.
	r = radclient(t, e.addr, testSecret, pap("mallory", code(mal, 0), "State = "+r.attrs["State"])...)
	if r.code != "Access-Reject" {
		t.Fatalf("another user answered erin's challenge: %s\n%s", r.code, r.out)
	}
}

func TestWrongCodesLockTheUserAndTheRejectSaysUntilWhen(t *testing.T) {
	e := newEnv(t, func(c *kfradius.Config, _ *kfradius.Options) { c.RateLimit.UserBurst = 20 })
	e.person("frank")
	_, seed := e.totpFactor("frank", "Phone")
	for i := range 5 {
		if r := radclient(t, e.addr, testSecret, pap("frank", "000000")...); r.code != "Access-Reject" {
			t.Fatalf("wrong code %d: %s\n%s", i, r.code, r.out)
		}
	}
	r := radclient(t, e.addr, testSecret, pap("frank", code(seed, 0))...)
	if r.code != "Access-Reject" || !strings.Contains(r.attrs["Reply-Message"], "locked until") {
		t.Fatalf("the right code after five wrong ones: %s %q\n%s", r.code, r.attrs["Reply-Message"], r.out)
	}
	if len(e.events("user.lockout")) != 1 || e.lastEvent(core.LoginRefused).Extra["reason"] != "locked" {
		t.Fatal("the lockout and the refusal were not both audited")
	}
	if _, err := e.svc.UnlockUser(context.Background(), e.admin, "frank", "identity checked by phone"); err != nil {
		t.Fatal(err)
	}
	if r := radclient(t, e.addr, testSecret, pap("frank", code(seed, 0))...); r.code != "Access-Accept" {
		t.Fatalf("after the unlock: %s\n%s", r.code, r.out)
	}
}

func TestASuspendedFactorIsRefusedWithWhatToDo(t *testing.T) {
	e := newEnv(t, nil)
	e.person("gina")
	id, seed := e.totpFactor("gina", "Phone")
	if _, err := e.svc.SuspendFactor(context.Background(), e.admin, id, "phone reported stolen"); err != nil {
		t.Fatal(err)
	}
	r := radclient(t, e.addr, testSecret, pap("gina", code(seed, 0))...)
	if r.code != "Access-Reject" || !strings.Contains(r.attrs["Reply-Message"], "suspended") || !strings.Contains(r.attrs["Reply-Message"], "helpdesk") {
		t.Fatalf("a suspended factor: %s %q\n%s", r.code, r.attrs["Reply-Message"], r.out)
	}
	if ev := e.lastEvent(core.LoginRefused); ev.Extra["reason"] != "factor_suspended" || ev.Target.Name != "gina" {
		t.Fatalf("refusal audited as %+v", ev)
	}
}

func TestWithTheCodeAloneAUserWithoutAFactorIsRefusedAndGetsNoPass(t *testing.T) {
	e := newEnv(t, nil)
	e.person("hal") // no factor; first_factor none: the code is all there is
	unknown := radclient(t, e.addr, testSecret, pap("nobody-here", "123456")...)
	if unknown.code != "Access-Reject" || unknown.attrs["Reply-Message"] != "Sign-in refused: wrong user name or code." {
		t.Fatalf("an unknown user: %s %q", unknown.code, unknown.attrs["Reply-Message"])
	}
	r := radclient(t, e.addr, testSecret, pap("hal", "123456")...)
	if r.code != "Access-Reject" || !strings.Contains(r.attrs["Reply-Message"], "no second factor") {
		t.Fatalf("a user without a factor: %s %q", r.code, r.attrs["Reply-Message"])
	}
	if len(e.events("pass.issue")) != 0 {
		t.Fatal("a pass was issued to whoever typed a name")
	}
}

func TestStatusServerIsAnswered(t *testing.T) {
	e := newEnv(t, nil)
	bin := need(t, "radclient", "freeradius-utils")
	cmd := exec.Command(bin, "-x", "-t", "1", "-r", "1", e.addr, "status", testSecret)
	cmd.Stdin = strings.NewReader("Message-Authenticator = 0x00\n")
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "Received Access-Accept") {
		t.Fatalf("Status-Server:\n%s", out)
	}
}
