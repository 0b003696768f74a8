package fido2

import (
	"time"

	"github.com/fxamacker/cbor/v2"
)

type getAssertionParams struct {
	RPID           string                 `cbor:"1,keyasint"`
	ClientDataHash []byte                 `cbor:"2,keyasint"`
	Allow          []credentialDescriptor `cbor:"3,keyasint"`
	Extensions     struct {
		HMACSecret *hmacSecretInput `cbor:"hmac-secret"`
	} `cbor:"4,keyasint"`
	Options  map[string]bool `cbor:"5,keyasint"`
	PINAuth  []byte          `cbor:"6,keyasint"`
	PINProto int             `cbor:"7,keyasint"`
}

// assertionQueue is a discoverable sign-in that found several accounts:
// the credentials authenticatorGetNextAssertion hands out in turn, with
// what each assertion signs over (§6.3).
type assertionQueue struct {
	rpID           string
	clientDataHash []byte
	flags          byte
	creds          []foundCred
	hmac           *hmacSecretRequest
	expires        time.Time
}

// ctapGetAssertion is authenticatorGetAssertion (§6.2). With an empty
// allow list and several discoverable credentials for the RP it answers
// with the most recent one and their number, and keeps the others for
// authenticatorGetNextAssertion.
func (s *Soft) ctapGetAssertion(b []byte) []byte {
	var p getAssertionParams
	if err := cbor.Unmarshal(b, &p); err != nil {
		return []byte{ctapInvalidCBOR}
	}
	if p.RPID == "" || p.ClientDataHash == nil {
		return []byte{ctapMissingParameter}
	}
	if p.Options["uv"] {
		return []byte{ctapUnsupportedOption}
	}
	uv, st := s.ctapUV(p.PINAuth, p.PINProto, p.ClientDataHash, permGetAssertion, p.RPID)
	if st != nil {
		return st
	}
	var hs *hmacSecretRequest
	if p.Extensions.HMACSecret != nil {
		if hs, st = s.hmacSecretRequest(*p.Extensions.HMACSecret); st != nil {
			return st
		}
	}
	flags := uv
	if up, given := p.Options["up"]; up || !given {
		flags |= flagUP
	}
	allow := credentialIDs(p.Allow)
	creds := s.matching(p.RPID, allow, uv != 0)
	if len(creds) == 0 {
		return []byte{ctapNoCredentials}
	}
	if flags&flagUP != 0 {
		if err := s.touch(); err != nil {
			return ctapStatus(err)
		}
	}
	if uv != 0 {
		s.ctap.token.used()
	}
	q := &assertionQueue{rpID: p.RPID, clientDataHash: p.ClientDataHash, flags: flags, creds: creds, hmac: hs}
	if len(allow) > 0 {
		q.creds = creds[:1] // an allow list picks one credential (§6.2.2 step 7)
	}
	out := s.nextFrom(q)
	if len(q.creds) > 0 {
		out[5] = len(q.creds) + 1 // numberOfCredentials
		q.expires = s.o.Now().Add(nextAssertionTTL)
		s.ctap.next = q
	}
	return s.replySaved(out)
}

// ctapGetNextAssertion is authenticatorGetNextAssertion (§6.3): the next
// account of the last discoverable sign-in, within 30 s and with no other
// command in between.
func (s *Soft) ctapGetNextAssertion() []byte {
	q := s.ctap.next
	if q == nil || len(q.creds) == 0 || s.o.Now().After(q.expires) {
		s.ctap.next = nil
		return []byte{ctapNotAllowed}
	}
	return s.replySaved(s.nextFrom(q))
}

// nextFrom signs with the queue's next credential and removes it. The
// answer holds the credential, authenticator data, signature and, for a
// discoverable credential, the user: its id, and its name and display
// name only when the user was verified (§6.2.2 step 12). On failure it
// holds the CTAP status under key 0.
func (s *Soft) nextFrom(q *assertionQueue) map[int]any {
	c := q.creds[0]
	q.creds = q.creds[1:]
	ext, st := s.hmacSecretOutput(q.hmac, c, q.flags&flagUV != 0)
	if st != nil {
		return map[int]any{0: st}
	}
	a, err := s.assert(q.rpID, q.clientDataHash, c, q.flags, ext)
	if err != nil {
		return map[int]any{0: ctapStatus(err)}
	}
	out := map[int]any{1: credentialDescriptor{ID: a.CredentialID, Type: "public-key"}, 2: a.AuthData, 3: a.Signature}
	if c.res != nil {
		u := userEntity{ID: c.res.UserID}
		if q.flags&flagUV != 0 {
			u.Name, u.DisplayName = c.res.UserName, c.res.DisplayName
		}
		out[4] = u
	}
	return out
}

// replySaved saves the counter and answers out, or the status nextFrom
// left under key 0.
func (s *Soft) replySaved(out map[int]any) []byte {
	if st, failed := out[0].([]byte); failed {
		s.ctap.next = nil
		return st
	}
	if err := s.save(); err != nil {
		return []byte{ctapOther}
	}
	return reply(out)
}
