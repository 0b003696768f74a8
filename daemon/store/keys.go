package store

import (
	"encoding/binary"
	"strings"
)

// Key layout. Every key the store writes is built here.
//
//	u/<user id>                  user record (JSON)
//	un/<username>                → user id (unique index; lists sort by it)
//	ug/<group>\x00<username>     → user id: the users of a group, by name
//	ur/<role>\x00<username>      → user id: the users with a role, by name
//	us/<status>\x00<username>    → user id: the users in a status, by name
//	uq/<term>\x00<username>      → user id: the user's search terms
//	                               (core.User.SearchTerms), for queries
//	f/<factor id>                factor record (JSON; secret already sealed)
//	fu/<user id>/<factor id>     factors of a user
//	fd/<device id>/<factor id>   factors on a device
//	d/<device id>                device record
//	ds/<vendor>\x00<serial>      → device id (unique index)
//	e/<enrolment id>             enrolment record
//	t/<token id>                 token record (hash only)
//	a/<approval id>              approval record
//	v/<verification id>          begun activation (expires with a Badger TTL)
//	vu/<verification id>         a finished verification (single use; Badger TTL)
//	rc/<user id>                 a user's recovery codes (argon2id hashes)
//	rk/<case id>                 recovery case
//	tp/<pass id>                 temporary access pass (SHA-256 of the code)
//	tph/<hex sha256 of code>     → pass id
//	bg                           the current break-glass verifier
//	ec/<sink>                    event sink cursor: last delivered seq (8 bytes)
//	ed/<sink>/<unix nanos, 8 B>  event sink dead letter (JSON)
//	L/<seq, 8 bytes big-endian>  audit record (see daemon/audit)
//	Lt/<target id>/<seq>         audit events about a target
//	La/<action>/<seq>            audit events of an action
//	Lc/<actor id>/<seq>          audit events by an actor
//	Lh                           audit chain head: seq (8) ‖ hash (32)
//	meta/schema                  store schema version
//	meta/seal-check              the sealing key's check value (daemon/seal)
//	pv/<version, 10 digits>      policy version (document, who applied it, approval)
//	pol/current                  → current policy version number (decimal)
//	pd/<approval id>             weakening policy document awaiting approval
//	x/<user id>/<exemption id>   approved exemption (id = its approval's id)
//	pf/<user id>                 the user's policy facts (binary; facts.go)
//	pf/<user id>\x00a            rule name → when it first applied to the user
//	                               (binary; the record itself: fa/<user id>
//	                               in JSON before schema 5)
//	pf/<user id>\x00f<factor id> the factor's policy facts (binary)
//	pf/<user id>\x00x<exem. id>  copy of the exemption's reason and end
//	ux/<source>\x00<external id> → user id (directory link; verified on read)
//	dst/<source>                 directory source state (last sync, cursor)
//	dg/<source>\x00<group id>    a SCIM client's group (JSON)
//
// The pf/ records (but the first-applied times) and the ug/, ur/, us/,
// uq/, La/ and Lc/ keys are indexes: written and deleted with the records they copy, in the same
// transaction, and built from them when a store of an older schema is
// opened (migrate.go).
//
// Ids begin with a type prefix and a time-ordered part, so primary keys
// list in creation order.
const (
	pUser        = "u/"
	pUsername    = "un/"
	pFactor      = "f/"
	pUserFactor  = "fu/"
	pDevFactor   = "fd/"
	pDevice      = "d/"
	pDeviceSer   = "ds/"
	pEnrolment   = "e/"
	pToken       = "t/"
	pApproval    = "a/"
	pVerify      = "v/"
	pVerifyUsed  = "vu/"
	pRecCodes    = "rc/"
	pRecCase     = "rk/"
	pPass        = "tp/"
	pPassHash    = "tph/"
	kBreakGlass  = "bg"
	pSinkCursor  = "ec/"
	pDeadLetter  = "ed/"
	pAudit       = "L/"
	pAuditTarget = "Lt/"
	pAuditAction = "La/"
	pAuditActor  = "Lc/"
	pUserGroup   = "ug/"
	pUserRole    = "ur/"
	pUserStatus  = "us/"
	pUserTerm    = "uq/"
	kAuditHead   = "Lh"
	kSchema      = "meta/schema"
	kSealCheck   = "meta/seal-check"

	pPolicyVersion = "pv/"
	kPolicyHead    = "pol/current"
	pPolicyDraft   = "pd/"
	pFirstApplied  = "fa/" // schema 4 and older; dropped at the upgrade
	pExemption     = "x/"
	pPolicyFacts   = "pf/"

	pExternal = "ux/"
	pDirState = "dst/"
	pDirGroup = "dg/"
)

// key is the parts joined, built in one allocation.
func key(parts ...string) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func userFactorKey(userID, factorID string) []byte { return key(pUserFactor, userID, "/", factorID) }
func devFactorKey(devID, factorID string) []byte   { return key(pDevFactor, devID, "/", factorID) }
func deviceSerialKey(vendor, serial string) []byte { return key(pDeviceSer, vendor, "\x00", serial) }

func seqBytes(seq uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	return b[:]
}

func auditKey(seq uint64) []byte { return append([]byte(pAudit), seqBytes(seq)...) }

// auditIndexKey files seq under value in the audit index prefix.
func auditIndexKey(prefix, value string, seq uint64) []byte {
	return append(key(prefix, value, "/"), seqBytes(seq)...)
}

// userIndexKey files a user under value in the user index prefix, in
// username order.
func userIndexKey(prefix, value, username string) []byte {
	return key(prefix, value, "\x00", username)
}

// lastSegment returns what follows the last "/" of an index key.
func lastSegment(k []byte) string {
	s := string(k)
	return s[strings.LastIndexByte(s, '/')+1:]
}
