package policy

import (
	"errors"
	"testing"
	"time"
)

const pushPolicy = `version: 1
rules:
  - name: staff
    match: {groups: [staff]}
    require:
      push: {number_matching: true}
  - name: contractors
    match: {groups: [contractors]}
    require:
      allowed_kinds: [fido2, totp]
  - name: everyone
    match: {everyone: true}
    require:
      min_factors: 1
`

func TestAPolicyCanRequireNumberMatchingForPushes(t *testing.T) {
	doc := MustParse("p.yaml", []byte(pushPolicy))
	staff := User{ID: "u1", Username: "sam", Kind: "person", Groups: []string{"staff"}}
	other := User{ID: "u2", Username: "olly", Kind: "person"}
	bare := Factor{ID: "f1", Kind: "push", State: FactorActive, Params: map[string]string{"number_matching": "false"}}
	matching := Factor{ID: "f2", Kind: "push", State: FactorActive, Params: map[string]string{"number_matching": "true"}}
	unknown := Factor{ID: "f3", Kind: "push", State: FactorActive}

	if got := EnrolOptions(doc, staff, "push"); got["number_matching"] != "true" {
		t.Errorf("staff's push enrolments are asked for %v", got)
	}
	if got := EnrolOptions(doc, other, "push"); got != nil {
		t.Errorf("others' push enrolments are asked for %v", got)
	}
	var re *RequirementError
	if err := CheckEnrolOptions(doc, staff, "push", map[string]string{"number_matching": "false"}); !errors.As(err, &re) || re.Reasons[0].Code != CodeNumberMatching {
		t.Errorf("a staff push without number matching at enrolment: %v", err)
	}
	if err := CheckEnrolOptions(doc, other, "push", map[string]string{"number_matching": "false"}); err != nil {
		t.Errorf("another user's push without number matching: %v", err)
	}
	for _, tt := range []struct {
		name string
		f    Factor
		ok   bool
	}{{"a push factor that matches numbers", matching, true}, {"one that does not", bare, false}, {"one that does not say", unknown, false}} {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckVerificationOf(doc, staff, tt.f, nil, time.Now())
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrRequirement)) {
				t.Fatalf("CheckVerificationOf: %v", err)
			}
			if (CheckEnrolment(doc, staff, tt.f) == nil) != tt.ok {
				t.Fatalf("CheckEnrolment disagrees")
			}
			d := Evaluate(doc, staff, []Factor{tt.f}, nil, nil, time.Now())
			if (d.Counted == 1) != tt.ok || (!tt.ok && !d.HasReason(CodeNumberMatching)) {
				t.Fatalf("Evaluate counted %d, reasons %v", d.Counted, d.Reasons)
			}
		})
	}
	if err := CheckVerificationOf(doc, other, bare, nil, time.Now()); err != nil {
		t.Errorf("another user's push without number matching: %v", err)
	}
}

func TestRulesAllowOrForbidPushLikeAnyKind(t *testing.T) {
	doc := MustParse("p.yaml", []byte(pushPolicy))
	contractor := User{ID: "u3", Username: "cora", Kind: "person", Groups: []string{"contractors"}}
	f := Factor{ID: "f1", Kind: "push", State: FactorActive, Params: map[string]string{"number_matching": "true"}}
	if err := CheckVerificationOf(doc, contractor, f, nil, time.Now()); !errors.Is(err, ErrRequirement) {
		t.Fatalf("a contractor verifying with push: %v", err)
	}
	if err := CheckEnrolment(doc, contractor, f); !errors.Is(err, ErrRequirement) {
		t.Fatalf("a contractor enrolling push: %v", err)
	}
}

func TestDroppingNumberMatchingIsAWeakerPolicy(t *testing.T) {
	old := MustParse("old.yaml", []byte(pushPolicy))
	weaker := MustParse("new.yaml", []byte(`version: 1
rules:
  - name: staff
    match: {groups: [staff]}
    require: {}
  - name: contractors
    match: {groups: [contractors]}
    require:
      allowed_kinds: [fido2, totp]
  - name: everyone
    match: {everyone: true}
    require:
      min_factors: 1
`))
	if !Weakens(old, weaker) || Weakens(weaker, old) {
		t.Fatal("turning push.number_matching off is not seen as weaker")
	}
	if _, err := Parse("bad.yaml", []byte("version: 1\nrules:\n  - name: x\n    match: {everyone: true}\n    require:\n      push: {number_matching: sometimes}\n")); err == nil {
		t.Fatal("push.number_matching: sometimes was accepted")
	}
}
