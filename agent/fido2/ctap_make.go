package fido2

import (
	"errors"

	"github.com/fxamacker/cbor/v2"

	"github.com/keyfleet/keyfleet/agent"
)

type credentialDescriptor struct {
	ID   []byte `cbor:"id"`
	Type string `cbor:"type"`
}

func credentialIDs(list []credentialDescriptor) [][]byte {
	var out [][]byte
	for _, c := range list {
		if c.Type == "public-key" {
			out = append(out, c.ID)
		}
	}
	return out
}

type userEntity struct {
	ID          []byte `cbor:"id"`
	Name        string `cbor:"name,omitempty"`
	DisplayName string `cbor:"displayName,omitempty"`
}

type makeCredentialParams struct {
	ClientDataHash []byte `cbor:"1,keyasint"`
	RP             struct {
		ID   string `cbor:"id"`
		Name string `cbor:"name"`
	} `cbor:"2,keyasint"`
	User   *userEntity `cbor:"3,keyasint"`
	Params []struct {
		Alg  int    `cbor:"alg"`
		Type string `cbor:"type"`
	} `cbor:"4,keyasint"`
	Exclude    []credentialDescriptor `cbor:"5,keyasint"`
	Extensions map[string]any         `cbor:"6,keyasint"`
	Options    map[string]bool        `cbor:"7,keyasint"`
	PINAuth    []byte                 `cbor:"8,keyasint"`
	PINProto   int                    `cbor:"9,keyasint"`
	Enterprise int                    `cbor:"10,keyasint"`
}

// errKeyStoreFull: no room for another discoverable credential.
var errKeyStoreFull = errors.New("the key holds as many discoverable credentials as it can")

// ctapMakeCredential is authenticatorMakeCredential (§6.1).
func (s *Soft) ctapMakeCredential(b []byte) []byte {
	var p makeCredentialParams
	if err := cbor.Unmarshal(b, &p); err != nil {
		return []byte{ctapInvalidCBOR}
	}
	if p.ClientDataHash == nil || p.RP.ID == "" || p.User == nil || p.User.ID == nil || p.Params == nil {
		return []byte{ctapMissingParameter}
	}
	algs := make([]int, 0, len(p.Params))
	for _, a := range p.Params {
		algs = append(algs, a.Alg)
	}
	if err := checkAlgorithms(algs); err != nil || len(algs) == 0 {
		return []byte{ctapUnsupportedAlgorithm}
	}
	if st := checkMakeOptions(p.Options); st != nil {
		return st
	}
	uv, st := s.ctapUV(p.PINAuth, p.PINProto, p.ClientDataHash, permMakeCredential, p.RP.ID)
	if st != nil {
		return st
	}
	rk := p.Options["rk"]
	if uv == 0 && s.st.PINHash != nil && rk { // makeCredUvNotRqd: only a discoverable credential needs the PIN (§6.1.2 step 6)
		return []byte{ctapPUATRequired}
	}
	if rk && len(s.st.Resident) >= maxResidentKeys && !s.replacesResident(p.RP.ID, p.User.ID) {
		return []byte{ctapKeyStoreFull}
	}
	opts, ext := makeExtensions(p.Extensions)
	req := agent.MakeCredentialRequest{
		ClientDataHash: p.ClientDataHash, RPID: p.RP.ID, RPName: p.RP.Name,
		UserID: p.User.ID, UserName: p.User.Name, DisplayName: p.User.DisplayName,
		Algorithms: algs, Exclude: credentialIDs(p.Exclude), ResidentKey: rk,
		Enterprise: p.Enterprise != 0,
	}
	c, err := s.makeCredential(req, uv, opts, ext)
	if err != nil {
		return ctapStatus(err)
	}
	if uv != 0 {
		s.ctap.token.used()
	}
	out := map[int]any{1: "packed", 2: c.authData, 3: c.stmt}
	if req.Enterprise && s.st.Enterprise {
		out[4] = true // epAtt
	}
	return reply(out)
}

// checkMakeOptions refuses what the key cannot do: built-in user
// verification, and "up": false (§6.1.2 step 5: a credential always needs
// a touch).
func checkMakeOptions(o map[string]bool) []byte {
	if o["uv"] {
		return []byte{ctapUnsupportedOption}
	}
	if up, given := o["up"]; given && !up {
		return []byte{ctapInvalidOption}
	}
	return nil
}

func (s *Soft) replacesResident(rpID string, userID []byte) bool {
	for _, r := range s.st.Resident {
		if r.RPID == rpID && string(r.UserID) == string(userID) {
			return true
		}
	}
	return false
}

// makeExtensions reads the extensions this key supports from a
// makeCredential request: hmac-secret (true) and credProtect (1 to 3),
// and returns the credential's options and the authenticator extension
// output (nil when neither was asked). Others are ignored (§9).
func makeExtensions(in map[string]any) (credOptions, map[string]any) {
	var o credOptions
	out := map[string]any{}
	if v, ok := in["hmac-secret"].(bool); ok && v {
		o.HMACSecret = true
		out["hmac-secret"] = true
	}
	if n, ok := in["credProtect"].(uint64); ok && n >= 1 && n <= 3 {
		o.CredProtect = byte(n)
		out["credProtect"] = n
	}
	if len(out) == 0 {
		return o, nil
	}
	return o, out
}
