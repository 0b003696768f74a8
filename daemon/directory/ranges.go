package directory

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// Ranged retrieval (MS-ADTS 3.1.1.3.1.3.3). Active Directory returns at
// most MaxValRange values (1,500 by default, 5,000 on newer servers) of a
// multi-valued attribute at once: asked for member, it answers
// member;range=0-1499 and no member at all, and the client asks for
// member;range=1500-*, member;range=3000-*… until an answer's range ends
// in '*'. Other directories answer the plain attribute, which is read as
// it is.

// maxRanges bounds the follow-up searches for one attribute of one entry:
// 1.5 million values at AD's default MaxValRange. A server whose ranges
// go on beyond it is refused, not read for ever.
const maxRanges = 1000

// valueRange is an answer's range: the values lo to hi (hi -1 for '*',
// the last of them).
type valueRange struct{ lo, hi int }

func (r valueRange) last() bool { return r.hi < 0 }

func (r valueRange) String() string {
	if r.last() {
		return fmt.Sprintf("%d-*", r.lo)
	}
	return fmt.Sprintf("%d-%d", r.lo, r.hi)
}

// rangeOf reads attr in e: the values of its plain form (rng nil), or of
// its first ranged form (attr;range=lo-hi). Errors: a range that is not
// lo-hi or lo-* with lo ≤ hi.
func rangeOf(e *ldap.Entry, attr string) (vals []string, rng *valueRange, err error) {
	for _, a := range e.Attributes {
		name, opts, ok := strings.Cut(a.Name, ";")
		if !strings.EqualFold(name, attr) {
			continue
		}
		if !ok {
			vals = a.Values
			continue
		}
		for _, o := range strings.Split(opts, ";") {
			if len(o) < 6 || !strings.EqualFold(o[:6], "range=") {
				continue
			}
			r, err := parseRange(o[6:])
			if err != nil {
				return nil, nil, fmt.Errorf("%w: %s of %s: the server answered %s: %v", ErrSearch, attr, e.DN, a.Name, err)
			}
			return a.Values, &r, nil
		}
	}
	return vals, nil, nil
}

// parseRange reads "lo-hi" or "lo-*".
func parseRange(s string) (valueRange, error) {
	los, his, ok := strings.Cut(s, "-")
	lo, err := strconv.Atoi(los)
	if !ok || err != nil || lo < 0 {
		return valueRange{}, fmt.Errorf("%q is not a range like 0-1499 or 1500-*", s)
	}
	if his == "*" {
		return valueRange{lo: lo, hi: -1}, nil
	}
	hi, err := strconv.Atoi(his)
	if err != nil || hi < lo {
		return valueRange{}, fmt.Errorf("%q is not a range like 0-1499 or 1500-*", s)
	}
	return valueRange{lo: lo, hi: hi}, nil
}

// ranged reports whether e holds only part of attr's values: a range that
// does not end in '*'.
func ranged(e *ldap.Entry, attr string) bool {
	_, r, err := rangeOf(e, attr)
	return err != nil || (r != nil && !r.last())
}

// values reads every value of attr in e, which a search returned: the
// plain attribute as it is; a ranged one followed by base searches of e
// for attr;range=<next>-* until a range ends in '*'. Each answer must
// start where the last ended and hold as many values as its range says.
// Errors: ErrSearch (wrapped, naming the entry and the range) when the
// ranges skip, go back, come short or do not end within maxRanges, and
// the search errors of classify.
func (c *conn) values(ctx context.Context, e *ldap.Entry, attr string) ([]string, error) {
	var out []string
	dn, next := e.DN, 0
	for round := 0; ; round++ {
		vals, r, err := rangeOf(e, attr)
		switch {
		case err != nil:
			return nil, err
		case r == nil && round == 0:
			return vals, nil
		case r == nil:
			return nil, fmt.Errorf("%w: %s of %s: asked for the values from %d, the server answered without a range", ErrSearch, attr, dn, next)
		case r.lo != next:
			return nil, fmt.Errorf("%w: %s of %s: asked for the values from %d, the server answered the range %s", ErrSearch, attr, dn, next, r)
		case !r.last() && len(vals) != r.hi-r.lo+1:
			return nil, fmt.Errorf("%w: %s of %s: the range %s came with %d values", ErrSearch, attr, dn, r, len(vals))
		}
		out = append(out, vals...)
		if r.last() {
			return out, nil
		}
		if round >= maxRanges {
			return nil, fmt.Errorf("%w: %s of %s: the server's ranged retrieval did not end after %d ranges (%d values); keyfleet stops there",
				ErrSearch, attr, dn, maxRanges, len(out))
		}
		next = r.hi + 1
		if e, err = c.rangeAt(ctx, dn, attr, next); err != nil {
			return nil, err
		}
	}
}

// rangeAt reads attr;range=from-* of the entry dn.
func (c *conn) rangeAt(ctx context.Context, dn, attr string, from int) (*ldap.Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	want := fmt.Sprintf("%s;range=%d-*", attr, from)
	res, err := c.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false, "(objectClass=*)", []string{want}, nil))
	if err != nil {
		return nil, classify(fmt.Sprintf("reading %s of %s", want, dn), err)
	}
	if len(res.Entries) != 1 {
		return nil, fmt.Errorf("%w: reading %s of %s: the entry was not returned", ErrSearch, want, dn)
	}
	return res.Entries[0], nil
}
