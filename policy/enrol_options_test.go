package policy

import (
	"errors"
	"testing"
)

func TestEnrolOptionsAskForPoliciesTheRulesAccept(t *testing.T) {
	doc := MustParse("p.yaml", []byte(`version: 1
rules:
  - name: admins
    match: {roles: [admin]}
    require:
      piv:
        pin_policies: [always]
        touch_policies: [always, cached]
  - name: everyone
    match: {everyone: true}
    require:
      min_factors: 1
`))
	tests := []struct {
		name       string
		roles      []string
		kind       string
		pin, touch string
	}{
		{"an admin's PIV key gets the PIN always and touch always", []string{"admin"}, "piv", "always", "always"},
		{"a user's PIV key gets no constraint", []string{"user"}, "piv", "", ""},
		{"other kinds get nothing", []string{"admin"}, "fido2", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := EnrolOptions(doc, User{ID: "u1", Username: "u", Kind: "person", Roles: tt.roles}, tt.kind)
			if got["pin_policy"] != tt.pin || got["touch_policy"] != tt.touch {
				t.Fatalf("EnrolOptions = %v", got)
			}
		})
	}
}

func TestTOTPEnrolOptionsFollowThePolicy(t *testing.T) {
	doc := MustParse("p.yaml", []byte(`version: 1
rules:
  - name: finance
    match: {groups: [finance]}
    require:
      totp: {algorithms: [sha-256, SHA512], digits: [8], periods: [60, 30]}
  - name: everyone
    match: {everyone: true}
    require:
      min_factors: 1
`))
	finance := User{ID: "u1", Username: "fiona", Kind: "person", Groups: []string{"finance"}}
	other := User{ID: "u2", Username: "otto", Kind: "person"}
	tests := []struct {
		name string
		u    User
		want map[string]string
	}{
		{"finance gets SHA-256, eight digits and 30 s: the most compatible the rule accepts", finance,
			map[string]string{"algorithm": "SHA256", "digits": "8", "period": "30"}},
		{"others get no TOTP constraint", other, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := EnrolOptions(doc, tt.u, "totp")
			if len(got) != len(tt.want) {
				t.Fatalf("EnrolOptions = %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Fatalf("EnrolOptions = %v, want %v", got, tt.want)
				}
			}
		})
	}
	checks := []struct {
		name string
		u    User
		opts map[string]string
		ok   bool
	}{
		{"asking SHA-512 and a 60 s step is within the policy", finance, map[string]string{"algorithm": "SHA512", "period": "60"}, true},
		{"asking sha-256 as the TOTP kind also spells it is within the policy", finance, map[string]string{"algorithm": "sha-256"}, true},
		{"asking SHA-1 against the policy is refused", finance, map[string]string{"algorithm": "SHA1"}, false},
		{"asking six digits against the policy is refused", finance, map[string]string{"digits": "6", "algorithm": "SHA256"}, false},
		{"a user no rule constrains may ask anything", other, map[string]string{"algorithm": "SHA1", "digits": "6"}, true},
		{"an option the policy does not constrain passes", finance, map[string]string{"issuer": "Finance"}, true},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			err := CheckEnrolOptions(doc, c.u, "totp", c.opts)
			var re *RequirementError
			if (err == nil) != c.ok || (err != nil && (!errors.As(err, &re) || re.Reasons[0].Code != CodeTOTPParameters)) {
				t.Fatalf("CheckEnrolOptions(%v) = %v", c.opts, err)
			}
		})
	}
}
