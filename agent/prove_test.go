package agent

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"

	"github.com/keyfleet/keyfleet/api"
)

// signingToken is a PIV key whose slot signs with key.
type signingToken struct {
	PIVToken
	key *ecdsa.PrivateKey
	pin string
}

func (s *signingToken) PublicKey(string) (crypto.PublicKey, error) { return &s.key.PublicKey, nil }
func (s *signingToken) SignDigest(_ string, _ crypto.PublicKey, pin string, digest []byte) ([]byte, error) {
	if pin != s.pin {
		return nil, &WrongPINError{Retries: 2}
	}
	return ecdsa.SignASN1(rand.Reader, s.key, digest)
}

func challengeOf(factors ...api.VerificationFactor) api.ProofChallenge {
	return api.ProofChallenge{Verification: api.Verification{ID: "vrf_1", Factors: factors}, Action: "approval.approve", Summary: "approve apr_1"}
}

var (
	pivFactor  = api.VerificationFactor{FactorID: "fac_piv", Kind: "piv", Prompt: json.RawMessage(`{"challenge":"AAECAwQFBgcICQoLDA0ODw==","slot":"9a"}`)}
	totpFactor = api.VerificationFactor{FactorID: "fac_totp", Kind: "totp", Inputs: []string{"code"}}
)

func TestProveAnswersWithTheConnectedKeyOrACode(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	piv := &signingToken{key: key, pin: "123456"}
	asked := 0
	ask := func(vf api.VerificationFactor, input string) (string, error) { asked++; return "654321", nil }
	tests := []struct {
		name       string
		ch         api.ProofChallenge
		keys       Keys
		wantFactor string
		wantErr    error
		wantAsked  int
	}{
		{"a PIV key signs the challenge", challengeOf(pivFactor), Keys{PIV: piv, PIN: "123456"}, "fac_piv", nil, 0},
		{"a code answers a challenge that offers only an app", challengeOf(totpFactor), Keys{}, "fac_totp", nil, 1},
		{"a code never stands in for a key the challenge asks for", challengeOf(pivFactor), Keys{}, "", ErrNoAnswer, 0},
		{"a wrong PIN is the key's error", challengeOf(pivFactor), Keys{PIV: piv, PIN: "000000"}, "", &WrongPINError{}, 0},
		{"of two PIV keys enrolled, the one connected answers its own factor", challengeOf(pivFor(other), pivFor(key)), Keys{PIV: piv, PIN: "123456"}, "fac_" + keyName(key), nil, 0},
		{"a PIV key never signs for another key's factor", challengeOf(pivFor(other)), Keys{PIV: piv, PIN: "123456"}, "", ErrNoAnswer, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asked = 0
			p, err := Prove(tt.ch, tt.keys, ask)
			var wrong *WrongPINError
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatal(err)
			case errors.As(tt.wantErr, &wrong) && !errors.As(err, &wrong):
				t.Fatalf("err = %v, want a wrong PIN", err)
			case tt.wantErr == ErrNoAnswer && !errors.Is(err, ErrNoAnswer):
				t.Fatalf("err = %v, want ErrNoAnswer", err)
			}
			if p.FactorID != tt.wantFactor || asked != tt.wantAsked || (err == nil && p.ID != "vrf_1") {
				t.Fatalf("proof %+v, asked %d times", p, asked)
			}
		})
	}
	p, _ := Prove(challengeOf(pivFactor), Keys{PIV: piv, PIN: "123456"}, nil)
	var sig api.PIVAssertion
	json.Unmarshal(p.Response, &sig)
	digest := sha256.Sum256([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig.Signature) {
		t.Fatal("the PIV answer does not verify over SHA-256 of the challenge")
	}
	if p, _ := Prove(challengeOf(totpFactor), Keys{}, ask); string(p.Response) != `{"code":"654321"}` {
		t.Fatalf("a code answer is %s", p.Response)
	}
}

// pivFor is a piv factor whose prompt names key.
func pivFor(key *ecdsa.PrivateKey) api.VerificationFactor {
	spki, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	id := sha256.Sum256(spki)
	prompt, _ := json.Marshal(api.PIVChallenge{Challenge: make([]byte, 32), Slot: "9a", KeySHA256: hex.EncodeToString(id[:])})
	return api.VerificationFactor{FactorID: "fac_" + keyName(key), Kind: "piv", Prompt: prompt}
}

func keyName(key *ecdsa.PrivateKey) string { return key.X.Text(16)[:8] }

func TestParseChallengeRefusesWhatIsNotOne(t *testing.T) {
	for _, in := range []string{``, `{}`, `{"id":"vrf_1","action":"x"}`, `[1,2]`, `{"id":"vrf_1","action":"x","factors":[]}`} {
		if _, err := ParseChallenge([]byte(in)); !errors.Is(err, ErrBadChallenge) {
			t.Errorf("%q: %v", in, err)
		}
	}
	if _, err := ParseChallenge([]byte(`{"id":"vrf_1","action":"x","factors":[{"factor_id":"f","kind":"piv"}]}`)); err != nil {
		t.Fatal(err)
	}
}
