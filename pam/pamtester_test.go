package pam_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// These tests drive pam_keyfleet.so through Linux-PAM with pamtester
// (Debian pamtester), answering its prompts on stdin.

// pamtester authenticates user against service with the given answers
// (one a line) and reports whether PAM said yes, with all it printed.
func pamtester(t *testing.T, service, user string, answers ...string) (bool, string) {
	t.Helper()
	bin := need(t, "pamtester", "pamtester")
	cmd := exec.Command(bin, "-v", service, user, "authenticate")
	cmd.Stdin = strings.NewReader(strings.Join(answers, "\n") + "\n")
	out, _ := cmd.CombinedOutput()
	return strings.Contains(string(out), "successfully authenticated"), string(out)
}

const everyoneNow = "version: 1\nrules:\n  - name: everyone\n    match: {everyone: true}\n"

func TestPamtesterRightCodeInWrongCodeOut(t *testing.T) {
	so, helper := module(t)
	k := startKeyfleetd(t, false)
	k.person("alice")
	seed := k.totpFactor("alice", "Phone")
	svc := pamService(t, so, k.args(helper))
	if ok, out := pamtester(t, svc, "alice", code(seed, 0)); !ok || !strings.Contains(out, "keyfleet code from Phone (totp)") {
		t.Fatalf("the right code:\n%s", out)
	}
	ok, out := pamtester(t, svc, "alice", code(seed, 0))
	if ok || !strings.Contains(out, "wrong code") {
		t.Fatalf("the same code again (a replay):\n%s", out)
	}
	if ok, out := pamtester(t, svc, "alice", "000000"); ok {
		t.Fatalf("a wrong code:\n%s", out)
	}
}

func TestPamtesterAUserWithTwoFactorsPicksOne(t *testing.T) {
	so, helper := module(t)
	k := startKeyfleetd(t, false)
	k.person("bob")
	k.totpFactor("bob", "Phone")
	tablet := k.totpFactor("bob", "Tablet")
	svc := pamService(t, so, k.args(helper))
	ok, out := pamtester(t, svc, "bob", "2", code(tablet, 0))
	if !ok || !strings.Contains(out, "1) Phone (totp) 2) Tablet (totp)") {
		t.Fatalf("picking the tablet:\n%s", out)
	}
}

func TestPamtesterKeyfleetdDownFailsClosedWithAClearMessage(t *testing.T) {
	so, helper := module(t)
	k := startKeyfleetd(t, false)
	k.person("carol")
	k.totpFactor("carol", "Phone")
	svc := pamService(t, so, k.args(helper))
	k.stop()
	ok, out := pamtester(t, svc, "carol", "123456")
	if ok || !strings.Contains(out, "keyfleet cannot be reached") || strings.Contains(out, "keyfleet code") {
		t.Fatalf("keyfleetd down:\n%s", out)
	}
}

func TestPamtesterKeyfleetdDownLetsInAFallbackGroupOnly(t *testing.T) {
	so, helper := module(t)
	k := startKeyfleetd(t, false)
	group := unique("kfg")
	admin := unixUser(t, group)
	other := unixUser(t)
	svc := pamService(t, so, k.args(helper, "fallback_group="+group))
	k.stop()
	if ok, out := pamtester(t, svc, admin); !ok || !strings.Contains(out, "member of "+group) {
		t.Fatalf("a member of the fallback group:\n%s", out)
	}
	if ok, out := pamtester(t, svc, other); ok {
		t.Fatalf("someone outside the fallback group:\n%s", out)
	}
}

func TestPamtesterTheStatusOfAUserWithoutAFactor(t *testing.T) {
	so, helper := module(t)
	k := startKeyfleetd(t, true)
	k.person("dave")
	svc := pamService(t, so, k.args(helper, "first_login"))
	if ok, out := pamtester(t, svc, "dave"); !ok || strings.Contains(out, "keyfleet code") {
		t.Fatalf("no rule applies to dave yet:\n%s", out)
	}
	k.applyPolicy(everyoneNow + "    require:\n      min_factors: 1\n      enroll_within: 30d\n")
	if ok, out := pamtester(t, svc, "dave"); !ok || !strings.Contains(out, "Enrol a second factor before") {
		t.Fatalf("within the enrolment deadline:\n%s", out)
	}
	k.applyPolicy(everyoneNow)
	k.person("erin")
	ok, out := pamtester(t, svc, "erin")
	if ok || !strings.Contains(out, "you must enrol a second factor first") || !regexp.MustCompile(`access pass kfp-[0-9a-z-]{23}`).MatchString(out) ||
		!strings.Contains(out, "/welcome") {
		t.Fatalf("past the deadline, with first-login passes on:\n%s", out)
	}
}

func TestPamtesterUnknownUsersAreRefusedUnlessAllowed(t *testing.T) {
	so, helper := module(t)
	k := startKeyfleetd(t, false)
	if ok, out := pamtester(t, pamService(t, so, k.args(helper)), "root"); ok || !strings.Contains(out, "does not know root") {
		t.Fatalf("a local account keyfleet does not know:\n%s", out)
	}
	if ok, out := pamtester(t, pamService(t, so, k.args(helper, "allow_unknown")), "root"); !ok {
		t.Fatalf("with allow_unknown:\n%s", out)
	}
}

func TestPamtesterRefusesATokenFileOthersCanRead(t *testing.T) {
	so, helper := module(t)
	k := startKeyfleetd(t, false)
	k.person("fred")
	seed := k.totpFactor("fred", "Phone")
	svc := pamService(t, so, k.args(helper))
	exec.Command("chmod", "644", k.tokenFile).Run()
	if ok, out := pamtester(t, svc, "fred", code(seed, 0)); ok || !strings.Contains(out, "not set up right") {
		t.Fatalf("a world-readable token file:\n%s", out)
	}
}

func TestTheModuleRefusesAHelperOthersCouldHaveReplaced(t *testing.T) {
	so, helper := module(t)
	k := startKeyfleetd(t, false)
	k.person("gail")
	seed := k.totpFactor("gail", "Phone")
	// A helper someone besides root may write could be swapped for one
	// that says "success" to everyone.
	writable := filepath.Join(t.TempDir(), "keyfleet-pam-helper")
	b, err := os.ReadFile(helper)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(writable, b, 0o775)
	os.Chmod(writable, 0o775)
	if ok, out := pamtester(t, pamService(t, so, k.args(writable)), "gail", code(seed, 0)); ok || strings.Contains(out, "keyfleet code") {
		t.Fatalf("a group-writable helper was run:\n%s", out)
	}
	if ok, out := pamtester(t, pamService(t, so, k.args("relative/helper")), "gail", code(seed, 0)); ok {
		t.Fatalf("a relative helper path was run:\n%s", out)
	}
}
