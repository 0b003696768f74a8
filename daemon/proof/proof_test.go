package proof

import (
	"bytes"
	"testing"
)

func TestDigestChangesWithEveryPartAndNotWithOrder(t *testing.T) {
	base := Binding{Action: ApprovalApprove, Subject: "apr_1", Details: map[string]string{"action": "user.disable", "target": "usr_bob"}}
	same := Binding{Action: ApprovalApprove, Subject: "apr_1", Details: map[string]string{"target": "usr_bob", "action": "user.disable"}}
	if base.Digest() != same.Digest() {
		t.Fatal("detail order changed the digest")
	}
	others := map[string]Binding{
		"another action":  {Action: ApprovalDeny, Subject: "apr_1", Details: base.Details},
		"another subject": {Action: ApprovalApprove, Subject: "apr_2", Details: base.Details},
		"another detail":  {Action: ApprovalApprove, Subject: "apr_1", Details: map[string]string{"action": "user.delete", "target": "usr_bob"}},
		"a detail less":   {Action: ApprovalApprove, Subject: "apr_1", Details: map[string]string{"action": "user.disable"}},
		// Length prefixes keep a value from sliding into the next field.
		"shifted boundary": {Action: ApprovalApprove, Subject: "apr_1", Details: map[string]string{"action": "user.disabletarget", "": "usr_bob"}},
	}
	for name, b := range others {
		if b.Digest() == base.Digest() {
			t.Errorf("%s: same digest", name)
		}
	}
}

func TestChallengeBindsNonceAndBinding(t *testing.T) {
	b := Binding{Action: TokenLogin, Subject: "usr_1"}
	n1, n2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	if bytes.Equal(Challenge(n1, b), Challenge(n2, b)) {
		t.Fatal("the nonce does not change the challenge")
	}
	if bytes.Equal(Challenge(n1, b), Challenge(n1, Binding{Action: TokenCreate, Subject: "usr_1"})) {
		t.Fatal("the binding does not change the challenge")
	}
	if len(Challenge(n1, b)) != 32 {
		t.Fatal("a challenge is 32 bytes")
	}
}

func TestEveryCatalogueEntryHasWordsAndAStrength(t *testing.T) {
	for _, a := range Actions() {
		r := Catalogue[a]
		if r.Words == "" || (r.Strength != Hardware && r.Strength != SecondFactor) {
			t.Errorf("%s: %+v", a, r)
		}
	}
	if Known("user.create") {
		t.Error("user.create needs no proof")
	}
}
