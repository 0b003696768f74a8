package policy_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/policy"
)

// A user in grace for a rule that asks for security keys still signs in
// with the app they have, until the rule's deadline: the MFA status says
// "grace" and verification agrees, so nobody is shut out before the date
// they were given.
func TestGraceHoldsAtSignInUntilTheRuleIsDue(t *testing.T) {
	d := doc(t, "version: 1\nrules:\n- name: everyone\n\tmatch: {everyone: true}\n\trequire: {allowed_kinds: [piv, fido2, totp]}\n"+
		"- name: engineering\n\tmatch: {groups: [engineering]}\n\trequire: {allowed_kinds: [piv, fido2], verification_kinds: [piv, fido2], enroll_within: 30d}\n"+
		"- name: sales\n\tmatch: {groups: [sales]}\n\trequire: {verification_kinds: [fido2]}\n")
	tests := []struct {
		name    string
		user    policy.User
		applied map[string]time.Time
		at      time.Time
		totpOK  bool
		kinds   []string
	}{
		{"a rule new to the user is in grace", alice, nil, now, true, []string{"fido2", "piv", "totp"}},
		{"ten days into a thirty-day grace", alice, map[string]time.Time{"everyone": *ago(10), "engineering": *ago(10)}, now, true, []string{"fido2", "piv", "totp"}},
		{"on the deadline", alice, map[string]time.Time{"everyone": *ago(30), "engineering": *ago(30)}, now, false, []string{"fido2", "piv"}},
		{"a rule with no enroll_within applies at once", bob, nil, now, false, []string{"fido2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := policy.CheckVerificationAt(d, tt.user, "totp", tt.applied, tt.at)
			if (err == nil) != tt.totpOK {
				t.Fatalf("verifying with totp: %v, want allowed=%v", err, tt.totpOK)
			}
			if err != nil && !errors.Is(err, policy.ErrRequirement) {
				t.Fatalf("refusal %v does not wrap ErrRequirement", err)
			}
			dec := policy.Evaluate(d, tt.user, []policy.Factor{totp("f1")}, tt.applied, nil, tt.at)
			if !slices.Equal(dec.AcceptableKinds, tt.kinds) {
				t.Fatalf("MFA status says %v may be used, verification %v", dec.AcceptableKinds, tt.kinds)
			}
		})
	}
	t.Run("the status says when the grace for signing in ends", func(t *testing.T) {
		dec := policy.Evaluate(d, alice, []policy.Factor{totp("f1")}, map[string]time.Time{"everyone": *ago(10), "engineering": *ago(10)}, nil, now)
		want := "Until 2026-06-21 you may sign in with fido2, piv or totp; from then on only with fido2 or piv: enrol one before."
		if !slices.Contains(dec.NextSteps, want) {
			t.Fatalf("next steps %q lack %q", dec.NextSteps, want)
		}
		key := active("k1", "fido2", true, nil)
		dec = policy.Evaluate(d, alice, []policy.Factor{totp("f1"), key}, map[string]time.Time{"everyone": *ago(10), "engineering": *ago(10)}, nil, now)
		if slices.ContainsFunc(dec.NextSteps, func(s string) bool { return strings.HasPrefix(s, "Until ") }) {
			t.Fatalf("a user who holds a key is told to get one: %q", dec.NextSteps)
		}
	})
}

// App sign-in to self-service is off unless the document names a second
// check; turning it on is a weakening (a second approver), off stricter.
func TestAppSignInIsOffUnlessTheDocumentNamesASecondCheck(t *testing.T) {
	off := doc(t, "version: 1\nrules: []\n")
	on := doc(t, "version: 1\nself_service:\n\tapp_sign_in: [recovery_code]\nrules: []\n")
	if policy.AppSignInChecks(off) != nil || policy.AppSignInChecks(nil) != nil {
		t.Fatal("app sign-in is on without the document asking for it")
	}
	if got := policy.AppSignInChecks(on); !slices.Equal(got, []string{"recovery_code"}) {
		t.Fatalf("checks %v", got)
	}
	if !policy.Weakens(off, on) || policy.Weakens(on, off) {
		t.Fatal("turning app sign-in on must weaken the policy, turning it off must not")
	}
	if _, err := policy.Parse("p.yaml", []byte("version: 1\nself_service:\n  app_sign_in: [email]\nrules: []\n")); err == nil ||
		!strings.Contains(err.Error(), `p.yaml:3: self_service.app_sign_in[0]: "email" is not one of recovery_code`) {
		t.Fatalf("an unknown second check: %v", err)
	}
}
