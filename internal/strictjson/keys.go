package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// ErrTrailingData is returned by Decode for a body with more after its
// JSON value.
var ErrTrailingData = errors.New("the body has data after its JSON value; send exactly one value")

// KeyError is a key that encoding/json would read one way and another
// parser perhaps another: named twice in one object, or matching a field
// only by case.
type KeyError struct {
	// Key is the key's full name, "users[].roles".
	Key string
	// Field is, for a case variant, the field's full name; "" for a key
	// named twice.
	Field string
}

// Duplicate reports whether the key was named twice in one object.
func (e *KeyError) Duplicate() bool { return e.Field == "" }

func (e *KeyError) Error() string {
	if e.Duplicate() {
		return fmt.Sprintf("the key %q appears twice in one object; send it once", e.Key)
	}
	return fmt.Sprintf("unknown field %q: keys are case-sensitive, did you mean %q?", e.Key, e.Field)
}

// Decode decodes body, one JSON value, into v (a pointer) as
// encoding/json does, but strictly: no unknown field, nothing after the
// value, no key twice, keys in their fields' exact case. It returns
// encoding/json's errors (io.EOF for an empty body, *json.SyntaxError,
// *json.UnmarshalTypeError, its "json: unknown field" error, …),
// ErrTrailingData, or a *KeyError. v may be partly filled when it fails.
func Decode(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if len(bytes.TrimSpace(body[dec.InputOffset():])) > 0 {
		return ErrTrailingData
	}
	return checkKeys(body, reflect.TypeOf(v))
}

// checkKeys walks data, a JSON value that decoded into a value of type t,
// and returns a *KeyError for a duplicate or case-variant key. It scans
// the bytes itself (they are known to be valid JSON), so a body that
// passes costs no allocation.
func checkKeys(data []byte, t reflect.Type) error {
	s := &keyScanner{data: data}
	return s.value(t)
}

// keyScanner reads a valid JSON value. path holds the keys from the root
// to the member being read, for messages.
type keyScanner struct {
	data []byte
	i    int
	path [][]byte
}

var elemPath = []byte("[]")

// value reads one value. t is the Go type it decodes into, or nil when
// that is opaque (an interface, a json.Unmarshaler, raw JSON): then only
// duplicates are looked for.
func (s *keyScanner) value(t reflect.Type) error {
	s.space()
	switch s.data[s.i] {
	case '{':
		return s.object(shape(t))
	case '[':
		return s.array(shape(t))
	case '"':
		s.str()
	default:
		for s.i < len(s.data) && !strings.ContainsRune(",]} \t\r\n", rune(s.data[s.i])) {
			s.i++
		}
	}
	return nil
}

func (s *keyScanner) array(t reflect.Type) error {
	var elem reflect.Type
	if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		elem = t.Elem()
	}
	s.i++ // [
	s.path = append(s.path, elemPath)
	defer func() { s.path = s.path[:len(s.path)-1] }()
	for {
		s.space()
		switch s.data[s.i] {
		case ']':
			s.i++
			return nil
		case ',':
			s.i++
		}
		if err := s.value(elem); err != nil {
			return err
		}
	}
}

func (s *keyScanner) object(t reflect.Type) error {
	var fields map[string]reflect.Type
	if t != nil && t.Kind() == reflect.Struct {
		fields = fieldsOf(t)
	}
	var seen keySet
	s.i++ // {
	for {
		s.space()
		switch s.data[s.i] {
		case '}':
			s.i++
			return nil
		case ',':
			s.i++
			s.space()
		}
		key := s.key()
		if !seen.add(key) {
			return &KeyError{Key: s.name(string(key))}
		}
		next, err := s.member(t, fields, key)
		if err != nil {
			return err
		}
		s.space()
		s.i++ // :
		s.path = append(s.path, key)
		err = s.value(next)
		s.path = s.path[:len(s.path)-1]
		if err != nil {
			return err
		}
	}
}

// keySet is the keys of one object: a short list for the usual few, a map
// past that, so an object with many keys costs linear time.
type keySet struct {
	few  [][]byte
	many map[string]bool
}

// add adds key and reports whether it was new.
func (k *keySet) add(key []byte) bool {
	if k.many != nil {
		if k.many[string(key)] {
			return false
		}
		k.many[string(key)] = true
		return true
	}
	for _, f := range k.few {
		if bytes.Equal(f, key) {
			return false
		}
	}
	if k.few = append(k.few, key); len(k.few) > 16 {
		k.many = make(map[string]bool, 2*len(k.few))
		for _, f := range k.few {
			k.many[string(f)] = true
		}
	}
	return true
}

// key reads an object's key, unescaped.
func (s *keyScanner) key() []byte {
	start := s.i
	s.str()
	raw := s.data[start:s.i]
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw[1 : len(raw)-1]
	}
	var k string
	json.Unmarshal(raw, &k) // valid: the body decoded
	return []byte(k)
}

// str skips a string, quotes included.
func (s *keyScanner) str() {
	for s.i++; s.data[s.i] != '"'; s.i++ {
		if s.data[s.i] == '\\' {
			s.i++
		}
	}
	s.i++
}

func (s *keyScanner) space() {
	for s.i < len(s.data) && strings.IndexByte(" \t\r\n", s.data[s.i]) >= 0 {
		s.i++
	}
}

// name is key's full name, for messages: "users[].roles".
func (s *keyScanner) name(key string) string {
	var b strings.Builder
	for _, p := range s.path {
		if b.Len() > 0 && !bytes.Equal(p, elemPath) {
			b.WriteByte('.')
		}
		b.Write(p)
	}
	if b.Len() > 0 {
		b.WriteByte('.')
	}
	b.WriteString(key)
	return b.String()
}

// member is the type the member key of an object of type t decodes
// into. A struct's key must name its field exactly.
func (s *keyScanner) member(t reflect.Type, fields map[string]reflect.Type, key []byte) (reflect.Type, error) {
	switch {
	case t == nil:
		return nil, nil
	case t.Kind() == reflect.Map:
		return t.Elem(), nil
	case fields == nil:
		return nil, nil
	}
	if ft, ok := fields[string(key)]; ok {
		return ft, nil
	}
	for name := range fields {
		if strings.EqualFold(name, string(key)) {
			return nil, &KeyError{Key: s.name(string(key)), Field: s.name(name)}
		}
	}
	return nil, nil // not a field: the decoder has refused it already
}

var unmarshaler = reflect.TypeFor[json.Unmarshaler]()

// shape follows pointers and returns nil for types whose JSON is opaque
// here: interfaces and types that decode themselves.
func shape(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() == reflect.Interface || t.Implements(unmarshaler) || reflect.PointerTo(t).Implements(unmarshaler) {
		return nil
	}
	return t
}

var fieldCache sync.Map // reflect.Type → map[string]reflect.Type

// fieldsOf maps the JSON names of a struct's fields to their types, as
// encoding/json names them: the tag's name or the field's, "-" left out,
// fields of untagged embedded structs promoted unless a shallower field
// has the name.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	addFields(m, t, map[reflect.Type]bool{})
	fieldCache.Store(t, m)
	return m
}

func addFields(m map[string]reflect.Type, t reflect.Type, visiting map[reflect.Type]bool) {
	if visiting[t] {
		return
	}
	visiting[t] = true
	var embedded []reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
			embedded = append(embedded, ft)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	for _, et := range embedded {
		inner := map[string]reflect.Type{}
		addFields(inner, et, visiting)
		for name, ft := range inner {
			if _, shallower := m[name]; !shallower {
				m[name] = ft
			}
		}
	}
}
