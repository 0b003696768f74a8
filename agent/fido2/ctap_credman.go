package fido2

import (
	"bytes"
	"crypto/sha256"
	"slices"

	"github.com/fxamacker/cbor/v2"
)

// authenticatorCredentialManagement subcommands (CTAP 2.1 §6.8); the
// FIDO_2_1_PRE preview command (0x41) numbers them the same.
const (
	cmGetCredsMetadata   = 0x01
	cmEnumerateRPsBegin  = 0x02
	cmEnumerateRPsNext   = 0x03
	cmEnumerateCredBegin = 0x04
	cmEnumerateCredNext  = 0x05
	cmDeleteCredential   = 0x06
	cmUpdateUserInfo     = 0x07
)

type credMgmtParams struct {
	Sub     int             `cbor:"1,keyasint"`
	Params  cbor.RawMessage `cbor:"2,keyasint"`
	Proto   int             `cbor:"3,keyasint"`
	PINAuth []byte          `cbor:"4,keyasint"`
}

type credMgmtSubParams struct {
	RPIDHash     []byte                `cbor:"1,keyasint"`
	CredentialID *credentialDescriptor `cbor:"2,keyasint"`
	User         *userEntity           `cbor:"3,keyasint"`
}

// credmanCursor is an enumeration in progress: the RP ids or the
// credential ids still to hand out.
type credmanCursor struct {
	rps   []string
	creds [][]byte
}

// ctapCredMgmt is authenticatorCredentialManagement (§6.8): what a
// discoverable credential holds, listed by RP, deleted, its user renamed.
// Every subcommand that starts something needs a pinUvAuthToken with the
// cm permission (a legacy token will do for the preview command).
func (s *Soft) ctapCredMgmt(b []byte, preview bool) []byte {
	var p credMgmtParams
	if err := cbor.Unmarshal(b, &p); err != nil {
		return []byte{ctapInvalidCBOR}
	}
	var sub credMgmtSubParams
	if len(p.Params) > 0 {
		if err := cbor.Unmarshal(p.Params, &sub); err != nil {
			return []byte{ctapInvalidCBOR}
		}
	}
	if p.Sub != cmEnumerateRPsNext && p.Sub != cmEnumerateCredNext {
		s.ctap.credman = nil
	}
	switch p.Sub {
	case cmGetCredsMetadata, cmEnumerateRPsBegin:
		if st := s.credMgmtAuth(p, preview, ""); st != nil {
			return st
		}
		if p.Sub == cmGetCredsMetadata {
			return reply(map[int]any{1: len(s.st.Resident), 2: maxResidentKeys - len(s.st.Resident)})
		}
		return s.enumerateRPsBegin()
	case cmEnumerateRPsNext:
		return s.enumerateRPsNext()
	case cmEnumerateCredBegin:
		return s.enumerateCredsBegin(p, preview, sub)
	case cmEnumerateCredNext:
		return s.enumerateCredsNext()
	case cmDeleteCredential, cmUpdateUserInfo:
		return s.changeCredential(p, preview, sub)
	}
	return []byte{ctapInvalidSubcommand}
}

// credMgmtAuth checks pinUvAuthParam over subCommand ‖ subCommandParams
// with the token, its cm permission, and its RP ID: none may be bound for
// a subcommand about every RP (rpID empty), else it must be rpID's.
func (s *Soft) credMgmtAuth(p credMgmtParams, preview bool, rpID string) []byte {
	if p.PINAuth == nil {
		return []byte{ctapPUATRequired}
	}
	pp, ok := protocolFor(p.Proto)
	if !ok {
		return []byte{ctapMissingParameter}
	}
	t := s.ctap.token
	msg := append([]byte{byte(p.Sub)}, p.Params...)
	if t == nil || !verifyParam(pp, t.key, msg, p.PINAuth) {
		return []byte{ctapPINAuthInvalid}
	}
	if t.perms&permCredMgmt == 0 && !(preview && t.legacy) {
		return []byte{ctapPINAuthInvalid}
	}
	if t.rpID != "" && t.rpID != rpID {
		return []byte{ctapPINAuthInvalid}
	}
	return nil
}

// rpIDs lists the RPs that have discoverable credentials, oldest first.
func (s *Soft) rpIDs() []string {
	var out []string
	for _, r := range s.st.Resident {
		if !slices.Contains(out, r.RPID) {
			out = append(out, r.RPID)
		}
	}
	return out
}

func (s *Soft) rpEntity(rpID string) map[int]any {
	rp := map[string]string{"id": rpID}
	for _, r := range s.st.Resident {
		if r.RPID == rpID && r.RPName != "" {
			rp["name"] = r.RPName
		}
	}
	h := sha256.Sum256([]byte(rpID))
	return map[int]any{3: rp, 4: h[:]}
}

