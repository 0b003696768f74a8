package store

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// A user record is, byte for byte, what encoding/json makes of the user:
// a directory's new user, a bare one, one with every field set (filled by
// reflection, so that a field added to core.User, its link or its
// handlings and not to the encoder fails here), strings with every
// character encoding/json escapes, and the users it leaves to
// encoding/json (role grants, a time in another zone or out of range).
func TestUserRecordsAreWhatEncodingJSONMakes(t *testing.T) {
	at := time.Date(2026, 12, 7, 16, 54, 14, 946_880_000, time.UTC)
	full := core.User{}
	fill(t, reflect.ValueOf(&full).Elem(), "x<&>\u2028\"é\xff")
	later := at.Add(time.Hour)
	cases := []struct {
		name string
		u    core.User
		fast bool
	}{
		{"a directory's new user", core.User{ID: "usr_06h52vbam8tk11p6pa5r5zq6n0", Username: "user000533", DisplayName: "User 533", Email: "user000533@example.org",
			Kind: "person", Groups: []string{"team-3"}, Roles: []string{"user"}, Status: "active", CreatedAt: at, UpdatedAt: at,
			External: &core.ExternalLink{Source: "corp", ID: "00000215-0000-4000-8000-000000000215", DN: "uid=user000533,ou=people,dc=example,dc=org", LinkedAt: at}}, true},
		{"a bare user", core.User{}, true},
		{"empty lists and maps", core.User{Groups: []string{}, Roles: []string{}, HandledBy: []core.Handling{},
			External: &core.ExternalLink{Suspended: []string{}, Attributes: map[string]string{}}}, true},
		{"every field", full, true},
		{"role grants", core.User{ID: "u", Grants: map[string]core.RoleGrant{"admin": {By: api.Actor{ID: "a"}, At: at}}}, false},
		{"a time in another zone", core.User{ID: "u", CreatedAt: at.In(time.FixedZone("CET", 3600))}, false},
		{"a lock in another zone", core.User{ID: "u", LockedUntil: ptrTo(later.In(time.FixedZone("CET", 3600)))}, false},
		{"a year out of range", core.User{ID: "u", External: &core.ExternalLink{LinkedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}, false},
	}
	for _, c := range cases {
		want, wantErr := json.Marshal(c.u)
		got, err := encodeUser(&c.u)
		if !bytes.Equal(got, want) || (err == nil) != (wantErr == nil) {
			t.Errorf("%s:\n got %s (%v)\nwant %s (%v)", c.name, got, err, want, wantErr)
		}
		if _, fast := appendUser(nil, &c.u); fast != c.fast {
			t.Errorf("%s: written by the encoder itself: %v, want %v", c.name, fast, c.fast)
		}
	}
}

// fill sets every field of v to a value that is not empty (role grants,
// which the encoder leaves to encoding/json, excepted).
func fill(t *testing.T, v reflect.Value, s string) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Int:
		v.SetInt(7)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem(), s)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		fill(t, v.Index(0), s+"0")
		fill(t, v.Index(1), s+"1")
	case reflect.Map:
		if v.Type().Elem().Kind() != reflect.String {
			return // role grants
		}
		v.Set(reflect.MakeMap(v.Type()))
		v.SetMapIndex(reflect.ValueOf(s+"b"), reflect.ValueOf(s))
		v.SetMapIndex(reflect.ValueOf(s+"a"), reflect.ValueOf(s))
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 12, 7, 1, 2, 3, 400_500_000+len(s), time.UTC)))
			return
		}
		for i := range v.NumField() {
			fill(t, v.Field(i), s+v.Type().Field(i).Name)
		}
	default:
		t.Fatalf("fill: a field of kind %s: teach fill and encodeUser", v.Kind())
	}
}
