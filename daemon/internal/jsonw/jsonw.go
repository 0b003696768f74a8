// Package jsonw writes the JSON that encoding/json writes for strings and
// times, without its reflection: for encoders of records whose bytes must
// stay what encoding/json made of them (the audit chain's canonical
// bodies, the store's records).
package jsonw

import (
	"encoding/json"
	"time"
	"unicode/utf8"
)

// AppendString appends s quoted as encoding/json quotes it (with its HTML
// escapes): a string of printable ASCII that needs no escape as it is,
// any other through encoding/json.
func AppendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// AppendTime appends t as time.Time's MarshalJSON does, for a time in UTC
// of a year it takes; ok is false for any other (encoding/json would
// write another zone's offset, or refuse the year).
func AppendTime(b []byte, t time.Time) (_ []byte, ok bool) {
	if _, off := t.Zone(); off != 0 || t.Year() < 0 || t.Year() > 9999 {
		return b, false
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), true
}
