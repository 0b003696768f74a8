package core

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"io"
	"strings"
	"time"
)

// ID prefixes say what an id names, so a pasted id is never ambiguous.
const (
	prefixUser      = "usr_"
	prefixFactor    = "fac_"
	prefixDevice    = "dev_"
	prefixEnrolment = "enr_"
	prefixToken     = "tok_"
	prefixApproval  = "apr_"
)

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// newID returns prefix + 26 characters: 48 bits of milliseconds then 80
// random bits, so ids sort by creation time in the store.
func newID(prefix string, now time.Time, rnd io.Reader) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	if _, err := io.ReadFull(rnd, b[6:]); err != nil {
		// crypto/rand does not fail on supported platforms; a broken
		// injected reader is a programming error.
		panic("keyfleet: reading random bytes for an id: " + err.Error())
	}
	return prefix + idEncoding.EncodeToString(b[:])
}

// isID reports whether s has the shape of an id with the given prefix.
func isID(s, prefix string) bool {
	if !strings.HasPrefix(s, prefix) || len(s) != len(prefix)+26 {
		return false
	}
	_, err := idEncoding.DecodeString(s[len(prefix):])
	return err == nil
}

var defaultRand io.Reader = rand.Reader
