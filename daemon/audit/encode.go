package audit

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/keyfleet/keyfleet/api"
)

// The canonical body of an event is what encoding/json makes of it; its
// bytes are hashed into the chain, so they may never change. marshal
// writes those bytes itself for the events nearly every mutation records
// (strings, lists of strings, numbers, booleans and times in Before and
// After), which costs a fraction of encoding/json's reflection, and hands
// any other event to encoding/json. TestEventBodiesAreWhatEncodingJSONMakes
// holds the two to the same bytes.

// marshal is json.Marshal(ev).
func marshal(ev *Event) ([]byte, error) {
	if b, ok := appendEvent(make([]byte, 0, 512), ev); ok {
		return b, nil
	}
	return json.Marshal(ev)
}

// appendEvent appends ev's canonical body to b; ok is false when ev holds
// something it does not write (encoding/json writes that event).
func appendEvent(b []byte, ev *Event) (_ []byte, ok bool) {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, ev.Seq, 10)
	b = append(b, `,"time":`...)
	if b, ok = appendTime(b, ev.Time); !ok {
		return b, false
	}
	b = append(b, `,"actor":`...)
	b = appendActor(b, ev.Actor)
	if ev.Approver != nil {
		b = append(b, `,"approver":`...)
		b = appendActor(b, *ev.Approver)
	}
	b = append(b, `,"action":`...)
	b = appendString(b, ev.Action)
	b = append(b, `,"target":{"type":`...)
	b = appendString(b, ev.Target.Type)
	b = append(b, `,"id":`...)
	b = appendString(b, ev.Target.ID)
	if ev.Target.Name != "" {
		b = append(b, `,"name":`...)
		b = appendString(b, ev.Target.Name)
	}
	b = append(b, '}')
	for _, m := range []struct {
		name string
		m    map[string]any
	}{{"before", ev.Before}, {"after", ev.After}} {
		if len(m.m) == 0 {
			continue
		}
		b = append(b, ',')
		b = appendString(b, m.name)
		b = append(b, ':')
		if b, ok = appendValues(b, m.m); !ok {
			return b, false
		}
	}
	b = appendOmitEmpty(b, "reason", ev.Reason)
	b = appendOmitEmpty(b, "request_id", ev.RequestID)
	b = appendOmitEmpty(b, "source", ev.Source)
	if len(ev.Extra) > 0 {
		b = append(b, `,"extra":{`...)
		for i, k := range sortedKeys(ev.Extra) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, ev.Extra[k])
		}
		b = append(b, '}')
	}
	return append(b, '}'), true
}

func appendActor(b []byte, a api.Actor) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, a.ID)
	b = appendOmitEmpty(b, "name", a.Name)
	b = appendOmitEmpty(b, "auth", a.Auth)
	b = appendOmitEmpty(b, "token_id", a.TokenID)
	return append(b, '}')
}

// appendOmitEmpty appends ,"name":s unless s is empty.
func appendOmitEmpty(b []byte, name, s string) []byte {
	if s == "" {
		return b
	}
	b = append(b, ',')
	b = appendString(b, name)
	b = append(b, ':')
	return appendString(b, s)
}

// appendValues appends m as an object in key order; ok is false for a
// value of a type it does not write.
func appendValues(b []byte, m map[string]any) (_ []byte, ok bool) {
	b = append(b, '{')
	for i, k := range sortedKeys(m) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		if b, ok = appendValue(b, m[k]); !ok {
			return b, false
		}
	}
	return append(b, '}'), true
}

func appendValue(b []byte, v any) (_ []byte, ok bool) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), true
	case string:
		return appendString(b, v), true
	case bool:
		return strconv.AppendBool(b, v), true
	case int:
		return strconv.AppendInt(b, int64(v), 10), true
	case int64:
		return strconv.AppendInt(b, v, 10), true
	case uint64:
		return strconv.AppendUint(b, v, 10), true
	case time.Time:
		return appendTime(b, v)
	case []string:
		if v == nil {
			return append(b, "null"...), true
		}
		b = append(b, '[')
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		return append(b, ']'), true
	}
	return b, false
}

// appendTime appends t as time.Time's MarshalJSON does, for a time in
// UTC of a year it takes; ok is false for any other.
func appendTime(b []byte, t time.Time) (_ []byte, ok bool) {
	if _, off := t.Zone(); off != 0 || t.Year() < 0 || t.Year() > 9999 {
		return b, false
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), true
}

// appendString appends s quoted as encoding/json quotes it: a string of
// printable ASCII that needs no escape as it is, any other through
// encoding/json.
func appendString(b []byte, s string) []byte {
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

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