func (s *Soft) enumerateRPsBegin() []byte {
	rps := s.rpIDs()
	if len(rps) == 0 {
		return []byte{ctapNoCredentials}
	}
	out := s.rpEntity(rps[0])
	out[5] = len(rps)
	s.ctap.credman = &credmanCursor{rps: rps[1:]}
	return reply(out)
}

func (s *Soft) enumerateRPsNext() []byte {
	c := s.ctap.credman
	if c == nil || len(c.rps) == 0 {
		s.ctap.credman = nil
		return []byte{ctapNotAllowed}
	}
	rp := c.rps[0]
	c.rps = c.rps[1:]
	return reply(s.rpEntity(rp))
}

// rpOfHash finds the RP id whose SHA-256 is h among stored credentials.
func (s *Soft) rpOfHash(h []byte) (string, bool) {
	for _, rp := range s.rpIDs() {
		if sum := sha256.Sum256([]byte(rp)); bytes.Equal(sum[:], h) {
			return rp, true
		}
	}
	return "", false
}

func (s *Soft) enumerateCredsBegin(p credMgmtParams, preview bool, sub credMgmtSubParams) []byte {
	if sub.RPIDHash == nil {
		return []byte{ctapMissingParameter}
	}
	rp, found := s.rpOfHash(sub.RPIDHash)
	if st := s.credMgmtAuth(p, preview, rp); st != nil {
		return st
	}
	if !found {
		return []byte{ctapNoCredentials}
	}
	var ids [][]byte
	for _, r := range s.st.Resident {
		if r.RPID == rp {
			ids = append(ids, r.ID)
		}
	}
	out, st := s.credEntry(ids[0])
	if st != nil {
		return st
	}
	out[9] = len(ids)
	s.ctap.credman = &credmanCursor{creds: ids[1:]}
	return reply(out)
}

func (s *Soft) enumerateCredsNext() []byte {
	c := s.ctap.credman
	if c == nil || len(c.creds) == 0 {
		s.ctap.credman = nil
		return []byte{ctapNotAllowed}
	}
	id := c.creds[0]
	c.creds = c.creds[1:]
	out, st := s.credEntry(id)
	if st != nil {
		return st
	}
	return reply(out)
}

// credEntry describes a stored credential: its user, id, public key and
// credProtect level (1 when none was asked).
func (s *Soft) credEntry(id []byte) (map[int]any, []byte) {
	i := slices.IndexFunc(s.st.Resident, func(r resident) bool { return bytes.Equal(r.ID, id) })
	if i < 0 {
		return nil, []byte{ctapNoCredentials}
	}
	c, ok := s.residentCred(i)
	if !ok {
		return nil, []byte{ctapOther}
	}
	pub, err := coseKeyMap(&c.key.PublicKey)
	if err != nil {
		return nil, []byte{ctapOther}
	}
	level := max(c.opts.CredProtect, 1)
	u := userEntity{ID: c.res.UserID, Name: c.res.UserName, DisplayName: c.res.DisplayName}
	return map[int]any{6: u, 7: credentialDescriptor{ID: c.id, Type: "public-key"}, 8: pub, 0x0a: level}, nil
}

// changeCredential deletes a discoverable credential or updates its
// user's name and display name (the user id must be the credential's).
func (s *Soft) changeCredential(p credMgmtParams, preview bool, sub credMgmtSubParams) []byte {
	if sub.CredentialID == nil || (p.Sub == cmUpdateUserInfo && sub.User == nil) {
		return []byte{ctapMissingParameter}
	}
	i := slices.IndexFunc(s.st.Resident, func(r resident) bool { return bytes.Equal(r.ID, sub.CredentialID.ID) })
	rp := ""
	if i >= 0 {
		rp = s.st.Resident[i].RPID
	}
	if st := s.credMgmtAuth(p, preview, rp); st != nil {
		return st
	}
	if i < 0 {
		return []byte{ctapNoCredentials}
	}
	if p.Sub == cmDeleteCredential {
		s.st.Resident = slices.Delete(s.st.Resident, i, i+1)
	} else {
		r := &s.st.Resident[i]
		if !bytes.Equal(r.UserID, sub.User.ID) {
			return []byte{ctapInvalidParameter}
		}
		r.UserName, r.DisplayName = sub.User.Name, sub.User.DisplayName
	}
	if err := s.save(); err != nil {
		return []byte{ctapOther}
	}
	return []byte{ctapOK}
}
