package core

import (
	"slices"
	"strings"
	"testing"
)

// A term that starts another of the user's terms is left out, and every
// query still finds exactly the users it found with every term: tried
// with every start of every term of users whose names start one another
// in every way (username and email, first word and display name, a word
// equal to the username, case, accents, one letter).
func TestSearchTermsLeaveOutTermsThatStartAnotherAndFindTheSameUsers(t *testing.T) {
	users := []User{
		{Username: "alice", Email: "alice@example.org", DisplayName: "Alice Smith"},
		{Username: "al", Email: "al@example.org", DisplayName: "Al"},
		{Username: "bob", Email: "robert@corp.test", DisplayName: "Bob Bobson"},
		{Username: "Bob", Email: "", DisplayName: "Person B"},
		{Username: "user000001", Email: "user000001@example.org", DisplayName: "User 1"},
		{Username: "émile", Email: "Emile@Example.org", DisplayName: "Émile Zola Zo"},
		{Username: "x", Email: "x@x", DisplayName: "x X x"},
		{Username: "carol", Email: "c.q@corp.test", DisplayName: "  Carol  Quux "},
		{Username: "d", Email: "dave@", DisplayName: "@example Dave"},
		{Username: "smith", Email: "", DisplayName: ""},
	}
	want := map[string][]string{
		"alice":      {"alice@example.org", "@example.org", "alice smith", "smith"},
		"al":         {"al@example.org", "@example.org"},
		"user000001": {"user000001@example.org", "@example.org", "user 1", "1"},
		"x":          {"x@x", "@x", "x x x"},
		"smith":      {"smith"},
	}
	queries := map[string]bool{"": false, "zz": true, "@": true, "a": true, "Al": true, " x ": true}
	for _, u := range users {
		got := u.SearchTerms()
		if w, ok := want[u.Username]; ok && !slices.Equal(got, w) {
			t.Errorf("%s: terms %q, want %q", u.Username, got, w)
		}
		all := u.everySearchTerm()
		for _, term := range got {
			if !slices.Contains(all, term) {
				t.Errorf("%s: term %q is not one of %q", u.Username, term, all)
			}
		}
		for _, term := range all {
			for i := range len(term) + 1 {
				queries[term[:i]] = true
			}
		}
	}
	for q := range queries {
		if FoldTerm(q) == "" {
			continue
		}
		for _, u := range users {
			before := slices.ContainsFunc(u.everySearchTerm(), func(term string) bool { return strings.HasPrefix(term, FoldTerm(q)) })
			term, now := u.MatchTerm(q)
			if before != now {
				t.Errorf("query %q, user %s: matched %v with every term, %v now (at %q)", q, u.Username, before, now, term)
			}
			if now && !strings.HasPrefix(term, FoldTerm(q)) {
				t.Errorf("query %q, user %s: listed at %q, which it does not start", q, u.Username, term)
			}
		}
	}
}
