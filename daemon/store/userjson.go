package store

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/internal/jsonw"
)

// A user record (u/) is the JSON encoding/json makes of core.User.
// encodeUser writes those bytes itself for every user but one holding
// role grants or times outside UTC (encoding/json writes those), which
// costs a fraction of encoding/json's reflection on the path that creates
// users. TestUserRecordsAreWhatEncodingJSONMakes holds the two to the same
// bytes, with every field of the user set.

// encodeUser is json.Marshal(u).
func encodeUser(u *core.User) ([]byte, error) {
	if b, ok := appendUser(make([]byte, 0, 512), u); ok {
		return b, nil
	}
	return json.Marshal(u)
}

// appendUser appends u's record to b; ok is false when it leaves u to
// encoding/json.
func appendUser(b []byte, u *core.User) (_ []byte, ok bool) {
	if len(u.Grants) > 0 {
		return b, false
	}
	b = append(b, `{"id":`...)
	b = jsonw.AppendString(b, u.ID)
	b = jsonw.AppendString(field(b, "username"), u.Username)
	b = optString(b, "display_name", u.DisplayName)
	b = optString(b, "email", u.Email)
	b = jsonw.AppendString(field(b, "kind"), u.Kind)
	b = optStrings(b, "groups", u.Groups)
	b = optStrings(b, "roles", u.Roles)
	b = jsonw.AppendString(field(b, "status"), u.Status)
	if b, ok = jsonw.AppendTime(field(b, "created_at"), u.CreatedAt); !ok {
		return b, false
	}
	if b, ok = jsonw.AppendTime(field(b, "updated_at"), u.UpdatedAt); !ok {
		return b, false
	}
	b = optInt(b, "failures", u.Failures)
	if b, ok = optTime(b, "locked_until", u.LockedUntil); !ok {
		return b, false
	}
	b = optInt(b, "recovery_failures", u.RecoveryFailures)
	b = optTrue(b, "recovery_locked", u.RecoveryLocked)
	if b, ok = optTime(b, "pushes_locked_at", u.PushesLockedAt); !ok {
		return b, false
	}
	if b, ok = appendHandling(b, u.HandledBy); !ok {
		return b, false
	}
	if u.External != nil {
		if b, ok = appendLink(field(b, "external"), u.External); !ok {
			return b, false
		}
	}
	return append(b, '}'), true
}

func appendHandling(b []byte, hs []core.Handling) (_ []byte, ok bool) {
	if len(hs) == 0 {
		return b, true
	}
	b = append(field(b, "handled_by"), '[')
	for i, h := range hs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"by":`...)
		b = jsonw.AppendString(b, h.By)
		b = jsonw.AppendString(field(b, "what"), h.What)
		if b, ok = jsonw.AppendTime(field(b, "at"), h.At); !ok {
			return b, false
		}
		b = append(b, '}')
	}
	return append(b, ']'), true
}

func appendLink(b []byte, l *core.ExternalLink) (_ []byte, ok bool) {
	b = append(b, `{"source":`...)
	b = jsonw.AppendString(b, l.Source)
	b = optString(b, "id", l.ID)
	b = optString(b, "dn", l.DN)
	if b, ok = jsonw.AppendTime(field(b, "linked_at"), l.LinkedAt); !ok {
		return b, false
	}
	b = optString(b, "linked_by", l.LinkedBy)
	b = optTrue(b, "disabled", l.Disabled)
	b = optTrue(b, "gone", l.Gone)
	b = optStrings(b, "suspended", l.Suspended)
	b = optString(b, "request_id", l.RequestID)
	if len(l.Attributes) > 0 {
		b = append(field(b, "attributes"), '{')
		keys := make([]string, 0, len(l.Attributes))
		for k := range l.Attributes {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(jsonw.AppendString(b, k), ':')
			b = jsonw.AppendString(b, l.Attributes[k])
		}
		b = append(b, '}')
	}
	return append(b, '}'), true
}

// field appends ,"name": (name needs no escape).
func field(b []byte, name string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	return append(b, '"', ':')
}

// The opt* append a field tagged omitempty unless its value is empty.

func optString(b []byte, name, s string) []byte {
	if s == "" {
		return b
	}
	return jsonw.AppendString(field(b, name), s)
}

func optStrings(b []byte, name string, ss []string) []byte {
	if len(ss) == 0 {
		return b
	}
	b = append(field(b, name), '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonw.AppendString(b, s)
	}
	return append(b, ']')
}

func optInt(b []byte, name string, n int) []byte {
	if n == 0 {
		return b
	}
	return strconv.AppendInt(field(b, name), int64(n), 10)
}

func optTrue(b []byte, name string, v bool) []byte {
	if !v {
		return b
	}
	return append(field(b, name), "true"...)
}

func optTime(b []byte, name string, t *time.Time) (_ []byte, ok bool) {
	if t == nil {
		return b, true
	}
	return jsonw.AppendTime(field(b, name), *t)
}
