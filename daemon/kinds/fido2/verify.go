package fido2

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// ReasonCloned is FinishVerify's reason for a sign-counter regression.
const ReasonCloned = "sign counter went backwards: possible cloned key"

func loadState(b []byte) (factorState, error) {
	var st factorState
	if err := json.Unmarshal(b, &st); err != nil || len(st.CredentialID) == 0 || len(st.PublicKey) == 0 {
		return st, sdk.ErrInvalidState
	}
	return st, nil
}

// BeginVerify returns the WebAuthn request options (§5.5) for this
// credential, with the host's challenge, which is kept as the session.
// Errors: sdk.ErrInvalidState, sdk.ErrInvalidRequest when the host gives
// no challenge.
func (f *Factor) BeginVerify(_ context.Context, req sdk.BeginVerifyRequest) (sdk.BeginVerifyResponse, error) {
	st, err := loadState(req.State)
	if err != nil {
		return sdk.BeginVerifyResponse{}, err
	}
	if len(req.Challenge) < 16 {
		return sdk.BeginVerifyResponse{}, invalid("a fido2 verification needs a challenge of at least 16 bytes")
	}
	prompt, err := json.Marshal(api.FIDO2RequestOptions{
		Challenge: req.Challenge, Timeout: f.timeoutMS(), RPID: f.cfg.RPID,
		AllowCredentials: []api.FIDO2CredentialDescriptor{{Type: "public-key", ID: st.CredentialID}},
		UserVerification: f.userVerification(st),
		// What the agent claims; "https://RP-ID" would miss an origin
		// with a port (https://localhost:8443).
		Origin: f.cfg.Origins[0],
	})
	if err != nil {
		return sdk.BeginVerifyResponse{}, err
	}
	return sdk.BeginVerifyResponse{Prompt: prompt, Session: bytes.Clone(req.Challenge)}, nil
}

// userVerification is the stricter of the factor's and the configuration's.
func (f *Factor) userVerification(st factorState) string {
	if st.UserVerification == "required" || f.cfg.UserVerification == "required" {
		return "required"
	}
	return f.cfg.UserVerification
}

// FinishVerify checks an assertion (WebAuthn §7.2): the credential, the
// client data (type, challenge, origin), the RP ID hash, the UP and UV
// flags, the signature over authenticatorData ‖ SHA-256(clientDataJSON),
// and the sign counter. A wrong answer is OK false with a reason, not an
// error; a counter regression is also Suspicious. Errors:
// sdk.ErrInvalidState, sdk.ErrInvalidRequest for an answer that does not
// parse.
func (f *Factor) FinishVerify(_ context.Context, req sdk.FinishVerifyRequest) (sdk.FinishVerifyResponse, error) {
	st, err := loadState(req.State)
	if err != nil {
		return sdk.FinishVerifyResponse{}, err
	}
	if len(req.Session) == 0 {
		return sdk.FinishVerifyResponse{}, invalid("a fido2 verification needs the session from BeginVerify")
	}
	a, ad, err := parseAssertion(req.Response)
	if err != nil {
		return sdk.FinishVerifyResponse{}, err
	}
	if reason := f.checkAssertion(st, a, ad, req.Session); reason != "" {
		return sdk.FinishVerifyResponse{OK: false, Reason: reason}, nil
	}
	// §7.2 step 21: a key that keeps a counter must increase it; a
	// counter at or below the stored one means two keys share the secret.
	if (ad.Counter != 0 || st.SignCount != 0) && ad.Counter <= st.SignCount {
		return sdk.FinishVerifyResponse{OK: false, Suspicious: true, Reason: ReasonCloned}, nil
	}
	st.SignCount = ad.Counter
	state, err := json.Marshal(st)
	if err != nil {
		return sdk.FinishVerifyResponse{}, err
	}
	return sdk.FinishVerifyResponse{OK: true, State: state}, nil
}

