package core

import (
	"encoding/base64"
	"slices"
	"strings"
	"unicode"
)

// MaxExamined bounds the records a store examines for one page of a
// filtered list (users, audit events), whatever the data's size. When a
// page reaches it before it is full, the page comes back with what was
// found, possibly nothing, and a cursor to continue from: work per
// request stays bounded, and the caller pages on.
const MaxExamined = 5000

// A user list's query matches the start of one of a user's search terms,
// in any case (UserFilter.Query): the username, the email address, its
// domain written "@example.org", the display name, and each word of the
// display name (but one that starts another: SearchTerms). Stores index
// the terms, so that a query reads only the users it matches.

// everySearchTerm is every term of u, folded, each once, in order: the
// username, the email, its "@domain", the display name and its words.
func (u User) everySearchTerm() []string {
	all := make([]string, 0, 6)
	add := func(t string) {
		if t = FoldTerm(t); t != "" && !slices.Contains(all, t) {
			all = append(all, t)
		}
	}
	add(u.Username)
	add(u.Email)
	if _, domain, ok := strings.Cut(u.Email, "@"); ok && domain != "" {
		add("@" + domain)
	}
	add(u.DisplayName)
	for _, w := range strings.FieldsFunc(u.DisplayName, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) }) {
		add(w)
	}
	return all
}

// SearchTerms are u's search terms, folded to lower case, each once, in
// order, less those that are the start of another of them (the username
// when the email begins with it, the first word of the display name): a
// query that starts such a term starts the longer one too, so it finds
// the same users, and every user writes fewer index entries. A user
// listed by a query is therefore listed at the longer term.
func (u User) SearchTerms() []string {
	all := u.everySearchTerm()
	out := make([]string, 0, len(all))
	for _, t := range all {
		if !slices.ContainsFunc(all, func(o string) bool { return len(o) > len(t) && strings.HasPrefix(o, t) }) {
			out = append(out, t)
		}
	}
	return out
}

// FoldTerm is s as search terms and queries compare it: in lower case,
// with surrounding space dropped.
func FoldTerm(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// MatchTerm is u's first search term, in byte order, that starts with
// query (folded): the one a list by query files u under. ok is false when
// none does.
func (u User) MatchTerm(query string) (term string, ok bool) {
	q := FoldTerm(query)
	for _, t := range u.SearchTerms() {
		if strings.HasPrefix(t, q) && (!ok || t < term) {
			term, ok = t, true
		}
	}
	return term, ok
}

// termCursorPrefix marks the cursor of a list by query.
const termCursorPrefix = "q."

// TermCursor is the cursor of a list by query after the user filed under
// term with username name: opaque to callers.
func TermCursor(term, name string) string {
	return termCursorPrefix + base64.RawURLEncoding.EncodeToString([]byte(term+"\x00"+name))
}

// ParseTermCursor reads a TermCursor. Returns an error wrapping
// ErrInvalid for anything else.
func ParseTermCursor(c string) (term, name string, err error) {
	raw, ok := strings.CutPrefix(c, termCursorPrefix)
	b, derr := base64.RawURLEncoding.DecodeString(raw)
	term, name, found := strings.Cut(string(b), "\x00")
	if !ok || derr != nil || !found {
		return "", "", invalid("cursor", "%q is not a cursor this list gave; start again without one", c)
	}
	return term, name, nil
}
