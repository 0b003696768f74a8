package policy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/attest/attesttest"
	"github.com/keyfleet/keyfleet/policy"
)

func TestCheckEnrolment(t *testing.T) {
	d := doc(t, `version: 1
rules:
- name: everyone
	match: {everyone: true}
	require: {allowed_kinds: [piv, fido2, totp]}
- name: admins
	match: {roles: [admin]}
	require:
		allowed_kinds: [piv, fido2]
		attestation_required: true
		min_firmware: {"YubiKey 5": 5.7.0}
		block_advisories: [YSA-2024-03]
		piv: {touch_policies: [always]}
`)
	tests := []struct {
		name  string
		user  policy.User
		f     policy.Factor
		codes []string // nil: accepted
		rules string   // the rules that refuse it
	}{
		{"a TOTP is accepted for a user under the baseline", alice, totp("f"), nil, ""},
		{"a TOTP is refused for an admin", carol, totp("f"), []string{policy.CodeKindNotAllowed, policy.CodeAttestationMissing}, "admins"},
		{"a current key with touch always is accepted for an admin", carol, pivKey(t, "k", attesttest.PIVOptions{TouchPolicy: 2}), nil, ""},
		{"a vulnerable key is refused for an admin with every reason", carol, pivKey(t, "k", attesttest.PIVOptions{Firmware: fwEUCLEAK, TouchPolicy: 2}),
			[]string{policy.CodeFirmwareTooOld, policy.CodeAdvisoryBlocked}, "admins"},
		{"a key without touch is refused for an admin", carol, pivKey(t, "k", attesttest.PIVOptions{}), []string{policy.CodeTouchPolicy}, "admins"},
		{"a vulnerable key is accepted where no rule blocks it", alice, pivKey(t, "k", attesttest.PIVOptions{Firmware: fwEUCLEAK}), nil, ""},
		{"an unknown kind is refused where kinds are listed", alice, active("p", "sms", false, nil), []string{policy.CodeKindNotAllowed}, "everyone"},
		{"an unknown kind is refused by every rule that lists kinds", carol, active("p", "sms", false, nil),
			[]string{policy.CodeKindNotAllowed, policy.CodeAttestationMissing}, "everyone,admins"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.f.State = "pending"
			err := policy.CheckEnrolment(d, tt.user, tt.f)
			if tt.codes == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var re *policy.RequirementError
			if !errors.Is(err, policy.ErrRequirement) || !errors.As(err, &re) {
				t.Fatalf("err = %v, want a *RequirementError wrapping ErrRequirement", err)
			}
			if got := strings.Join(codes(re.Reasons), ","); got != strings.Join(tt.codes, ",") {
				t.Errorf("reasons %s, want %s", got, strings.Join(tt.codes, ","))
			}
			if got := strings.Join(re.Rules, ","); got != tt.rules {
				t.Errorf("refused by rules %q, want %q", got, tt.rules)
			}
		})
	}
}

func TestCheckVerification(t *testing.T) {
	d := doc(t, `version: 1
rules:
- name: everyone
	match: {everyone: true}
- name: admins
	match: {roles: [admin]}
	require: {verification_kinds: [piv, fido2]}
- name: engineering
	match: {groups: [engineering]}
	require: {allowed_kinds: [piv, totp]}
`)
	tests := []struct {
		name string
		user policy.User
		kind string
		ok   bool
	}{
		{"any kind is acceptable where no rule restricts it", bob, "totp", true},
		{"TOTP alone is not enough for an admin", carol, "totp", false},
		{"a PIV key is acceptable for an admin", carol, "piv", true},
		{"an admin in engineering may use only kinds both rules accept", carol, "fido2", false},
		{"allowed_kinds also limits verification", alice, "fido2", false},
		{"an allowed kind verifies", alice, "totp", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := policy.CheckVerification(d, tt.user, tt.kind)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
			var re *policy.RequirementError
			if err != nil && (!errors.As(err, &re) || re.Reasons[0].Code != policy.CodeKindNotAcceptable) {
				t.Errorf("err = %#v", err)
			}
		})
	}
	if err := policy.CheckVerification(nil, carol, "totp"); err != nil {
		t.Errorf("a nil document refused verification: %v", err)
	}
}

func TestCanRemove(t *testing.T) {
	suspended := totp("s")
	suspended.State = "suspended"
	svc := policy.User{ID: "u-ci", Username: "ci", Kind: "service"}
	tests := []struct {
		name        string
		user        policy.User
		factors     []policy.Factor
		remove      string
		replacement bool
		want        error
	}{
		{"the last active factor of a person cannot be removed", alice, []policy.Factor{totp("a"), suspended}, "a", false, policy.ErrLastFactor},
		{"the last active factor can go with an approved replacement plan", alice, []policy.Factor{totp("a")}, "a", true, nil},
		{"one of two active factors can be removed", alice, []policy.Factor{totp("a"), totp("b")}, "a", false, nil},
		{"a suspended factor can be removed", alice, []policy.Factor{totp("a"), suspended}, "s", false, nil},
		{"a service account's factor can be removed", svc, []policy.Factor{totp("a")}, "a", false, nil},
		{"an unknown factor is an error", alice, []policy.Factor{totp("a")}, "zz", false, policy.ErrUnknownFactor},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := policy.CanRemove(tt.user, tt.factors, tt.remove, tt.replacement)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var re *policy.RemovalError
			if tt.want == policy.ErrLastFactor && (!errors.As(err, &re) || re.FactorID != tt.remove) {
				t.Errorf("err = %#v, want a *RemovalError for %s", err, tt.remove)
			}
		})
	}
}
