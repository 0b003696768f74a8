package agent

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/keyfleet/keyfleet/api"
)

// Keys are the tokens that may answer a daemon's challenge, and the PIN
// and origin to answer with. A nil token is not there.
type Keys struct {
	PIV   PIVToken
	FIDO2 FIDO2Token
	// PIN is the key's PIN (PIV or FIDO2, as the challenge needs).
	PIN string
	// Origin is what FIDO2 assertions claim; default the one keyfleetd's
	// prompt names, else "https://" + rpId.
	Origin string
	Touch  func()
}

// ErrNoAnswer: none of the connected keys holds a factor the daemon asked
// about.
var ErrNoAnswer = errors.New("none of the connected keys holds a factor the daemon offered: insert the enrolled key")

// Answer answers one factor's prompt with the right token: a PIV
// signature over SHA-256(challenge) or a FIDO2 assertion.
func (k Keys) Answer(vf api.VerificationFactor) (json.RawMessage, error) {
	switch {
	case vf.Kind == "piv" && k.PIV != nil:
		return k.answerPIV(vf.Prompt)
	case vf.Kind == "fido2" && k.FIDO2 != nil:
		return k.answerFIDO2(vf.Prompt)
	}
	return nil, ErrNoAnswer
}

func (k Keys) answerPIV(prompt []byte) (json.RawMessage, error) {
	var c api.PIVChallenge
	if err := json.Unmarshal(prompt, &c); err != nil {
		return nil, fmt.Errorf("reading the piv challenge: %w", err)
	}
	pub, err := k.PIV.PublicKey(c.Slot)
	if err != nil {
		return nil, err
	}
	if c.KeySHA256 != "" && !sameKey(pub, c.KeySHA256) {
		// Another of the person's keys: let the one enrolled answer.
		return nil, ErrNoAnswer
	}
	digest := sha256.Sum256(c.Challenge)
	if k.Touch != nil {
		k.Touch()
	}
	sig, err := k.PIV.SignDigest(c.Slot, pub, k.PIN, digest[:])
	if err != nil {
		return nil, fmt.Errorf("signing the challenge: %w", err)
	}
	return json.Marshal(api.PIVAssertion{Signature: sig})
}

// sameKey reports whether pub is the key whose SubjectPublicKeyInfo has
// the hex SHA-256 want.
func sameKey(pub crypto.PublicKey, want string) bool {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return false
	}
	got := sha256.Sum256(spki)
	return hex.EncodeToString(got[:]) == want
}

func (k Keys) answerFIDO2(prompt []byte) (json.RawMessage, error) {
	var opts api.FIDO2RequestOptions
	if err := json.Unmarshal(prompt, &opts); err != nil {
		return nil, fmt.Errorf("reading the fido2 request options: %w", err)
	}
	origin := k.Origin
	if origin == "" {
		origin = opts.Origin
	}
	if origin == "" {
		origin = "https://" + opts.RPID
	}
	a, err := Authenticate(k.FIDO2, opts, Ceremony{Origin: origin, PIN: k.PIN, Touch: k.Touch})
	if errors.Is(err, ErrNoCredential) {
		return nil, ErrNoAnswer
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(a)
}

// Verifier is what proof of possession needs from keyfleetd.
type Verifier interface {
	BeginVerify(ctx context.Context, in api.BeginVerify) (api.Verification, error)
	FinishVerify(ctx context.Context, in api.FinishVerify) (api.VerifyResult, error)
}

// Verify proves that the connected key holds one of user's active factors
// (of kinds, if any): the daemon's challenge, answered by the first
// factor a connected key holds. A wrong answer is OK false, not an error.
func Verify(ctx context.Context, d Verifier, user string, kinds []string, k Keys) (api.VerifyResult, error) {
	v, err := d.BeginVerify(ctx, api.BeginVerify{User: user, Kinds: kinds})
	if err != nil {
		return api.VerifyResult{}, fmt.Errorf("asking the daemon for a challenge: %w", err)
	}
	for _, vf := range v.Factors {
		resp, err := k.Answer(vf)
		if errors.Is(err, ErrNoAnswer) {
			continue
		}
		if err != nil {
			return api.VerifyResult{}, err
		}
		return d.FinishVerify(ctx, api.FinishVerify{ID: v.ID, FactorID: vf.FactorID, Response: resp})
	}
	return api.VerifyResult{}, ErrNoAnswer
}
