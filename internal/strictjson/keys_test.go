package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

type inner struct {
	Name string `json:"name"`
}

type Embedded struct {
	Promoted string `json:"promoted"`
}

type shape1 struct {
	Embedded
	ID       string            `json:"id"`
	Plain    int               // named by its field name
	Skipped  string            `json:"-"`
	Ptr      *inner            `json:"ptr,omitempty"`
	List     []inner           `json:"list"`
	Labels   map[string]inner  `json:"labels"`
	Raw      json.RawMessage   `json:"raw"`
	Any      any               `json:"any"`
	When     time.Time         `json:"when"`
	Matrix   [][]inner         `json:"matrix"`
	Free     map[string]string `json:"free"`
	internal string
}

func TestKeysMustBeExactAndSingle(t *testing.T) {
	for _, tc := range []struct {
		name, body, refusal string // refusal "" means accepted
	}{
		{"exact keys everywhere", `{"id":"a","Plain":1,"promoted":"p","ptr":{"name":"x"},"list":[{"name":"a"},{"name":"b"}],
			"labels":{"k":{"name":"v"},"K":{"name":"w"}},"raw":{"a":1},"any":{"A":1,"a":2},"when":"2026-01-01T00:00:00Z","matrix":[[{"name":"m"}]]}`, ""},
		{"a top-level duplicate", `{"id":"a","id":"b"}`, `duplicate-key: "id"`},
		{"a duplicate in a pointed-to object", `{"ptr":{"name":"a","name":"b"}}`, `duplicate-key: "ptr.name"`},
		{"a duplicate in an array element", `{"list":[{"name":"a"},{"name":"b","name":"c"}]}`, `duplicate-key: "list[].name"`},
		{"a duplicate in an array of arrays", `{"matrix":[[{"name":"a","name":"b"}]]}`, `duplicate-key: "matrix[][].name"`},
		{"a duplicate map key", `{"free":{"k":"1","k":"2"}}`, `duplicate-key: "free.k"`},
		{"a duplicate inside raw JSON", `{"raw":{"a":1,"a":2}}`, `duplicate-key: "raw.a"`},
		{"a duplicate inside an interface value", `{"any":{"a":1,"a":2}}`, `duplicate-key: "any.a"`},
		{"a case variant of a field", `{"ID":"a"}`, `unknown-field: "ID"`},
		{"a case variant of a promoted field", `{"Promoted":"p"}`, `unknown-field: "Promoted"`},
		{"a case variant of a field named by its Go name", `{"plain":1}`, `unknown-field: "plain"`},
		{"a case variant in a map's values", `{"labels":{"k":{"NAME":"v"}}}`, `unknown-field: "labels.k.NAME"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkKeys([]byte(tc.body), reflect.TypeFor[*shape1]())
			got := ""
			var ke *KeyError
			switch {
			case errors.As(err, &ke) && ke.Duplicate():
				got = "duplicate-key: " + ke.Error()
			case errors.As(err, &ke):
				got = "unknown-field: " + ke.Error()
			case err != nil:
				t.Fatalf("not a KeyError: %v", err)
			}
			typ, name, _ := strings.Cut(tc.refusal, ": ")
			if tc.refusal == "" && got != "" || tc.refusal != "" && !(strings.HasPrefix(got, typ+": ") && strings.Contains(got, name)) {
				t.Fatalf("got %q, want %q", got, tc.refusal)
			}
		})
	}
}

// BenchmarkDecodeStrict is the cost of reading a typical body (a verify
// call's) with the key check, to set beside the verification path.
func BenchmarkDecodeStrict(b *testing.B) {
	body := []byte(`{"id":"ver_0123456789abcdefghijklmnopqrstuvwxyz","factor_id":"fac_0123456789abcdefghijklmn","response":{"code":"123456"}}`)
	type finish struct {
		ID       string          `json:"id"`
		FactorID string          `json:"factor_id"`
		Response json.RawMessage `json:"response"`
	}
	for b.Loop() {
		var v finish
		if err := Decode(body, &v); err != nil {
			b.Fatal(err)
		}
	}
}

func TestAnObjectWithManyKeysIsCheckedInLinearTime(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"free":{`)
	for i := range 200_000 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":"v"`, i)
	}
	b.WriteString(`,"k7":"again"}}`)
	start := time.Now()
	err := checkKeys([]byte(b.String()), reflect.TypeFor[*shape1]())
	var ke *KeyError
	if !errors.As(err, &ke) || !ke.Duplicate() || ke.Key != "free.k7" {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("200,000 keys took %s", d)
	}
}

func TestAnEscapedKeyIsTheKeyItSpells(t *testing.T) {
	err := checkKeys([]byte(`{"id":"a","\u0069d":"b"}`), reflect.TypeFor[*shape1]())
	var ke *KeyError
	if !errors.As(err, &ke) || !ke.Duplicate() {
		t.Fatalf("an escaped duplicate was let through: %v", err)
	}
}

// TestDecodeRefusesWhatCouldBeReadTwoWays is Decode as its callers see
// it: each refusal is one they can tell apart and explain.
func TestDecodeRefusesWhatCouldBeReadTwoWays(t *testing.T) {
	var se *json.SyntaxError
	var ke *KeyError
	for _, tc := range []struct {
		name, body string
		is         func(error) bool
	}{
		{"an empty body", ``, func(err error) bool { return errors.Is(err, io.EOF) }},
		{"broken JSON", `{"id":`, func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &se) }},
		{"an unknown field", `{"nope":1}`, func(err error) bool { return err != nil && strings.Contains(err.Error(), "unknown field") }},
		{"a second value after the first", `{"id":"a"} {"id":"b"}`, func(err error) bool { return errors.Is(err, ErrTrailingData) }},
		{"a key twice", `{"id":"a","id":"b"}`, func(err error) bool { return errors.As(err, &ke) && ke.Duplicate() && ke.Key == "id" }},
		{"a key in another case", `{"ID":"a"}`, func(err error) bool { return errors.As(err, &ke) && ke.Field == "id" }},
		{"an exact body, trailing space allowed", "{\"id\":\"a\"}\n", func(err error) bool { return err == nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v shape1
			if err := Decode([]byte(tc.body), &v); !tc.is(err) {
				t.Fatalf("Decode(%q) = %v", tc.body, err)
			}
		})
	}
}

func FuzzDecodeThenCheckKeysNeverPanics(f *testing.F) {
	f.Add([]byte(`{"id":"a","list":[{"name":"x"}],"raw":{"a":[1,{"b":null}]},"free":{"\u006b":"v"}}`))
	f.Add([]byte(` {"labels":{"k":{"name":"v\"}"}}} `))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		dec := json.NewDecoder(bytes.NewReader(body))
		var v shape1
		if dec.Decode(&v) != nil {
			return
		}
		checkKeys(body, reflect.TypeFor[*shape1]())
	})
}
