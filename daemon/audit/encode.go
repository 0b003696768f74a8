package audit

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/internal/jsonw"
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
	if b, ok = jsonw.AppendTime(b, ev.Time); !ok {
		return b, false
	}
	b = append(b, `,"actor":`...)
	b = appendActor(b, ev.Actor)
	if ev.Approver != nil {
		b = append(b, `,"approver":`...)
		b = appendActor(b, *ev.Approver)
	}
	b = append(b, `,"action":`...)
	b = jsonw.AppendString(b, ev.Action)
	b = append(b, `,"target":{"type":`...)
	b = jsonw.AppendString(b, ev.Target.Type)
	b = append(b, `,"id":`...)
	b = jsonw.AppendString(b, ev.Target.ID)
	if ev.Target.Name != "" {
		b = append(b, `,"name":`...)
		b = jsonw.AppendString(b, ev.Target.Name)
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
		b = jsonw.AppendString(b, m.name)
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
			b = jsonw.AppendString(b, k)
			b = append(b, ':')
			b = jsonw.AppendString(b, ev.Extra[k])
		}
		b = append(b, '}')
	}
	return append(b, '}'), true
}

func appendActor(b []byte, a api.Actor) []byte {
	b = append(b, `{"id":`...)
	b = jsonw.AppendString(b, a.ID)
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
	b = jsonw.AppendString(b, name)
	b = append(b, ':')
	return jsonw.AppendString(b, s)
}

// appendValues appends m as an object in key order; ok is false for a
// value of a type it does not write.
func appendValues(b []byte, m map[string]any) (_ []byte, ok bool) {
	b = append(b, '{')
	for i, k := range sortedKeys(m) {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonw.AppendString(b, k)
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
		return jsonw.AppendString(b, v), true
	case bool:
		return strconv.AppendBool(b, v), true
	case int:
		return strconv.AppendInt(b, int64(v), 10), true
	case int64:
		return strconv.AppendInt(b, v, 10), true
	case uint64:
		return strconv.AppendUint(b, v, 10), true
	case time.Time:
		return jsonw.AppendTime(b, v)
	case []string:
		if v == nil {
			return append(b, "null"...), true
		}
		b = append(b, '[')
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonw.AppendString(b, s)
		}
		return append(b, ']'), true
	}
	return b, false
}

// sortedKeys is slices.Sorted(maps.Keys(m)) in one allocation: on the
// path of every audited write, the standard library's call, which grows
// its slice from nothing, made the encoder a third slower
// (BenchmarkEventBody: 9 allocations an event against 2).
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
