package attest

import (
	"encoding/json"
	"time"
)

// Registration is a WebAuthn registration saved to a file, with what the
// relying party expected: the input of an offline check
// (keyfleet attest webauthn --file F).
type Registration struct {
	AttestationObject []byte
	ClientDataJSON    []byte
	Challenge         []byte
	Origins           []string
	RPID              string
}

// registrationFile accepts both a flat file and the test-vector layout
// (credential.response.*, challenge_b64url / challenge_as_in_clientData).
type registrationFile struct {
	AttestationObject string          `json:"attestationObject"`
	ClientDataJSON    string          `json:"clientDataJSON"`
	Challenge         string          `json:"challenge"`
	ChallengeB64      string          `json:"challenge_b64url"`
	ChallengeAsIs     string          `json:"challenge_as_in_clientData"`
	Origin            json.RawMessage `json:"origin"`
	RPID              string          `json:"rpId"`
	Credential        struct {
		Response struct {
			AttestationObject string `json:"attestationObject"`
			ClientDataJSON    string `json:"clientDataJSON"`
		} `json:"response"`
	} `json:"credential"`
}

// ParseRegistrationJSON reads a registration file: a JSON object with
// attestationObject and clientDataJSON (base64url; at the top level or under
// credential.response), challenge (base64url), origin (a string or a list)
// and rpId. Errors wrap ErrMalformed.
func ParseRegistrationJSON(data []byte) (*Registration, error) {
	var f registrationFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fail(ErrMalformed, err, "the registration file is not valid JSON")
	}
	r := &Registration{RPID: f.RPID}
	var err error
	if r.AttestationObject, err = decodeB64URL(firstNonEmpty(f.AttestationObject, f.Credential.Response.AttestationObject)); err != nil {
		return nil, fail(ErrMalformed, err, "attestationObject is not base64url")
	}
	if r.ClientDataJSON, err = decodeB64URL(firstNonEmpty(f.ClientDataJSON, f.Credential.Response.ClientDataJSON)); err != nil {
		return nil, fail(ErrMalformed, err, "clientDataJSON is not base64url")
	}
	if r.Challenge, err = decodeB64URL(firstNonEmpty(f.Challenge, f.ChallengeB64, f.ChallengeAsIs)); err != nil {
		return nil, fail(ErrMalformed, err, "challenge is not base64url")
	}
	if len(f.Origin) > 0 && json.Unmarshal(f.Origin, &r.Origins) != nil {
		var one string
		if err := json.Unmarshal(f.Origin, &one); err != nil {
			return nil, fail(ErrMalformed, err, "origin is neither a string nor a list of strings")
		}
		r.Origins = []string{one}
	}
	if len(r.AttestationObject) == 0 || len(r.ClientDataJSON) == 0 {
		return nil, fail(ErrMalformed, nil, "the registration file lacks attestationObject or clientDataJSON")
	}
	return r, nil
}

// Expectation returns the FIDO2Expectation of the file's values at a
// verification time; add Roots as configured.
func (r *Registration) Expectation(at time.Time) FIDO2Expectation {
	return FIDO2Expectation{Challenge: r.Challenge, Origins: r.Origins, RPID: r.RPID, Time: at}
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
