package core

import (
	"maps"
	"os"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/policy"
)

// A batch evaluates the first new user of each kind, groups and roles
// and gives the users alike the same decision moved to their own time:
// the status, deadline and rules started are exactly what evaluating
// each of them would give, for users of every shape (no rule, a
// privileged role, a service account, a rule due at once, groups in
// either order) at times seconds to months apart, under the example
// policy, a policy with a rule due at once, and none.
func TestANewUsersDecisionIsTheSameAsEvaluatingThemAlone(t *testing.T) {
	example, err := os.ReadFile("../../policy/testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{
		"example": string(example),
		"due at once": "version: 1\nrules:\n  - name: now\n    match: {groups: [strict]}\n    require: {min_factors: 1, enroll_within: 0s}\n" +
			"  - name: soon\n    match: {groups: [free]}\n    require: {min_factors: 1, enroll_within: 1h}\n",
		"no rules": "version: 1\nrules: []\n",
	}
	users := []UserFacts{
		{Kind: "person", Roles: []string{"user"}},
		{Kind: "person", Groups: []string{"engineering"}, Roles: []string{"user"}},
		{Kind: "person", Groups: []string{"sre", "engineering"}, Roles: []string{"user"}},
		{Kind: "person", Groups: []string{"engineering", "sre"}, Roles: []string{"user"}},
		{Kind: "person", Groups: []string{"engineering"}, Roles: []string{"admin"}},
		{Kind: "person", Roles: []string{"security_officer", "user"}},
		{Kind: "service", Roles: []string{"user"}},
		{Kind: "service", Roles: []string{"admin"}},
		{Kind: "person", Groups: []string{"strict"}, Roles: []string{"user"}},
		{Kind: "person", Groups: []string{"free"}, Roles: []string{"user"}},
		{Kind: "person", Groups: []string{"free", "strict"}, Roles: []string{"user"}},
	}
	start := time.Date(2026, 12, 7, 10, 0, 0, 123_000, time.UTC)
	steps := []time.Duration{0, time.Microsecond, 3 * time.Second, 40 * time.Hour, 90 * 24 * time.Hour}
	s := bulkService(t)
	for name, text := range docs {
		doc, err := policy.Parse(name, []byte(text))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		bp := &batchPolicy{doc: doc}
		for _, step := range steps {
			now := start.Add(step)
			for i, u := range users {
				u.ID, u.Username, u.CreatedAt = "usr_"+string(rune('a'+i)), "user"+string(rune('a'+i)), now
				got, started := bp.newUser(s, u, now)
				want := s.decideFacts(doc, PolicyFacts{User: u}, "", now)
				if !slices.Equal(started, slices.Sorted(maps.Keys(want.NewlyApplied))) {
					t.Errorf("%s, %v, user %d at +%v: rules started %q, want those newly applied %v", name, u.Groups, i, step, started, want.NewlyApplied)
				}
				if got.Status != want.Status || !got.Deadline.Equal(want.Deadline) || !maps.Equal(got.NewlyApplied, want.NewlyApplied) {
					t.Errorf("%s, %v, user %d at +%v: got %s until %v starting %v; evaluated alone %s until %v starting %v", name, u.Groups, i, step,
						got.Status, got.Deadline, got.NewlyApplied, want.Status, want.Deadline, want.NewlyApplied)
				}
			}
		}
		if len(bp.fresh) > len(users) {
			t.Errorf("%s: %d decisions kept for %d kinds of user", name, len(bp.fresh), len(users))
		}
	}
}

// What a rule matches a user on is what freshKey keys on: a field added to
// policy.Match (a username, a date) would let users alike in kind, groups
// and roles get different decisions, and must be added to the key.
func TestANewUsersDecisionIsKeyedOnEverythingARuleMatches(t *testing.T) {
	var fields []string
	for f := range reflect.TypeFor[policy.Match]().Fields() {
		fields = append(fields, f.Name)
	}
	if want := []string{"Everyone", "Groups", "Roles", "UserKinds"}; !slices.Equal(fields, want) {
		t.Fatalf("policy.Match has %q, freshKey was written for %q: key new users' decisions on what was added too", fields, want)
	}
}
