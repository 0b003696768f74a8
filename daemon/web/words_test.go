package web

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

func TestAStatusReadsInWords(t *testing.T) {
	until := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		st   api.MFAStatus
		want badge
	}{
		{"an exempt user is exempt, not compliant", api.MFAStatus{Status: "compliant", ExemptUntil: &until}, badge{"state-exempt", "exempt until 2026-07-01"}},
		{"grace says until when", api.MFAStatus{Status: "grace", GraceUntil: &until}, badge{"state-grace", "in grace until 2026-07-01"}},
		{"non-compliant", api.MFAStatus{Status: "non_compliant"}, badge{"state-non-compliant", "non-compliant"}},
		{"no rule applies", api.MFAStatus{Status: "compliant", ReasonDetails: []api.PolicyReason{{Code: "not_required"}}}, badge{"state-not-required", "not required"}},
		{"compliant", api.MFAStatus{Status: "compliant"}, badge{"state-compliant", "compliant"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mfaBadge(tt.st); got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestAnApprovalSaysWhatItDoes(t *testing.T) {
	tests := []struct {
		name string
		a    core.Approval
		what string
		want string
	}{
		{"a revoke with a replacement planned", core.Approval{Action: api.ActionFactorRevoke, Params: map[string]string{"replacement_planned": "true"}},
			"carol's Phone (totp)", "Revoke carol's Phone (totp): it stops working for good. A replacement is planned"},
		{"a grant", core.Approval{Action: api.ActionUserAccess, Params: map[string]string{"grant_roles": "admin", "remove_groups": "eng"}},
			"dana", "Granting admin, leaving eng for dana."},
		{"an exemption", core.Approval{Action: api.ActionUserExempt, Params: map[string]string{"until": "2026-07-01T00:00:00Z"}},
			"erin", "Exempt erin from the policy until 2026-07-01"},
		{"a weaker policy", core.Approval{Action: api.ActionPolicyApply, Params: map[string]string{"sha256": "0123456789abcdef0123", "base_version": "3", "weaker_changes": "2"}},
			"", "Apply a policy document (SHA-256 0123456789ab…) that weakens version 3 (2 requirements weaker)."},
		{"an identity check", core.Approval{Action: api.ActionRecoveryIdentity, Reason: "passport seen"},
			"tom", "on the helpdesk's check: “passport seen”"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := preview(tt.a, tt.what); !strings.Contains(got, tt.want) {
				t.Fatalf("preview %q lacks %q", got, tt.want)
			}
		})
	}
}

func TestTheDryRunDiffsLines(t *testing.T) {
	got := lineDiff("version: 1\nrules:\n  - a\n  - b\n", "version: 1\nrules:\n  - a\n  - c\n  - b\n")
	want := []diffLine{{" ", "version: 1"}, {" ", "rules:"}, {" ", "  - a"}, {"+", "  - c"}, {" ", "  - b"}}
	if !slices.Equal(got, want) {
		t.Fatalf("diff %v, want %v", got, want)
	}
	got = lineDiff("a\nb\n", "a\n")
	if !slices.Equal(got, []diffLine{{" ", "a"}, {"-", "b"}}) {
		t.Fatalf("a removed line: %v", got)
	}
	if lineDiff(strings.Repeat("x\n", maxDiffLines+1), "x\n") != nil {
		t.Fatal("a very long document is diffed")
	}
}

func TestAListFieldSplitsOnCommasAndLines(t *testing.T) {
	if got := splitList(" eng, support\r\noncall,,eng "); !slices.Equal(got, []string{"eng", "support", "oncall"}) {
		t.Fatalf("got %q", got)
	}
}

func TestAdvisoriesAreNamedShortly(t *testing.T) {
	why := "yubikey key fac_1 (YubiKey 5) is affected by advisory YSA-2024-03 (EUCLEAK: a side channel …); the policy does not block it"
	if got := advisoryWords(why); got != "YSA-2024-03 (EUCLEAK)" {
		t.Fatalf("got %q", got)
	}
}

func TestPerDayCountsStack(t *testing.T) {
	c := newStackChart("t", []string{"d1", "d2"}, map[string][]int{"failed": {1, 0}, "success": {3, 4}}, []string{"success", "failed"})
	if c.Max != 4 || c.Total != 8 || c.Series[0].Name != "success" || c.Bars[0].Text != "d1: 3 success, 1 failed" || c.Bars[1].Text != "d2: 4 success" {
		t.Fatalf("chart: %+v", c)
	}
}
