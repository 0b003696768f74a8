package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"time"

	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// Confirm is the factor kind "confirm": an out-of-band yes or no.
type Confirm struct{}

// session is what the host keeps between BeginVerify and FinishVerify.
type session struct {
	ID       string    `json:"id"`
	Factor   string    `json:"factor"`
	Deadline time.Time `json:"deadline"`
}

// Message is what the device signs: the verification, the factor and the
// decision, so that an answer counts for that one verification only.
func Message(verificationID, factorID, decision string) []byte {
	return []byte("confirm/v1\n" + verificationID + "\n" + factorID + "\n" + decision)
}

// verify checks an ECDSA P-256 signature (r‖s, base64url) by the device
// key in state (an uncompressed point, base64url: what keyfleetd's
// companion channels read from the factor's public_key too).
func verify(state []byte, msg []byte, sig string) bool {
	pt, _ := base64.RawURLEncoding.DecodeString(string(state))
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt)
	s, _ := base64.RawURLEncoding.DecodeString(sig)
	h := sha256.Sum256(msg)
	return err == nil && len(s) == 64 && ecdsa.Verify(pub, h[:], new(big.Int).SetBytes(s[:32]), new(big.Int).SetBytes(s[32:]))
}

func bad(format string, a ...any) error {
	return fmt.Errorf("%w: confirm: "+format, append([]any{sdk.ErrInvalidRequest}, a...)...)
}

func (Confirm) Describe(context.Context) (sdk.Info, error) {
	return sdk.Info{Kind: "confirm", DisplayName: "Confirm on a device", Version: "1", OutOfBand: true,
		EnrolInputs:  []sdk.Input{{Name: "public_key"}, {Name: "signature"}},
		VerifyInputs: []sdk.Input{{Name: "verification_id"}, {Name: "factor_id"}, {Name: "decision"}, {Name: "signature"}}}, nil
}

// BeginEnrol asks the device to sign the enrolment's id and a nonce.
func (Confirm) BeginEnrol(_ context.Context, req sdk.BeginEnrolRequest) (sdk.BeginEnrolResponse, error) {
	nonce := rand.Text()
	return sdk.BeginEnrolResponse{Params: map[string]string{"nonce": nonce}, State: []byte(nonce)}, nil
}

// FinishEnrol keeps the device's public key once it has signed with it.
func (Confirm) FinishEnrol(_ context.Context, req sdk.FinishEnrolRequest) (sdk.FinishEnrolResponse, error) {
	var in struct {
		PublicKey string `json:"public_key"`
		Signature string `json:"signature"`
	}
	if json.Unmarshal(req.Response, &in) != nil || !verify([]byte(in.PublicKey), Message(req.EnrolmentID, string(req.State), "enrol"), in.Signature) {
		return sdk.FinishEnrolResponse{}, bad("want public_key and a signature with it over the nonce")
	}
	pub, _ := json.Marshal(map[string]string{"public_key": in.PublicKey})
	return sdk.FinishEnrolResponse{State: []byte(in.PublicKey), Public: pub}, nil
}

// BeginVerify returns what the device shows and the deadline to answer.
func (Confirm) BeginVerify(_ context.Context, req sdk.BeginVerifyRequest) (sdk.BeginVerifyResponse, error) {
	if len(req.State) != 87 { // 65 bytes in base64url
		return sdk.BeginVerifyResponse{}, fmt.Errorf("%w: confirm: not a public key", sdk.ErrInvalidState)
	}
	s := session{ID: req.VerificationID, Factor: req.FactorID, Deadline: req.Now.Add(time.Minute)}
	sess, _ := json.Marshal(s)
	delivery, _ := json.Marshal(map[string]string{"verification_id": s.ID, "factor_id": s.Factor,
		"text": req.User.Username + " is signing in to " + req.Context.Application})
	return sdk.BeginVerifyResponse{Session: sess, Delivery: delivery, Deadline: s.Deadline,
		Prompt: []byte(`{"message":"Confirm on your device"}`)}, nil
}

// FinishVerify checks the device's signed decision.
func (Confirm) FinishVerify(_ context.Context, req sdk.FinishVerifyRequest) (sdk.FinishVerifyResponse, error) {
	if len(req.State) != 87 {
		return sdk.FinishVerifyResponse{}, fmt.Errorf("%w: confirm: not a public key", sdk.ErrInvalidState)
	}
	var s session
	var in struct{ Decision, Signature string }
	if json.Unmarshal(req.Session, &s) != nil || json.Unmarshal(req.Response, &in) != nil || in.Decision == "" {
		return sdk.FinishVerifyResponse{}, bad("want a session, decision and signature")
	}
	switch {
	case !verify(req.State, Message(s.ID, s.Factor, in.Decision), in.Signature):
		return sdk.FinishVerifyResponse{Reason: "bad signature", Suspicious: true}, nil
	case req.Now.After(s.Deadline):
		return sdk.FinishVerifyResponse{Reason: "too late"}, nil
	case in.Decision == "not-me":
		return sdk.FinishVerifyResponse{Reason: "reported", Suspicious: true, Reported: true}, nil
	case in.Decision != "yes":
		return sdk.FinishVerifyResponse{Reason: "declined"}, nil
	}
	return sdk.FinishVerifyResponse{OK: true}, nil
}
