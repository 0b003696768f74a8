package coretest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// Key is a hardware factor kind for tests, named "testkey": it stands for
// a PIV or FIDO2 key where a test needs a person's own key (a fresh proof
// of possession) without a card. Its enrolment response is as Kind's; a
// verification prompt carries the challenge and the answer must give it
// back with the secret (KeyAnswer), so an answer is bound to one
// challenge, as a real key's signature is.
type Key struct{}

var _ sdk.Factor = Key{}

// Describe names the kind "testkey", a hardware kind.
func (Key) Describe(context.Context) (sdk.Info, error) {
	return sdk.Info{Kind: "testkey", DisplayName: "Test security key", Version: "1", Hardware: true}, nil
}

// BeginEnrol asks for nothing but the challenge.
func (Key) BeginEnrol(ctx context.Context, req sdk.BeginEnrolRequest) (sdk.BeginEnrolResponse, error) {
	return Kind{}.BeginEnrol(ctx, req)
}

// FinishEnrol checks the challenge and keeps the secret as state.
func (Key) FinishEnrol(ctx context.Context, req sdk.FinishEnrolRequest) (sdk.FinishEnrolResponse, error) {
	return Kind{}.FinishEnrol(ctx, req)
}

// BeginVerify shows the challenge and keeps it as the session.
func (Key) BeginVerify(_ context.Context, req sdk.BeginVerifyRequest) (sdk.BeginVerifyResponse, error) {
	prompt, err := json.Marshal(map[string][]byte{"challenge": req.Challenge})
	return sdk.BeginVerifyResponse{Prompt: prompt, Session: req.Challenge}, err
}

type keyAnswer struct {
	Secret    string `json:"secret"`
	Challenge []byte `json:"challenge"`
}

// FinishVerify accepts the factor's secret with the session's challenge.
func (Key) FinishVerify(_ context.Context, req sdk.FinishVerifyRequest) (sdk.FinishVerifyResponse, error) {
	var in keyAnswer
	if err := json.Unmarshal(req.Response, &in); err != nil {
		return sdk.FinishVerifyResponse{}, fmt.Errorf("%w: response: %v", sdk.ErrInvalidRequest, err)
	}
	if in.Secret != string(req.State) || !bytes.Equal(in.Challenge, req.Session) {
		return sdk.FinishVerifyResponse{Reason: "wrong secret or challenge"}, nil
	}
	return sdk.FinishVerifyResponse{OK: true}, nil
}

// KeyAnswer answers a testkey prompt with the factor's secret.
func KeyAnswer(prompt json.RawMessage, secret string) json.RawMessage {
	var p struct {
		Challenge []byte `json:"challenge"`
	}
	json.Unmarshal(prompt, &p)
	b, _ := json.Marshal(keyAnswer{Secret: secret, Challenge: p.Challenge})
	return b
}
