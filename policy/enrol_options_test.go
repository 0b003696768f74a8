package policy

import "testing"

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
