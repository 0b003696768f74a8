package api

import (
	"encoding/base64"
	"strings"
)

// An enrolment code is what an administrator hands a user so they can
// enrol a key themselves: the enrolment's id and its challenge,
// "enr_….<base64url of the challenge>". It is single use and expires with
// the enrolment; the challenge (32 random bytes) makes it unguessable.
// The web welcome page (POST /welcome/begin) and
// `keyfleet-agent enroll --code` (POST /v1/enrolments/redeem) take it.

// EnrolmentCodePrefix starts every enrolment code (an enrolment id).
const EnrolmentCodePrefix = "enr_"

// EnrolmentCode formats the code of an enrolment.
func EnrolmentCode(id string, challenge []byte) string {
	return id + "." + base64.RawURLEncoding.EncodeToString(challenge)
}

// IsEnrolmentCode reports whether s has the shape of an enrolment code
// (and not of a temporary access pass, "kfp-…"). It does not say the code
// is valid.
func IsEnrolmentCode(s string) bool {
	id, _, ok := strings.Cut(strings.TrimSpace(s), ".")
	return ok && strings.HasPrefix(id, EnrolmentCodePrefix)
}

// ParseEnrolmentCode splits an enrolment code into the enrolment id and
// the challenge. ok is false when the code is malformed.
func ParseEnrolmentCode(code string) (id string, challenge []byte, ok bool) {
	id, chal, found := strings.Cut(strings.TrimSpace(code), ".")
	if !found || !strings.HasPrefix(id, EnrolmentCodePrefix) || len(id) > 64 || chal == "" {
		return "", nil, false
	}
	challenge, err := base64.RawURLEncoding.DecodeString(chal)
	if err != nil {
		return "", nil, false
	}
	return id, challenge, true
}
