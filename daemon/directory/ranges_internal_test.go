package directory

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

func TestRangesAreReadAsActiveDirectoryWritesThem(t *testing.T) {
	for _, tc := range []struct {
		in     string
		want   valueRange
		refuse bool
	}{
		{in: "0-1499", want: valueRange{0, 1499}},
		{in: "1500-*", want: valueRange{1500, -1}},
		{in: "3000-3000", want: valueRange{3000, 3000}},
		{in: "10-9", refuse: true},
		{in: "-1-5", refuse: true},
		{in: "a-*", refuse: true},
		{in: "0", refuse: true},
		{in: "", refuse: true},
		{in: "0-x", refuse: true},
	} {
		got, err := parseRange(tc.in)
		if (err != nil) != tc.refuse || (!tc.refuse && got != tc.want) {
			t.Errorf("parseRange(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestAnEntrysValuesAreItsPlainAttributeOrAWholeRange(t *testing.T) {
	entry := func(attrs ...*ldap.EntryAttribute) *ldap.Entry {
		return &ldap.Entry{DN: "cn=g,dc=example,dc=org", Attributes: attrs}
	}
	attr := func(name string, vals ...string) *ldap.EntryAttribute {
		return &ldap.EntryAttribute{Name: name, Values: vals}
	}
	var c *conn // none of these asks the server again
	for _, tc := range []struct {
		name string
		e    *ldap.Entry
		want []string
		says string
	}{
		{"the plain attribute, any case", entry(attr("cn", "g"), attr("Member", "a", "b")), []string{"a", "b"}, ""},
		{"no such attribute", entry(attr("cn", "g")), nil, ""},
		{"one range that is the last, any case", entry(attr("member;Range=0-*", "a")), []string{"a"}, ""},
		{"a first range that does not start at 0", entry(attr("member;range=5-*", "a")), nil, "asked for the values from 0, the server answered the range 5-*"},
		{"a range short of its values", entry(attr("member;range=0-2", "a", "b")), nil, "the range 0-2 came with 2 values"},
		{"a range that is not one", entry(attr("member;range=0-many", "a")), nil, `"0-many" is not a range`},
	} {
		got, err := c.values(context.Background(), tc.e, "member")
		if tc.says == "" && (err != nil || !slices.Equal(got, tc.want)) {
			t.Errorf("%s: %q, %v", tc.name, got, err)
		}
		if tc.says != "" && (!errors.Is(err, ErrSearch) || !strings.Contains(err.Error(), tc.says)) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.says)
		}
	}
}
