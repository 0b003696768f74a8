package fido2

import (
	"crypto/sha256"
	"errors"
	"path/filepath"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/keyfleet/keyfleet/agent"
)

func newTestSoft(t *testing.T, o SoftOptions) *Soft {
	t.Helper()
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	o.CA = ca
	if o.Path == "" {
		o.Path = filepath.Join(t.TempDir(), "key.json")
	}
	k, err := NewSoft(o)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func makeCred(k *Soft, pin string, rk bool) (agent.Attestation, error) {
	h := sha256.Sum256([]byte("client data"))
	return k.MakeCredential(agent.MakeCredentialRequest{ClientDataHash: h[:], RPID: "keyfleet.test", UserID: []byte("u1"), UserName: "alice", Algorithms: []int{-7}, ResidentKey: rk, PIN: pin})
}

func TestThePINCountsDownAndBlocks(t *testing.T) {
	k := newTestSoft(t, SoftOptions{})
	if err := k.SetPIN("12"); !errors.Is(err, agent.ErrPINPolicy) {
		t.Fatalf("a 2-digit PIN: %v", err)
	}
	if err := k.SetPIN("246810"); err != nil {
		t.Fatal(err)
	}
	if _, err := makeCred(k, "", true); !errors.Is(err, agent.ErrFIDO2PINRequired) {
		t.Fatalf("a discoverable credential without the PIN: %v", err)
	}
	// makeCredUvNotRqd: a non-discoverable credential needs no PIN, and
	// says so with the UV flag clear.
	if att, err := makeCred(k, "", false); err != nil || authDataOf(t, att)[32]&flagUV != 0 {
		t.Fatalf("a non-discoverable credential without the PIN: %v", err)
	}
	var wp *agent.WrongPINError
	if err := k.ChangePIN("000000", "135790"); !errors.As(err, &wp) || wp.Retries != 7 {
		t.Fatalf("a wrong PIN: %v", err)
	}
	if _, err := makeCred(k, "246810", false); err != nil {
		t.Fatalf("the right PIN: %v", err)
	}
	if n, _ := k.PINRetries(); n != 8 {
		t.Fatalf("the right PIN leaves %d retries, want 8", n)
	}
	// Three wrong PINs in a row block PIN checks until the key is plugged
	// in again, even the right PIN; the retries go on counting down
	// across power-ups.
	for i := 0; i < 6; i++ {
		if i%3 == 0 {
			k.PowerUp()
		}
		err := k.ChangePIN("000000", "135790")
		if i%3 == 2 && !errors.Is(err, agent.ErrPINAuthBlocked) {
			t.Fatalf("wrong PIN %d in a row: %v", i%3+1, err)
		}
	}
	if err := k.ChangePIN("246810", "135790"); !errors.Is(err, agent.ErrPINAuthBlocked) {
		t.Fatalf("the right PIN before a power-up: %v", err)
	}
	k.PowerUp()
	if err := k.ChangePIN("000000", "135790"); !errors.As(err, &wp) || wp.Retries != 1 {
		t.Fatalf("the seventh wrong PIN: %v", err)
	}
	if err := k.ChangePIN("000000", "135790"); !errors.Is(err, agent.ErrPINBlocked) {
		t.Fatalf("the eighth wrong PIN: %v", err)
	}
	if _, err := makeCred(k, "246810", false); !errors.Is(err, agent.ErrPINBlocked) {
		t.Fatalf("a blocked key still works: %v", err)
	}
}

func authDataOf(t *testing.T, att agent.Attestation) []byte {
	t.Helper()
	var obj struct {
		AuthData []byte `cbor:"authData"`
	}
	if err := cbor.Unmarshal(att.AttestationObject, &obj); err != nil {
		t.Fatal(err)
	}
	return obj.AuthData
}

func TestTheStateFileKeepsTheKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key.json")
	k := newTestSoft(t, SoftOptions{Path: path, Serial: 42424242})
	k.SetPIN("4711")
	att, err := makeCred(k, "4711", true)
	if err != nil {
		t.Fatal(err)
	}
	again, err := NewSoft(SoftOptions{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte("another"))
	a, err := again.GetAssertion(agent.GetAssertionRequest{RPID: "keyfleet.test", ClientDataHash: h[:]})
	if err != nil || string(a.CredentialID) != string(att.CredentialID) || string(a.UserHandle) != "u1" {
		t.Fatalf("a resident credential after a restart: %+v %v", a, err)
	}
	if again.Serial() != 42424242 || again.Counter() != 2 {
		t.Fatalf("serial %d counter %d", again.Serial(), again.Counter())
	}
}

func TestTouchAndRemoval(t *testing.T) {
	tests := []struct {
		name  string
		touch TouchMode
		pull  bool
		want  error
	}{
		{"a declined touch", TouchDeny, false, agent.ErrTouchDenied},
		{"a touch that never comes", TouchTimeout, false, agent.ErrTouchTimeout},
		{"a key pulled out while it blinks", TouchApprove, true, agent.ErrKeyRemoved},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var k *Soft
			k = newTestSoft(t, SoftOptions{Touch: tt.touch, OnTouch: func() {
				if tt.pull {
					k.Remove()
				}
			}})
			if _, err := makeCred(k, "", false); !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
}

func TestAnExcludedCredentialIsRefused(t *testing.T) {
	k := newTestSoft(t, SoftOptions{})
	att, _ := makeCred(k, "", false)
	h := sha256.Sum256([]byte("x"))
	_, err := k.MakeCredential(agent.MakeCredentialRequest{ClientDataHash: h[:], RPID: "keyfleet.test", UserID: []byte("u1"), UserName: "alice", Exclude: [][]byte{att.CredentialID}})
	if !errors.Is(err, agent.ErrCredentialExcluded) {
		t.Fatalf("error %v", err)
	}
	// The same id is no credential of another relying party.
	if _, err := k.GetAssertion(agent.GetAssertionRequest{RPID: "other.test", ClientDataHash: h[:], Allow: [][]byte{att.CredentialID}}); !errors.Is(err, agent.ErrNoCredential) {
		t.Fatalf("error %v", err)
	}
}
