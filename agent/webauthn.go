package agent

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/keyfleet/keyfleet/api"
)

// The agent is a WebAuthn client for keys on this workstation: it does
// what a browser's navigator.credentials.create/get does (WebAuthn §5.1.3
// and §5.1.4) and produces the same JSON, so the daemon checks a key at
// the desk and a key in a browser the same way.

// clientDataJSON is CollectedClientData (§5.8.1), serialised as browsers
// do (§5.8.1.1: type, challenge, origin, crossOrigin first, in order).
func clientDataJSON(typ string, challenge []byte, origin string) []byte {
	b, _ := json.Marshal(struct {
		Type        string `json:"type"`
		Challenge   string `json:"challenge"`
		Origin      string `json:"origin"`
		CrossOrigin bool   `json:"crossOrigin"`
	}{typ, base64.RawURLEncoding.EncodeToString(challenge), origin, false})
	return b
}

// Ceremony is one WebAuthn call on a key. PIN is the key's PIN (empty
// when it has none); Touch, when set, is called before the key waits for
// a touch, to tell the user.
type Ceremony struct {
	Origin string
	PIN    string
	Touch  func()
}

func (c Ceremony) touch() {
	if c.Touch != nil {
		c.Touch()
	}
}

// Register makes a credential for the creation options and returns the
// registration JSON navigator.credentials.create() would. Enterprise
// attestation is asked for only when the options ask and the key offers
// it. Errors are the token's (*WrongPINError, ErrTouchTimeout, …).
func Register(tok FIDO2Token, opts api.FIDO2CreationOptions, c Ceremony) (api.FIDO2Registration, error) {
	info, err := tok.Info()
	if err != nil {
		return api.FIDO2Registration{}, err
	}
	cdj := clientDataJSON("webauthn.create", opts.Challenge, c.Origin)
	hash := sha256.Sum256(cdj)
	req := MakeCredentialRequest{
		ClientDataHash: hash[:], RPID: opts.RP.ID, RPName: opts.RP.Name,
		UserID: opts.User.ID, UserName: opts.User.Name, DisplayName: opts.User.DisplayName,
		ResidentKey: opts.AuthenticatorSelection.ResidentKey == "required",
		UV:          opts.AuthenticatorSelection.UserVerification == "required",
		Enterprise:  opts.Attestation == "enterprise" && info.Enterprise,
		PIN:         c.PIN,
	}
	for _, p := range opts.PubKeyCredParams {
		req.Algorithms = append(req.Algorithms, p.Alg)
	}
	for _, e := range opts.ExcludeCredentials {
		req.Exclude = append(req.Exclude, e.ID)
	}
	c.touch()
	att, err := tok.MakeCredential(req)
	if err != nil {
		return api.FIDO2Registration{}, err
	}
	return api.FIDO2Registration{
		ID: base64.RawURLEncoding.EncodeToString(att.CredentialID), RawID: att.CredentialID, Type: "public-key",
		Response:                api.FIDO2AttestationResponse{ClientDataJSON: cdj, AttestationObject: att.AttestationObject, Transports: []string{"usb"}},
		AuthenticatorAttachment: "cross-platform", ClientExtensionResults: json.RawMessage(`{}`),
	}, nil
}

// Authenticate answers request options with an assertion, as
// navigator.credentials.get() would.
func Authenticate(tok FIDO2Token, opts api.FIDO2RequestOptions, c Ceremony) (api.FIDO2Assertion, error) {
	cdj := clientDataJSON("webauthn.get", opts.Challenge, c.Origin)
	hash := sha256.Sum256(cdj)
	req := GetAssertionRequest{RPID: opts.RPID, ClientDataHash: hash[:], PIN: c.PIN,
		UV: opts.UserVerification == "required" || (opts.UserVerification == "preferred" && c.PIN != "")}
	if req.UV && c.PIN == "" {
		return api.FIDO2Assertion{}, errors.New("the daemon requires user verification: give the key's FIDO2 PIN")
	}
	for _, a := range opts.AllowCredentials {
		req.Allow = append(req.Allow, a.ID)
	}
	c.touch()
	as, err := tok.GetAssertion(req)
	if err != nil {
		return api.FIDO2Assertion{}, err
	}
	return api.FIDO2Assertion{
		ID: base64.RawURLEncoding.EncodeToString(as.CredentialID), RawID: as.CredentialID, Type: "public-key",
		Response: api.FIDO2AssertionResponse{ClientDataJSON: cdj, AuthenticatorData: as.AuthData,
			Signature: as.Signature, UserHandle: as.UserHandle},
		AuthenticatorAttachment: "cross-platform", ClientExtensionResults: json.RawMessage(`{}`),
	}, nil
}

// CreationOptions reads a "fido2" enrolment's params: the creation
// options and the origin to claim.
func CreationOptions(params []byte) (api.FIDO2CreationOptions, string, error) {
	var p map[string]string
	var opts api.FIDO2CreationOptions
	if err := json.Unmarshal(params, &p); err != nil {
		return opts, "", fmt.Errorf("reading the fido2 enrolment's params: %w", err)
	}
	if err := json.Unmarshal([]byte(p[api.FIDO2ParamOptions]), &opts); err != nil {
		return opts, "", fmt.Errorf("reading the fido2 enrolment's creation options: %w", err)
	}
	return opts, p[api.FIDO2ParamOrigin], nil
}