// parseAssertion reads AuthenticationResponseJSON (§5.1.9) and its
// authenticator data (§6.1).
func parseAssertion(raw []byte) (api.FIDO2Assertion, *protocol.AuthenticatorData, error) {
	var a api.FIDO2Assertion
	if err := json.Unmarshal(raw, &a); err != nil {
		return a, nil, invalid("the fido2 answer is not WebAuthn assertion JSON: %v", err)
	}
	r := a.Response
	if a.Type != "public-key" || len(a.RawID) == 0 || len(r.AuthenticatorData) == 0 || len(r.ClientDataJSON) == 0 || len(r.Signature) == 0 {
		return a, nil, invalid("the fido2 answer needs type public-key, rawId, response.authenticatorData, response.clientDataJSON and response.signature")
	}
	if a.ID != "" && a.ID != base64.RawURLEncoding.EncodeToString(a.RawID) {
		return a, nil, invalid("id is not the base64url of rawId")
	}
	var ad protocol.AuthenticatorData
	if err := ad.Unmarshal(r.AuthenticatorData); err != nil {
		return a, nil, invalid("the authenticator data does not parse: %v", err)
	}
	return a, &ad, nil
}

// assertionClientData is CollectedClientData (§5.8.1).
type assertionClientData struct {
	Type        string `json:"type"`
	Challenge   string `json:"challenge"`
	Origin      string `json:"origin"`
	CrossOrigin bool   `json:"crossOrigin"`
}

// checkAssertion returns why an assertion fails, or "" (§7.2 steps 5-20).
func (f *Factor) checkAssertion(st factorState, a api.FIDO2Assertion, ad *protocol.AuthenticatorData, challenge []byte) string {
	if !bytes.Equal(a.RawID, st.CredentialID) { // step 5
		return "the assertion is from another credential than the enrolled one"
	}
	if reason := f.checkClientData(a.Response.ClientDataJSON, challenge); reason != "" {
		return reason
	}
	want := sha256.Sum256([]byte(f.cfg.RPID))
	switch {
	case subtle.ConstantTimeCompare(ad.RPIDHash, want[:]) != 1: // step 15
		return fmt.Sprintf("the assertion was made for another relying party than %q", f.cfg.RPID)
	case !ad.Flags.UserPresent(): // step 16
		return "the key did not confirm a user was present (no touch)"
	case f.userVerification(st) == "required" && !ad.Flags.UserVerified(): // step 17
		return "the key did not verify the user (no PIN or biometric) and verification is required"
	}
	key, err := webauthncose.ParsePublicKey(st.PublicKey)
	if err != nil {
		return "the enrolled public key does not parse"
	}
	hash := sha256.Sum256(a.Response.ClientDataJSON)
	signed := append(bytes.Clone(a.Response.AuthenticatorData), hash[:]...)
	if ok, _ := webauthncose.VerifySignature(key, signed, a.Response.Signature); !ok { // step 20
		return "the signature does not verify with the enrolled key"
	}
	return ""
}

// checkClientData performs §7.2 steps 10-13.
func (f *Factor) checkClientData(raw, challenge []byte) string {
	var c assertionClientData
	if err := json.Unmarshal(raw, &c); err != nil {
		return "the client data is not valid JSON"
	}
	var got api.B64URL
	quoted, _ := json.Marshal(c.Challenge)
	switch {
	case c.Type != "webauthn.get":
		return fmt.Sprintf("the client data is of type %q, not an assertion (webauthn.get)", c.Type)
	case got.UnmarshalJSON(quoted) != nil || subtle.ConstantTimeCompare(got, challenge) != 1:
		return "the assertion answers another challenge than the one issued (replayed or from another session)"
	case !slices.Contains(f.cfg.Origins, c.Origin):
		return fmt.Sprintf("the assertion was made on %q, which is not an accepted origin", c.Origin)
	case c.CrossOrigin:
		return "the assertion was made inside a cross-origin frame"
	}
	return ""
}
