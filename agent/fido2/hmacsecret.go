package fido2

import (
	"crypto/hmac"
	"crypto/sha256"
)

// hmacSecretInput is the hmac-secret extension's getAssertion input
// (CTAP 2.1 §12.5): the platform's key agreement key, the salts encrypted
// to the shared secret, their authentication, and the PIN/UV auth
// protocol (one when absent).
type hmacSecretInput struct {
	KeyAgreement *platformKey `cbor:"1,keyasint"`
	SaltEnc      []byte       `cbor:"2,keyasint"`
	SaltAuth     []byte       `cbor:"3,keyasint"`
	Proto        int          `cbor:"4,keyasint"`
}

// hmacSecretRequest is a checked hmac-secret input: the protocol, the
// shared secret and one or two 32-byte salts.
type hmacSecretRequest struct {
	pp     pinProtocol
	secret []byte
	salts  [][]byte
}

// hmacSecretRequest checks the input: the shared secret from the key
// agreement, saltAuth over saltEnc, and one or two salts of 32 bytes.
// It returns the request, or the status to answer.
func (s *Soft) hmacSecretRequest(in hmacSecretInput) (*hmacSecretRequest, []byte) {
	if in.KeyAgreement == nil || in.SaltEnc == nil || in.SaltAuth == nil {
		return nil, []byte{ctapMissingParameter}
	}
	proto := in.Proto
	if proto == 0 {
		proto = 1
	}
	pp, ok := protocolFor(proto)
	if !ok {
		return nil, []byte{ctapInvalidParameter}
	}
	secret, st := s.sharedSecret(pp, in.KeyAgreement)
	if st != nil {
		return nil, st
	}
	if !verifyParam(pp, secret, in.SaltEnc, in.SaltAuth) {
		return nil, []byte{ctapPINAuthInvalid}
	}
	salt, err := pp.decrypt(secret, in.SaltEnc)
	if err != nil || (len(salt) != 32 && len(salt) != 64) {
		return nil, []byte{ctapInvalidLength}
	}
	r := &hmacSecretRequest{pp: pp, secret: secret, salts: [][]byte{salt[:32]}}
	if len(salt) == 64 {
		r.salts = append(r.salts, salt[32:])
	}
	return r, nil
}

// hmacSecretOutput is the extension output for one credential: HMAC-SHA-256
// of each salt under the credential's CredRandom (the one for verified
// users when uv, else the other), encrypted to the shared secret. A
// credential made without hmac-secret gets no output (nil), nor does a
// request without the extension.
func (s *Soft) hmacSecretOutput(r *hmacSecretRequest, c foundCred, uv bool) (map[string]any, []byte) {
	if r == nil || !c.opts.HMACSecret {
		return nil, nil
	}
	cr := s.credRandom(c.id, uv)
	var out []byte
	for _, salt := range r.salts {
		out = append(out, hmacSHA256(cr, salt)...)
	}
	enc, err := r.pp.encrypt(r.secret, out)
	if err != nil {
		return nil, []byte{ctapOther}
	}
	return map[string]any{"hmac-secret": enc}, nil
}

// credRandom is CredRandomWithUV or CredRandomWithoutUV of a credential:
// derived from the key's master key and the credential id rather than
// stored, so a non-resident credential needs no storage either. A reset
// replaces the master key, and with it every output.
func (s *Soft) credRandom(id []byte, uv bool) []byte {
	m := hmac.New(sha256.New, s.st.Master)
	m.Write([]byte("keyfleet hmac-secret"))
	if uv {
		m.Write([]byte{1})
	} else {
		m.Write([]byte{0})
	}
	m.Write(id)
	return m.Sum(nil)
}
