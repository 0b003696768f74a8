package fido2

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncbor"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/attest"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// factorState is the factor's state: the credential and its counter. It
// holds no secret, but the host seals it like any state.
type factorState struct {
	CredentialID     []byte `json:"credential_id"`
	PublicKey        []byte `json:"public_key"` // COSE_Key (RFC 9052 §7)
	SignCount        uint32 `json:"sign_count"`
	AAGUID           string `json:"aaguid,omitempty"`
	UserVerification string `json:"user_verification"`
}

// publicMaterial is the factor's public part, shown in the API.
type publicMaterial struct {
	CredentialID string `json:"credential_id"` // base64url, as in allowCredentials
	AAGUID       string `json:"aaguid,omitempty"`
	KeyAlgorithm string `json:"key_algorithm"`
	PublicKey    []byte `json:"public_key"` // DER SubjectPublicKeyInfo
	Serial       string `json:"serial,omitempty"`
}

// FinishEnrol verifies a registration (WebAuthn §7.1) with
// attest.VerifyFIDO2: the challenge, origin, RP ID hash, flags, the
// attestation statement and its chain to a trusted root at the request's
// time. Errors wrap sdk.ErrInvalidRequest (a malformed payload) or, for a
// key that fails, both sdk.ErrInvalidRequest and ErrRejected with the
// reason; sdk.ErrInvalidState for a state that is not this kind's.
func (f *Factor) FinishEnrol(_ context.Context, req sdk.FinishEnrolRequest) (sdk.FinishEnrolResponse, error) {
	var st enrolState
	if err := json.Unmarshal(req.State, &st); err != nil || st.UserVerification == "" {
		return sdk.FinishEnrolResponse{}, sdk.ErrInvalidState
	}
	reg, err := parseRegistration(req.Response)
	if err != nil {
		return sdk.FinishEnrolResponse{}, err
	}
	ev, err := attest.VerifyFIDO2(reg.Response.AttestationObject, reg.Response.ClientDataJSON, attest.FIDO2Expectation{
		Challenge: req.Challenge, Origins: f.cfg.Origins, RPID: f.cfg.RPID, Time: f.now(req.Now),
		Roots: f.roots(), RequireUserVerification: st.UserVerification == "required",
	})
	if err != nil {
		return sdk.FinishEnrolResponse{}, rejected("%v", err)
	}
	if !bytes.Equal(ev.CredentialID, reg.RawID) {
		return sdk.FinishEnrolResponse{}, rejected("rawId is not the credential id in the authenticator data")
	}
	if st.RequireAttestation && !ev.AAGUIDAttested {
		return sdk.FinishEnrolResponse{}, rejected("the key's attestation is %q, not a chain to a trusted root, and this enrolment requires one", ev.AttestationType)
	}
	cose, err := credentialPublicKey(reg.Response.AttestationObject)
	if err != nil {
		return sdk.FinishEnrolResponse{}, err
	}
	state := factorState{CredentialID: ev.CredentialID, PublicKey: cose, SignCount: ev.SignCount, AAGUID: ev.AAGUID, UserVerification: st.UserVerification}
	return enrolled(state, ev, reg.Handover)
}

// parseRegistration reads RegistrationResponseJSON (§5.1.8). Members
// browsers add (transports, publicKey, authenticatorData, …) are ignored.
func parseRegistration(raw []byte) (api.FIDO2Registration, error) {
	var r api.FIDO2Registration
	if err := json.Unmarshal(raw, &r); err != nil {
		return r, invalid("the fido2 enrolment payload is not WebAuthn registration JSON: %v", err)
	}
	switch {
	case r.Type != "public-key":
		return r, invalid("the credential type is %q, not \"public-key\"", r.Type)
	case len(r.RawID) == 0 || len(r.Response.AttestationObject) == 0 || len(r.Response.ClientDataJSON) == 0:
		return r, invalid("the fido2 enrolment needs rawId, response.attestationObject and response.clientDataJSON")
	case r.ID != base64.RawURLEncoding.EncodeToString(r.RawID):
		return r, invalid("id is not the base64url of rawId")
	}
	return r, nil
}

// credentialPublicKey returns the COSE key bytes from an attestation
// object that attest.VerifyFIDO2 has already verified.
func credentialPublicKey(attObj []byte) ([]byte, error) {
	var att protocol.AttestationObject
	if err := webauthncbor.Unmarshal(attObj, &att); err != nil {
		return nil, invalid("the attestation object is not valid CBOR")
	}
	if err := att.AuthData.Unmarshal(att.RawAuthData); err != nil {
		return nil, invalid("the authenticator data does not parse")
	}
	return att.AuthData.AttData.CredentialPublicKey, nil
}

func enrolled(st factorState, ev *attest.Evidence, handover bool) (sdk.FinishEnrolResponse, error) {
	dev := deviceOf(ev)
	pm := publicMaterial{CredentialID: base64.RawURLEncoding.EncodeToString(st.CredentialID), AAGUID: st.AAGUID,
		KeyAlgorithm: ev.KeyAlgorithm, PublicKey: ev.PublicKey}
	if dev != nil {
		pm.Serial = dev.Serial
	}
	state, err := json.Marshal(st)
	if err != nil {
		return sdk.FinishEnrolResponse{}, err
	}
	pub, err := json.Marshal(pm)
	if err != nil {
		return sdk.FinishEnrolResponse{}, err
	}
	evidence, err := json.Marshal(ev)
	if err != nil {
		return sdk.FinishEnrolResponse{}, err
	}
	return sdk.FinishEnrolResponse{State: state, Public: pub, Evidence: evidence, Device: dev, Pending: handover}, nil
}

// leaf returns the attestation certificate of verified evidence.
func leaf(ev *attest.Evidence) *x509.Certificate {
	if len(ev.Chain) == 0 {
		return nil
	}
	c, err := x509.ParseCertificate(ev.Chain[0])
	if err != nil {
		return nil
	}
	return c
}
