package piv

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// verifySignature checks a signature over SHA-256(challenge): ECDSA
// (ASN.1) or RSA PKCS #1 v1.5, as api.PIVEnrolment documents.
func verifySignature(pub crypto.PublicKey, challenge, sig []byte) bool {
	if len(challenge) == 0 {
		return false
	}
	digest := sha256.Sum256(challenge)
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(k, digest[:], sig)
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig) == nil
	}
	return false
}

func loadState(b []byte) (factorState, crypto.PublicKey, error) {
	var st factorState
	if err := json.Unmarshal(b, &st); err != nil || len(st.PublicKey) == 0 {
		return st, nil, sdk.ErrInvalidState
	}
	pub, err := x509.ParsePKIXPublicKey(st.PublicKey)
	if err != nil {
		return st, nil, sdk.ErrInvalidState
	}
	return st, pub, nil
}

// BeginVerify sends the host's challenge and the slot to sign with; the
// challenge is kept as the session. Errors: sdk.ErrInvalidState,
// sdk.ErrInvalidRequest when the host gives no challenge.
func (f *Factor) BeginVerify(_ context.Context, req sdk.BeginVerifyRequest) (sdk.BeginVerifyResponse, error) {
	st, _, err := loadState(req.State)
	if err != nil {
		return sdk.BeginVerifyResponse{}, err
	}
	if len(req.Challenge) < 16 {
		return sdk.BeginVerifyResponse{}, invalid("a piv verification needs a challenge of at least 16 bytes")
	}
	keyID := sha256.Sum256(st.PublicKey)
	prompt, err := json.Marshal(api.PIVChallenge{Challenge: req.Challenge, Slot: st.Slot, KeySHA256: hex.EncodeToString(keyID[:])})
	if err != nil {
		return sdk.BeginVerifyResponse{}, err
	}
	return sdk.BeginVerifyResponse{Prompt: prompt, Session: append([]byte(nil), req.Challenge...)}, nil
}

// FinishVerify checks the signature over the session's challenge. A wrong
// signature is OK false with a reason, not an error.
func (f *Factor) FinishVerify(_ context.Context, req sdk.FinishVerifyRequest) (sdk.FinishVerifyResponse, error) {
	_, pub, err := loadState(req.State)
	if err != nil {
		return sdk.FinishVerifyResponse{}, err
	}
	if len(req.Session) == 0 {
		return sdk.FinishVerifyResponse{}, invalid("a piv verification needs the session from BeginVerify")
	}
	var a api.PIVAssertion
	dec := json.NewDecoder(bytes.NewReader(req.Response))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil || len(a.Signature) == 0 {
		return sdk.FinishVerifyResponse{}, invalid("the piv verification answer needs a signature")
	}
	if !verifySignature(pub, req.Session, a.Signature) {
		return sdk.FinishVerifyResponse{OK: false, Reason: "the signature does not verify with the enrolled key"}, nil
	}
	return sdk.FinishVerifyResponse{OK: true}, nil
}
