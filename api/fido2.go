package api

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// Wire types of the "fido2" factor kind. They are exactly the JSON that
// WebAuthn Level 3 defines for browsers (§5.1.8 RegistrationResponseJSON,
// §5.1.9 AuthenticationResponseJSON, §5.4 PublicKeyCredentialCreationOptionsJSON,
// §5.5 PublicKeyCredentialRequestOptionsJSON): binary fields are unpadded
// base64url strings, so a web page passes them through
// PublicKeyCredential.parseCreationOptionsFromJSON / toJSON() unchanged,
// and the workstation agent produces the same shapes from a USB key.
//
// Enrolment: api.Enrolment.Params[FIDO2ParamOptions] is the creation
// options as a JSON string; the enrolling side answers with a
// FIDO2Registration as CompleteEnrolment.Payload.
// Verification: the prompt (api.VerificationFactor.Prompt) is a
// FIDO2RequestOptions; the answer (FinishVerify.Response) a FIDO2Assertion.

// B64URL is binary data carried as base64url without padding, WebAuthn's
// JSON encoding. Decoding also accepts padding and standard base64, which
// some clients and saved files use.
type B64URL []byte

// MarshalJSON writes unpadded base64url.
func (b B64URL) MarshalJSON() ([]byte, error) {
	return json.Marshal(base64.RawURLEncoding.EncodeToString(b))
}

// UnmarshalJSON reads base64url (or base64), with or without padding.
func (b *B64URL) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("expected a base64url string: %w", err)
	}
	s = strings.NewReplacer("+", "-", "/", "_").Replace(strings.TrimRight(s, "="))
	v, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("not base64url: %w", err)
	}
	*b = v
	return nil
}

// Keys of a "fido2" enrolment's Params.
const (
	// FIDO2ParamOptions is the PublicKeyCredentialCreationOptionsJSON, as
	// a JSON string, to pass to navigator.credentials.create({publicKey}).
	FIDO2ParamOptions = "public_key"
	// FIDO2ParamOrigin is the origin a non-browser client (the agent)
	// puts in clientDataJSON: the first origin the daemon accepts.
	FIDO2ParamOrigin = "origin"
)

// Options a policy may set on a "fido2" enrolment (sdk
// BeginEnrolRequest.Options).
const (
	FIDO2OptUserVerification   = "user_verification"   // required, preferred, discouraged
	FIDO2OptAttestation        = "attestation"         // direct, enterprise
	FIDO2OptRequireAttestation = "require_attestation" // "true": refuse keys without a trusted chain
	FIDO2OptResidentKey        = "resident_key"        // required, preferred, discouraged
	// FIDO2OptExcludeCredentials lists the user's existing credential ids
	// (base64url, comma separated) so a key is not registered twice.
	FIDO2OptExcludeCredentials = "exclude_credentials"
)

// FIDO2RP is PublicKeyCredentialRpEntity.
type FIDO2RP struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// FIDO2User is PublicKeyCredentialUserEntityJSON; ID is the user handle.
type FIDO2User struct {
	ID          B64URL `json:"id"`
	Name        string `json:"name"`
	DisplayName string `json:"displayName"`
}

// FIDO2CredParam is PublicKeyCredentialParameters (alg is a COSE id:
// -7 ES256, -8 EdDSA, -257 RS256).
type FIDO2CredParam struct {
	Type string `json:"type"`
	Alg  int    `json:"alg"`
}

// FIDO2CredentialDescriptor is PublicKeyCredentialDescriptorJSON.
type FIDO2CredentialDescriptor struct {
	Type       string   `json:"type"`
	ID         B64URL   `json:"id"`
	Transports []string `json:"transports,omitempty"`
}

// FIDO2AuthenticatorSelection is AuthenticatorSelectionCriteria.
type FIDO2AuthenticatorSelection struct {
	AuthenticatorAttachment string `json:"authenticatorAttachment,omitempty"`
	ResidentKey             string `json:"residentKey,omitempty"`
	RequireResidentKey      bool   `json:"requireResidentKey"`
	UserVerification        string `json:"userVerification,omitempty"`
}

