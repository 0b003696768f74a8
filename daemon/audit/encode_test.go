package audit

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
)

// odd strings: every character encoding/json escapes or replaces.
var oddStrings = []string{"", "plain", `quote " and \ backslash`, "<script>&amp;</script>", "tab\tnew\nline\r\x00\x1f\x7f",
	"\b\f", "é ü 日本", "\u2028\u2029", "bad \xff\xfe utf-8", "emoji 🔑"}

// The bodies the encoder writes are, byte for byte, what encoding/json
// makes of the same event: every field set and unset, every string
// encoding/json escapes, lists nil and empty, times with and without
// fractions and in other zones, and values of types the encoder leaves to
// encoding/json (which then writes the whole event).
func TestEventBodiesAreWhatEncodingJSONMakes(t *testing.T) {
	at := time.Date(2026, 12, 7, 16, 54, 14, 946_429_000, time.UTC)
	paris := time.FixedZone("CET", 3600)
	events := []struct {
		name string
		ev   Event
		fast bool // the encoder writes it itself
	}{
		{"a user created by a directory", Event{Seq: 12, Time: at, Actor: api.Actor{ID: "directory", Name: "directory:corp", Auth: "directory"},
			Action: "user.create", Target: api.Target{Type: "user", ID: "usr_1", Name: "user000505"},
			After: map[string]any{"groups": []string{"team-5"}, "kind": "person", "roles": []string{"user"}, "status": "active", "username": "user000505"},
			Extra: map[string]string{"source": "corp"}}, true},
		{"rules applied", Event{Seq: 11, Time: at, Actor: api.Actor{ID: "system", Name: "keyfleetd", Auth: "system"}, Action: "policy.rules_applied",
			Target: api.Target{Type: "user", ID: "usr_2", Name: "user000504"},
			After:  map[string]any{"deadline": at.Add(14 * 24 * time.Hour), "policy_version": 1, "rules": []string{"everyone", "oncall"}, "status": "grace"}}, true},
		{"nothing but the action", Event{Action: "x"}, true},
		{"every field", Event{Seq: 1<<64 - 1, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Actor: api.Actor{ID: "a", Name: "n", Auth: "token", TokenID: "tok"},
			Approver: &api.Actor{ID: "b"}, Action: "y", Target: api.Target{Type: "t", ID: "i"},
			Before: map[string]any{"empty": []string{}, "nil": []string(nil), "none": nil, "yes": true, "no": false, "n": int64(-5), "u": uint64(7), "i": -3},
			After:  map[string]any{"z": "", "a": "b"}, Reason: "r", RequestID: "req", Source: "src", Extra: map[string]string{"b": "2", "a": "1"}}, true},
		{"empty maps are left out", Event{Action: "x", Before: map[string]any{}, After: map[string]any{}, Extra: map[string]string{}}, true},
		{"a time in another zone", Event{Action: "x", Time: at.In(paris), After: map[string]any{"t": at.In(paris)}}, false},
		{"a year out of range", Event{Action: "x", After: map[string]any{"t": time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}, false},
		{"a number of another type", Event{Action: "x", After: map[string]any{"f": 1.5, "i32": int32(3)}}, false},
		{"a nested map", Event{Action: "x", After: map[string]any{"m": map[string]any{"b": 1, "a": []any{"x", 2}}}}, false},
		{"a struct", Event{Action: "x", After: map[string]any{"who": api.Actor{ID: "x"}}}, false},
	}
	for i, s := range oddStrings {
		events = append(events, struct {
			name string
			ev   Event
			fast bool
		}{"odd string " + string(rune('0'+i)), Event{Actor: api.Actor{ID: s, Name: s}, Action: s, Target: api.Target{Type: s, ID: s, Name: s},
			After: map[string]any{s: s, "list" + s: []string{s, s}}, Reason: s, Extra: map[string]string{s: s}}, true})
	}
	for _, c := range events {
		want, wantErr := json.Marshal(&c.ev)
		got, err := marshal(&c.ev)
		if !bytes.Equal(got, want) || (err == nil) != (wantErr == nil) {
			t.Errorf("%s:\n got %s (%v)\nwant %s (%v)", c.name, got, err, want, wantErr)
		}
		if _, fast := appendEvent(nil, &c.ev); fast != c.fast {
			t.Errorf("%s: written by the encoder itself: %v, want %v", c.name, fast, c.fast)
		}
	}
}

// The same, for any strings and numbers.
func FuzzEventBody(f *testing.F) {
	for _, s := range oddStrings {
		f.Add(s, s, int64(len(s)), uint64(len(s)))
	}
	f.Fuzz(func(t *testing.T, a, b string, n int64, seq uint64) {
		ev := Event{Seq: seq, Time: time.Unix(0, n).UTC(), Actor: api.Actor{ID: a, Name: b}, Action: a, Target: api.Target{Type: b, ID: a, Name: b},
			Before: map[string]any{a: b, b: n}, After: map[string]any{"l": []string{a, b}, a: time.Unix(n, 0).UTC()}, Reason: b, Extra: map[string]string{a: b}}
		want, wantErr := json.Marshal(&ev)
		got, err := marshal(&ev)
		if !bytes.Equal(got, want) || (err == nil) != (wantErr == nil) {
			t.Errorf("got %s (%v)\nwant %s (%v)", got, err, want, wantErr)
		}
	})
}

// BenchmarkEventBody is the canonical body of the two events a directory
// sync records for each user it creates (user.create, then
// policy.rules_applied), written by the encoder and by encoding/json.
func BenchmarkEventBody(b *testing.B) {
	at := time.Date(2026, 12, 7, 16, 54, 14, 946_429_000, time.UTC)
	evs := []Event{
		{Seq: 12, Time: at, Actor: api.Actor{ID: "directory", Name: "directory:corp", Auth: "directory"},
			Action: "user.create", Target: api.Target{Type: "user", ID: "usr_06h51s2xmygyg7sbkx2j4f83mc", Name: "user000505"},
			After: map[string]any{"groups": []string{"team-5"}, "kind": "person", "roles": []string{"user"}, "status": "active", "username": "user000505"},
			Extra: map[string]string{"source": "corp"}},
		{Seq: 13, Time: at, Actor: api.Actor{ID: "system", Name: "keyfleetd", Auth: "system"}, Action: "policy.rules_applied",
			Target: api.Target{Type: "user", ID: "usr_06h51s2xmygyg7sbkx2j4f83mc", Name: "user000505"},
			After:  map[string]any{"deadline": at.Add(14 * 24 * time.Hour), "policy_version": 1, "rules": []string{"everyone", "oncall"}, "status": "grace"}},
	}
	for _, enc := range []struct {
		name string
		fn   func(*Event) ([]byte, error)
	}{{"encoder", marshal}, {"encoding_json", func(ev *Event) ([]byte, error) { return json.Marshal(ev) }}} {
		b.Run(enc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := range b.N {
				if _, err := enc.fn(&evs[i%2]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
