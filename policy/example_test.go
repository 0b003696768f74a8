package policy_test

import (
	"fmt"
	"time"

	"github.com/keyfleet/keyfleet/policy"
)

func ExampleEvaluate() {
	doc := policy.MustParse("policy.yaml", []byte(`
version: 1
rules:
  - name: everyone
    match: {everyone: true}
    require: {min_factors: 1, enroll_within: 30d}
  - name: engineering
    match: {groups: [engineering]}
    require: {min_factors: 2, allowed_kinds: [piv, fido2], enroll_within: 14d}
`))
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	alice := policy.User{ID: "u1", Username: "alice", Groups: []string{"engineering"}}
	factors := []policy.Factor{{ID: "f1", Kind: "totp", State: "active", CreatedAt: now.AddDate(0, -1, 0)}}
	// The daemon keeps when each rule first applied to alice.
	firstApplied := map[string]time.Time{"everyone": now.AddDate(0, -2, 0)}

	d := policy.Evaluate(doc, alice, factors, firstApplied, nil, now)
	fmt.Println(d.Status, "until", d.GraceUntil.Format(time.DateOnly))
	for _, r := range d.Reasons {
		fmt.Println("-", r.Message)
	}
	for _, s := range d.NextSteps {
		fmt.Println(">", s)
	}
	fmt.Println("persist:", len(d.NewlyApplied), "rule(s) newly applied")
	// Output:
	// grace until 2026-06-15
	// - alice has 0 active factors that the policy accepts; rule engineering needs 2 by 2026-06-15
	// - totp factor f1 is not of a kind the policy allows (only fido2 or piv)
	// > Enrol 2 more factors by 2026-06-15; acceptable: fido2 or piv.
	// > Replace factor f1 with one the policy accepts.
	// > Until 2026-06-15 you may sign in with any factor; from then on only with fido2 or piv: enrol one before.
	// persist: 1 rule(s) newly applied
}

func ExampleDiff() {
	old := policy.MustParse("v1.yaml", []byte("version: 1\nrules:\n- {name: admins, match: {roles: [admin]}, require: {min_factors: 2, block_advisories: [YSA-2024-03]}}\n"))
	new := policy.MustParse("v2.yaml", []byte("version: 1\nrules:\n- {name: admins, match: {roles: [admin]}, require: {min_factors: 3}}\n"))
	for _, c := range policy.Diff(old, new) {
		fmt.Println(c.Message)
	}
	fmt.Println("needs two-person approval:", policy.Weakens(old, new))
	// Output:
	// rule admins: require.min_factors raised from 2 to 3 (stricter)
	// rule admins: require.block_advisories drops YSA-2024-03 (weaker)
	// needs two-person approval: true
}
