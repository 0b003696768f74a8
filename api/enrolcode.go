package api

import (
	"encoding/base64"
	"strings"
)

// An enrolment code is what an administrator hands a user so they can
// enrol a key themselves: the enrolment's id and a secret of its own (not
// the enrolment's challenge, which other readers see),
// "enr_….<base64url of the secret>". It is single use and expires with
// the enrolment; the secret (24 random bytes) makes it unguessable, and
// keyfleetd keeps only its SHA-256.
// The web welcome page (POST /welcome/begin) and
// `keyfleet-agent enroll --code` (POST /v1/enrolments/redeem) take it.

// EnrolmentCodePrefix starts every enrolment code (an enrolment id).
const EnrolmentCodePrefix = "enr_"

// EnrolmentCode formats the code of an enrolment.
func EnrolmentCode(id string, secret []byte) string {
	return id + "." + base64.RawURLEncoding.EncodeToString(secret)
}

// IsEnrolmentCode reports whether s has the shape of an enrolment code
// (and not of a temporary access pass, "kfp-…"). It does not say the code
// is valid.
func IsEnrolmentCode(s string) bool {
	id, _, ok := strings.Cut(strings.TrimSpace(s), ".")
	return ok && strings.HasPrefix(id, EnrolmentCodePrefix)
}

// ParseEnrolmentCode splits an enrolment code into the enrolment id and
// its secret. ok is false when the code is malformed.
func ParseEnrolmentCode(code string) (id string, secret []byte, ok bool) {
	id, enc, found := strings.Cut(strings.TrimSpace(code), ".")
	if !found || !strings.HasPrefix(id, EnrolmentCodePrefix) || len(id) > 64 || enc == "" {
		return "", nil, false
	}
	secret, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return "", nil, false
	}
	return id, secret, true
}
