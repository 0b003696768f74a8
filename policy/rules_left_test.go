package policy_test

import (
	"slices"
	"testing"

	"github.com/keyfleet/keyfleet/policy"
)

func TestRulesLeftNamesOnlyTheRulesThatStopApplying(t *testing.T) {
	doc := &policy.Document{Rules: []policy.Rule{
		{Name: "finance", Match: policy.Match{Groups: []string{"finance"}}},
		{Name: "helpdesk-role", Match: policy.Match{Roles: []string{"helpdesk"}}},
		{Name: "everyone", Match: policy.Match{Everyone: true}},
	}}
	before := policy.User{Groups: []string{"finance", "ops"}, Roles: []string{"helpdesk", "user"}}
	cases := []struct {
		name  string
		after policy.User
		want  []string
	}{
		{"leaving an unmatched group takes nothing", policy.User{Groups: []string{"finance"}, Roles: before.Roles}, nil},
		{"leaving a matched group takes its rule", policy.User{Groups: []string{"ops"}, Roles: before.Roles}, []string{"finance"}},
		{"losing a matched role takes its rule", policy.User{Groups: before.Groups, Roles: []string{"user"}}, []string{"helpdesk-role"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := policy.RulesLeft(doc, before, c.after); !slices.Equal(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
	if policy.RulesLeft(nil, before, policy.User{}) != nil {
		t.Fatal("no document, no rules")
	}
}
