package fido2

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// enrolState is what BeginEnrol keeps for FinishEnrol (sealed by the
// host): the requirements this enrolment was opened with.
type enrolState struct {
	UserVerification   string `json:"user_verification"`
	Attestation        string `json:"attestation"`
	RequireAttestation bool   `json:"require_attestation"`
	UserHandle         []byte `json:"user_handle"`
}

// requirements merges the policy's options over the configuration.
// Errors wrap sdk.ErrInvalidRequest.
func (f *Factor) requirements(o map[string]string) (enrolState, error) {
	st := enrolState{UserVerification: f.cfg.UserVerification, Attestation: "direct", RequireAttestation: f.cfg.RequireAttestation}
	if f.cfg.EnterpriseAttestation {
		st.Attestation = "enterprise"
	}
	if v := o[api.FIDO2OptUserVerification]; v != "" {
		if !slices.Contains(userVerifications, v) {
			return st, invalid("user_verification %q is not one of %v", v, userVerifications)
		}
		st.UserVerification = v
	}
	switch v := o[api.FIDO2OptAttestation]; v {
	case "":
	case "direct", "enterprise":
		st.Attestation = v
	default:
		return st, invalid("attestation %q is not direct or enterprise", v)
	}
	if o[api.FIDO2OptRequireAttestation] == "true" {
		st.RequireAttestation = true
	}
	return st, nil
}

// BeginEnrol returns the WebAuthn creation options (§5.4) in Params (key
// api.FIDO2ParamOptions, a JSON string) and Display, with the origin a
// non-browser client must claim. Errors wrap sdk.ErrInvalidRequest for
// options that are not valid.
func (f *Factor) BeginEnrol(_ context.Context, req sdk.BeginEnrolRequest) (sdk.BeginEnrolResponse, error) {
	st, err := f.requirements(req.Options)
	if err != nil {
		return sdk.BeginEnrolResponse{}, err
	}
	if len(req.Challenge) < 16 {
		return sdk.BeginEnrolResponse{}, invalid("a fido2 enrolment needs a challenge of at least 16 bytes")
	}
	st.UserHandle = []byte(req.User.ID)
	if len(st.UserHandle) == 0 || len(st.UserHandle) > 64 { // §5.4.3: 1 to 64 bytes
		return sdk.BeginEnrolResponse{}, invalid("a fido2 enrolment needs a user id of 1 to 64 bytes")
	}
	exclude, err := excluded(req.Options[api.FIDO2OptExcludeCredentials])
	if err != nil {
		return sdk.BeginEnrolResponse{}, err
	}
	opts := f.creationOptions(req, st, exclude)
	b, err := json.Marshal(opts)
	if err != nil {
		return sdk.BeginEnrolResponse{}, err
	}
	state, err := json.Marshal(st)
	if err != nil {
		return sdk.BeginEnrolResponse{}, err
	}
	params := map[string]string{api.FIDO2ParamOptions: string(b), api.FIDO2ParamOrigin: f.cfg.Origins[0]}
	return sdk.BeginEnrolResponse{Params: params, Display: params, State: state}, nil
}

func (f *Factor) creationOptions(req sdk.BeginEnrolRequest, st enrolState, exclude []api.FIDO2CredentialDescriptor) api.FIDO2CreationOptions {
	name := req.User.Username
	if name == "" {
		name = req.User.ID
	}
	display := req.User.DisplayName
	if display == "" {
		display = name
	}
	rk := req.Options[api.FIDO2OptResidentKey]
	if rk == "" {
		rk = "discouraged"
	}
	return api.FIDO2CreationOptions{
		RP:               api.FIDO2RP{ID: f.cfg.RPID, Name: f.cfg.RPDisplayName},
		User:             api.FIDO2User{ID: st.UserHandle, Name: name, DisplayName: display},
		Challenge:        req.Challenge,
		PubKeyCredParams: credentialParams, Timeout: f.timeoutMS(),
		ExcludeCredentials: exclude,
		AuthenticatorSelection: api.FIDO2AuthenticatorSelection{AuthenticatorAttachment: "cross-platform",
			ResidentKey: rk, RequireResidentKey: rk == "required", UserVerification: st.UserVerification},
		Attestation: st.Attestation,
	}
}

// excluded parses a comma-separated list of base64url credential ids.
func excluded(list string) ([]api.FIDO2CredentialDescriptor, error) {
	out := []api.FIDO2CredentialDescriptor{}
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		id, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
		if err != nil {
			return nil, invalid("exclude_credentials: %q is not base64url", s)
		}
		out = append(out, api.FIDO2CredentialDescriptor{Type: "public-key", ID: id})
	}
	return out, nil
}
