package pam_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	pushkind "github.com/keyfleet/keyfleet/plugins/push"
)

// TestPamtesterAPushOnlyUserAnswersOnTheirCompanion signs in users whose
// only factor is a push companion, through Linux-PAM with pamtester: the
// sign-in shows the number to pick, the companion (over keyfleetd's API,
// as keyfleet-agent push does) picks a number or refuses, and Enter
// finishes. Only the right number lets in; no answer by push_timeout, a
// wrong number, Deny and This wasn't me refuse, and after This wasn't me
// no push goes out. Nothing of the push — the number, the verification,
// the host's token — reaches syslog or keyfleetd's log.
func TestPamtesterAPushOnlyUserAnswersOnTheirCompanion(t *testing.T) {
	so, helper := module(t)
	k := startKeyfleetd(t, false)
	svc := pamService(t, so, k.args(helper))
	short := pamService(t, so, k.args(helper, "push_timeout=2s"))
	wrong := func(right string, choices []string) string {
		return choices[slices.IndexFunc(choices, func(c string) bool { return c != right })]
	}
	cases := []struct {
		name, service string
		answer        func(c *companion, d pushkind.Delivery, right string)
		ok            bool
		says          string
	}{
		{"the right number lets in", svc, func(c *companion, d pushkind.Delivery, right string) {
			if out := c.answer(d, right, pushkind.Approve); !out.OK {
				t.Fatalf("the companion's right answer: %+v", out)
			}
		}, true, ""},
		{"a wrong number refuses", svc, func(c *companion, d pushkind.Delivery, right string) {
			c.answer(d, wrong(right, d.Choices), pushkind.Approve)
		},
			false, "the push was not approved"},
		{"deny refuses", svc, func(c *companion, d pushkind.Delivery, _ string) { c.answer(d, "", pushkind.Deny) }, false, "the push was not approved"},
		{"no answer by push_timeout refuses", short, func(*companion, pushkind.Delivery, string) {}, false, "no answer to the push in time"},
		{"this wasn't me refuses", svc, func(c *companion, d pushkind.Delivery, _ string) { c.answer(d, "", pushkind.Report) }, false, "the push was not approved"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			user := []string{"paula", "quinn", "rosa", "sami", "tove"}[i]
			k.person(user)
			phone := k.pushFactor(user, "Pixel")
			s := startSignIn(t, tc.service, user)
			m := s.waitFor(`keyfleet sent a push to Pixel\. Open keyfleet on Pixel and pick (\d\d)\. Answer by \d\d:\d\d:\d\d UTC\.`)
			s.waitFor(`Press Enter once you have answered on Pixel: `)
			d := phone.next()
			if !slices.Contains(d.Choices, m[1]) || d.User != user || !strings.HasPrefix(d.Application, tc.service+" on ") {
				t.Fatalf("the companion got %+v for the number %s", d, m[1])
			}
			tc.answer(phone, d, m[1])
			s.enter("")
			ok, out := s.result()
			if ok != tc.ok || !strings.Contains(out, tc.says) {
				t.Fatalf("pamtester:\n%s", out)
			}
			noSecretIn(t, s.syslog.String(), "syslog", user, m[1], d.VerificationID, k.token)
			noSecretIn(t, k.logs.String(), "keyfleetd's log", user, m[1], d.VerificationID, k.token)
		})
	}
	t.Run("after this wasn't me no push goes out", func(t *testing.T) {
		s := startSignIn(t, svc, "tove")
		ok, out := s.result()
		if ok || !strings.Contains(out, "pushes to you are locked") || strings.Contains(out, "pick") {
			t.Fatalf("pamtester:\n%s", out)
		}
	})
}

// noSecretIn fails when log holds what only the person signing in may
// see (the number to pick), the verification's id or the host's token;
// it also fails on an empty log for the user, to show the log was read.
func noSecretIn(t *testing.T, log, name, user, number, verification, token string) {
	t.Helper()
	if !strings.Contains(log, user) {
		t.Fatalf("%s says nothing of %s: was it read?\n%s", name, user, log)
	}
	for _, s := range []string{"pick " + number, "number=" + number, verification, token} {
		if strings.Contains(log, s) {
			t.Fatalf("%s holds %q:\n%s", name, s, log)
		}
	}
}

// TestPamtesterACodeOrEnterForAPush: a user with an authenticator app and
// a push companion is asked for a code or Enter; a code sends no push,
// Enter sends one.
func TestPamtesterACodeOrEnterForAPush(t *testing.T) {
	so, helper := module(t)
	k := startKeyfleetd(t, false)
	k.person("uma")
	seed := k.totpFactor("uma", "Phone")
	phone := k.pushFactor("uma", "Pixel")
	svc := pamService(t, so, k.args(helper))

	s := startSignIn(t, svc, "uma")
	s.waitFor(`keyfleet code from Phone \(totp\), or press Enter to send a push to Pixel \(push\): `)
	s.enter(code(seed, 0))
	if ok, out := s.result(); !ok || strings.Contains(out, "sent a push") {
		t.Fatalf("a code:\n%s", out)
	}
	if items, err := phone.c.PendingPushes(context.Background(), 0); err != nil || len(items) != 0 {
		t.Fatalf("a sign-in with a code sent a push: %d %v", len(items), err)
	}

	s = startSignIn(t, svc, "uma")
	s.waitFor(`or press Enter to send a push to Pixel \(push\): `)
	s.enter("")
	m := s.waitFor(`pick (\d\d)\.`)
	phone.answer(phone.next(), m[1], pushkind.Approve)
	s.waitFor(`Press Enter once you have answered on Pixel: `)
	s.enter("")
	if ok, out := s.result(); !ok {
		t.Fatalf("Enter, then the push:\n%s", out)
	}
}
