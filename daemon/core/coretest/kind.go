// Package coretest is the test kit for daemon/core: a factor kind whose
// enrolment and verification tests can drive without hardware.
package coretest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// Kind is a factor kind for tests, named "test". Its enrolment response is
// JSON {"challenge": <the enrolment challenge>, "secret": "...", "serial":
// "...", "pending": bool}: the challenge must match, the secret becomes the
// factor's state, and a serial puts the factor on a device of vendor
// "Test". A verification response {"secret": "..."} is accepted when it
// equals the state.
type Kind struct{}

var _ sdk.Factor = Kind{}

// Describe names the kind "test".
func (Kind) Describe(context.Context) (sdk.Info, error) {
	return sdk.Info{Kind: "test", DisplayName: "Test factor", Version: "1"}, nil
}

// BeginEnrol asks for nothing but the challenge.
func (Kind) BeginEnrol(_ context.Context, req sdk.BeginEnrolRequest) (sdk.BeginEnrolResponse, error) {
	// Display stands for what a TOTP enrolment shows its holder (the
	// seed's URI): a secret that must reach only them.
	return sdk.BeginEnrolResponse{Params: map[string]string{"slot": "9a"}, State: []byte("begun:" + req.EnrolmentID),
		Display: map[string]string{"secret_uri": "test://seed/" + req.EnrolmentID}}, nil
}

type enrolResponse struct {
	Challenge []byte `json:"challenge"`
	Secret    string `json:"secret"`
	Serial    string `json:"serial"`
	Pending   bool   `json:"pending"`
}

// FinishEnrol checks the challenge and keeps the secret as state.
func (Kind) FinishEnrol(_ context.Context, req sdk.FinishEnrolRequest) (sdk.FinishEnrolResponse, error) {
	var in enrolResponse
	if err := json.Unmarshal(req.Response, &in); err != nil {
		return sdk.FinishEnrolResponse{}, fmt.Errorf("%w: response: %v", sdk.ErrInvalidRequest, err)
	}
	if !bytes.Equal(in.Challenge, req.Challenge) {
		return sdk.FinishEnrolResponse{}, fmt.Errorf("%w: the challenge does not match this enrolment", sdk.ErrInvalidRequest)
	}
	if string(req.State) != "begun:"+req.EnrolmentID {
		return sdk.FinishEnrolResponse{}, fmt.Errorf("%w: enrolment state was not handed back", sdk.ErrInvalidState)
	}
	out := sdk.FinishEnrolResponse{State: []byte(in.Secret), Public: []byte(`{"alg":"test"}`), Pending: in.Pending}
	if in.Serial != "" {
		out.Device = &sdk.Device{Vendor: "Test", Model: "T1", Serial: in.Serial, Firmware: "1.0.0"}
	}
	return out, nil
}

// BeginVerify needs no challenge.
// BeginVerify shows the challenge it was given, as a real kind puts it in
// its prompt.
func (Kind) BeginVerify(_ context.Context, req sdk.BeginVerifyRequest) (sdk.BeginVerifyResponse, error) {
	prompt, err := json.Marshal(map[string][]byte{"challenge": req.Challenge})
	return sdk.BeginVerifyResponse{Prompt: prompt}, err
}

// FinishVerify accepts the factor's own secret.
func (Kind) FinishVerify(_ context.Context, req sdk.FinishVerifyRequest) (sdk.FinishVerifyResponse, error) {
	var in struct{ Secret string }
	if err := json.Unmarshal(req.Response, &in); err != nil {
		return sdk.FinishVerifyResponse{}, fmt.Errorf("%w: response: %v", sdk.ErrInvalidRequest, err)
	}
	if in.Secret != string(req.State) {
		return sdk.FinishVerifyResponse{Reason: "wrong secret"}, nil
	}
	return sdk.FinishVerifyResponse{OK: true}, nil
}

// EnrolPayload builds an enrolment response for Kind.
func EnrolPayload(challenge []byte, secret, serial string) json.RawMessage {
	b, _ := json.Marshal(enrolResponse{Challenge: challenge, Secret: secret, Serial: serial})
	return b
}