// FIDO2CreationOptions is PublicKeyCredentialCreationOptionsJSON.
type FIDO2CreationOptions struct {
	RP                     FIDO2RP                     `json:"rp"`
	User                   FIDO2User                   `json:"user"`
	Challenge              B64URL                      `json:"challenge"`
	PubKeyCredParams       []FIDO2CredParam            `json:"pubKeyCredParams"`
	Timeout                int                         `json:"timeout,omitempty"` // milliseconds
	ExcludeCredentials     []FIDO2CredentialDescriptor `json:"excludeCredentials"`
	AuthenticatorSelection FIDO2AuthenticatorSelection `json:"authenticatorSelection"`
	Attestation            string                      `json:"attestation"` // "direct" or "enterprise"
}

// FIDO2RequestOptions is PublicKeyCredentialRequestOptionsJSON: the
// "fido2" verification prompt. Origin is keyfleet's own member, as
// params.origin is for an enrolment: the origin a client that is not a
// browser (keyfleet-agent) puts in clientDataJSON, one keyfleetd accepts
// (a browser claims its page's and ignores the member).
type FIDO2RequestOptions struct {
	Challenge        B64URL                      `json:"challenge"`
	Timeout          int                         `json:"timeout,omitempty"`
	RPID             string                      `json:"rpId"`
	AllowCredentials []FIDO2CredentialDescriptor `json:"allowCredentials"`
	UserVerification string                      `json:"userVerification"`
	Origin           string                      `json:"origin,omitempty"`
}

// FIDO2AttestationResponse is AuthenticatorAttestationResponseJSON (the
// fields the daemon reads; browsers add others, which are ignored).
type FIDO2AttestationResponse struct {
	ClientDataJSON    B64URL   `json:"clientDataJSON"`
	AttestationObject B64URL   `json:"attestationObject"`
	Transports        []string `json:"transports,omitempty"`
}

// FIDO2Registration is RegistrationResponseJSON: what
// navigator.credentials.create() returns, through toJSON(). It is the
// payload of a "fido2" CompleteEnrolment.
type FIDO2Registration struct {
	ID                      string                   `json:"id"` // base64url of RawID
	RawID                   B64URL                   `json:"rawId"`
	Type                    string                   `json:"type"` // "public-key"
	Response                FIDO2AttestationResponse `json:"response"`
	AuthenticatorAttachment string                   `json:"authenticatorAttachment,omitempty"`
	ClientExtensionResults  json.RawMessage          `json:"clientExtensionResults,omitempty"`
	// Handover is keyfleet's own member, not WebAuthn's: the key's PIN is
	// a printed hand-over PIN, so the factor stays pending until the user
	// activates it. Browsers never send it.
	Handover bool `json:"handover,omitempty"`
}

// FIDO2AssertionResponse is AuthenticatorAssertionResponseJSON.
type FIDO2AssertionResponse struct {
	ClientDataJSON    B64URL `json:"clientDataJSON"`
	AuthenticatorData B64URL `json:"authenticatorData"`
	Signature         B64URL `json:"signature"`
	UserHandle        B64URL `json:"userHandle,omitempty"`
}

// FIDO2Assertion is AuthenticationResponseJSON: what
// navigator.credentials.get() returns, through toJSON(). It answers a
// "fido2" verification.
type FIDO2Assertion struct {
	ID                      string                 `json:"id"`
	RawID                   B64URL                 `json:"rawId"`
	Type                    string                 `json:"type"`
	Response                FIDO2AssertionResponse `json:"response"`
	AuthenticatorAttachment string                 `json:"authenticatorAttachment,omitempty"`
	ClientExtensionResults  json.RawMessage        `json:"clientExtensionResults,omitempty"`
}
