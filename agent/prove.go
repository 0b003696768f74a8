package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/keyfleet/keyfleet/api"
)

// A proof of action (docs/security.md, "Fresh proof") is a key's answer to
// a challenge keyfleetd bound to one action: approving a request, applying
// a policy, signing in. The agent answers it the way it answers a
// verification; the caller sends the resulting api.Proof with the action.

// KeyKinds are the factor kinds this agent answers with a connected key.
var KeyKinds = []string{"piv", "fido2"}

// ErrBadChallenge: what was given is not a proof challenge from keyfleetd.
var ErrBadChallenge = errors.New("this is not a proof challenge from keyfleetd (POST /v1/proofs or /v1/login/begin): it needs id, action and factors")

// CodeAsker asks the person for one input (a kind's verify input, such as
// a TOTP "code") of a factor that has no key to answer with.
type CodeAsker func(vf api.VerificationFactor, input string) (string, error)

// ParseChallenge reads a proof challenge as keyfleetd sent it. Errors:
// ErrBadChallenge.
func ParseChallenge(b []byte) (api.ProofChallenge, error) {
	var ch api.ProofChallenge
	if err := json.Unmarshal(b, &ch); err != nil || ch.ID == "" || ch.Action == "" || len(ch.Factors) == 0 {
		return api.ProofChallenge{}, ErrBadChallenge
	}
	return ch, nil
}

// WantsKey reports whether the challenge offers a factor this agent
// answers with a key (piv, fido2); when it offers none, only a code can
// answer it.
func WantsKey(ch api.ProofChallenge) bool {
	return slices.ContainsFunc(ch.Factors, func(vf api.VerificationFactor) bool { return slices.Contains(KeyKinds, vf.Kind) })
}

// Prove answers ch with the first offered factor a connected key holds: a
// PIV signature or a FIDO2 assertion, as for a verification. When ch
// offers no factor a key answers (a person with only an authenticator
// app, for the actions that allow it), ask supplies each input of the
// first code factor. The answer says nothing about the key but the
// signature or assertion. Errors: ErrNoAnswer, the keys' errors
// (*WrongPINError, ErrPINBlocked, …), ask's errors.
func Prove(ch api.ProofChallenge, k Keys, ask CodeAsker) (api.Proof, error) {
	for _, vf := range ch.Factors {
		if !slices.Contains(KeyKinds, vf.Kind) {
			continue
		}
		resp, err := k.Answer(vf)
		if errors.Is(err, ErrNoAnswer) {
			continue
		}
		if err != nil {
			return api.Proof{}, err
		}
		return api.Proof{ID: ch.ID, FactorID: vf.FactorID, Response: resp}, nil
	}
	if WantsKey(ch) || ask == nil {
		return api.Proof{}, ErrNoAnswer
	}
	for _, vf := range ch.Factors {
		if len(vf.Inputs) == 0 {
			continue
		}
		resp, err := codeAnswer(vf, ask)
		if err != nil {
			return api.Proof{}, err
		}
		return api.Proof{ID: ch.ID, FactorID: vf.FactorID, Response: resp}, nil
	}
	return api.Proof{}, ErrNoAnswer
}

// codeAnswer is a code factor's response: a JSON object of its inputs, as
// the kind's plugin reads it ({"code": "123456"} for TOTP).
func codeAnswer(vf api.VerificationFactor, ask CodeAsker) (json.RawMessage, error) {
	in := make(map[string]string, len(vf.Inputs))
	for _, name := range vf.Inputs {
		v, err := ask(vf, name)
		if err != nil {
			return nil, err
		}
		if v == "" {
			return nil, fmt.Errorf("no %s given for the %s factor: run the command again and type it", name, vf.Kind)
		}
		in[name] = v
	}
	return json.Marshal(in)
}
