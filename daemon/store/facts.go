package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/keyfleet/keyfleet/attest"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/policy"
)

// The policy facts index (pf/, see keys.go and core/policy_facts.go): a
// compact copy of what the policy reads about each user, kept by the
// methods that write the records it comes from, in the same transaction.
// Every record of a user sorts together after the user's own (the "\x00"
// separator sorts before any id character), so one ordered pass over pf/
// reads every user with their factors, first-applied times and
// exemptions.
//
// Records are binary: a format byte, then fields as uvarint-length
// strings, varints and times (zigzag Unix seconds, then nanoseconds).

const factsFormat = 1

// Sub-record tags, after "pf/<user id>\x00".
const (
	tagUser         = 'u' // in bundles only: the user's own record
	tagFirstApplied = 'a'
	tagFactor       = 'f'
	tagExemption    = 'x'
)

func userFactsKey(userID string) []byte { return key(pPolicyFacts, userID) }

func factsSubKey(userID string, tag byte, id string) []byte {
	return key(pPolicyFacts, userID, "\x00", string(tag), id)
}

// errFacts: a policy facts record does not decode.
var errFacts = errors.New("damaged policy facts record")

type factsEncoder struct{ b []byte }

func newFactsEncoder() *factsEncoder { return &factsEncoder{b: []byte{factsFormat}} }

func (e *factsEncoder) str(s string) {
	e.b = binary.AppendUvarint(e.b, uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *factsEncoder) uint(n uint64) { e.b = binary.AppendUvarint(e.b, n) }

func (e *factsEncoder) time(t time.Time) {
	e.b = binary.AppendVarint(e.b, t.Unix())
	e.b = binary.AppendUvarint(e.b, uint64(t.Nanosecond()))
}

func (e *factsEncoder) strs(ss []string) {
	e.uint(uint64(len(ss)))
	for _, s := range ss {
		e.str(s)
	}
}

// factsDecoder reads records. Strings that repeat across users (kinds,
// states, vendors, groups, rule names) are interned: a scan of a million
// users allocates one copy of each.
type factsDecoder struct {
	b      []byte
	err    error
	intern map[string]string
	recent [128]string // the last interned string of each hash slot
	// Users of one fleet mostly share groups, roles and first-applied
	// times (everyone's deadline started at the same apply): the last
	// ones decoded are handed out again when their bytes repeat.
	groups, roles sharedValue[[]string]
	applied       sharedValue[map[string]time.Time]
}

// sharedValue is the last value decoded from raw. Values handed out more
// than once are read-only (see core.PolicyFacts).
type sharedValue[T any] struct {
	raw []byte
	v   T
}

// get returns the value of raw: the last one if raw repeats it, else
// decode's, remembered.
func (c *sharedValue[T]) get(raw []byte, decode func() T) T {
	if c.raw != nil && bytes.Equal(c.raw, raw) {
		return c.v
	}
	c.raw, c.v = append(c.raw[:0], raw...), decode()
	return c.v
}

// maxInterned bounds the intern table; beyond it, strings are copied.
const maxInterned = 4096

func newFactsDecoder() *factsDecoder { return &factsDecoder{intern: map[string]string{}} }

// reset starts a record; it checks the format byte.
func (d *factsDecoder) reset(b []byte) {
	d.b, d.err = b, nil
	if len(b) == 0 || b[0] != factsFormat {
		d.err = fmt.Errorf("%w: unknown format", errFacts)
		return
	}
	d.b = b[1:]
}

func (d *factsDecoder) fail() {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated", errFacts)
	}
	d.b = nil
}

func (d *factsDecoder) uint() uint64 {
	n, k := binary.Uvarint(d.b)
	if k <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[k:]
	return n
}

func (d *factsDecoder) bytes() []byte {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}

// str returns a fresh string (ids, usernames).
func (d *factsDecoder) str() string { return string(d.bytes()) }

// sym returns an interned string. A small table of recent strings
// answers most lookups without hashing.
func (d *factsDecoder) sym() string {
	b := d.bytes()
	if len(b) == 0 {
		return ""
	}
	slot := &d.recent[(len(b)*31+int(b[0])*7+int(b[len(b)-1]))&127]
	if *slot == string(b) {
		return *slot
	}
	s, ok := d.intern[string(b)]
	if !ok {
		s = string(b)
		if len(d.intern) < maxInterned {
			d.intern[s] = s
		}
	}
	*slot = s
	return s
}

// sharedSyms reads a list of strings through c.
func (d *factsDecoder) sharedSyms(c *sharedValue[[]string]) []string {
	start := d.b
	for n := d.uint(); n > 0 && d.err == nil; n-- {
		d.bytes()
	}
	if d.err != nil {
		return nil
	}
	rest := d.b
	return c.get(start[:len(start)-len(rest)], func() []string {
		d.b = start
		v := d.syms()
		d.b = rest
		return v
	})
}

func (d *factsDecoder) syms() []string {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.sym()
	}
	return out
}

func (d *factsDecoder) time() time.Time {
	sec, k := binary.Varint(d.b)
	if k <= 0 {
		d.fail()
		return time.Time{}
	}
	d.b = d.b[k:]
	return time.Unix(sec, int64(d.uint())).UTC()
}

// advisories read back the evidence's recorded advisories.
func (d *factsDecoder) advisories() []attest.Advisory {
	n := d.uint()
	if n == 0 || n > uint64(len(d.b)) {
		if n > 0 {
			d.fail()
		}
		return nil
	}
	out := make([]attest.Advisory, n)
	for i := range out {
		out[i] = attest.Advisory{ID: d.sym(), Summary: d.sym()}
	}
	return out
}

func encodeFirstApplied(m map[string]time.Time) []byte {
	e := newFactsEncoder()
	e.uint(uint64(len(m)))
	for rule, t := range m {
		e.str(rule)
		e.time(t)
	}
	return e.b
}

// decodeFirstApplied reads a first-applied record on its own.
func decodeFirstApplied(b []byte) (map[string]time.Time, error) {
	d := newFactsDecoder()
	d.reset(b)
	if d.err != nil {
		return nil, d.err
	}
	m := d.firstApplied()
	return m, d.err
}

// sharedFirstApplied reads a whole first-applied record through
// d.applied.
func (d *factsDecoder) sharedFirstApplied() map[string]time.Time {
	return d.applied.get(d.b, d.firstApplied)
}

func (d *factsDecoder) firstApplied() map[string]time.Time {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	m := make(map[string]time.Time, n)
	for range n {
		rule := d.sym()
		m[rule] = d.time()
	}
	return m
}

func encodeExemption(reason string, until time.Time) []byte {
	e := newFactsEncoder()
	e.str(reason)
	e.time(until)
	return e.b
}

func (d *factsDecoder) exemption(userID string) policy.Exemption {
	return policy.Exemption{UserID: userID, Reason: d.str(), Until: d.time()}
}

func encodeUserFacts(u core.UserFacts) []byte {
	e := newFactsEncoder()
	e.str(u.Username)
	e.str(u.Kind)
	e.time(u.CreatedAt)
	e.strs(u.Groups)
	e.strs(u.Roles)
	return e.b
}

func (d *factsDecoder) userFacts(id string) core.UserFacts {
	return core.UserFacts{ID: id, Username: d.str(), Kind: d.sym(), CreatedAt: d.time(),
		Groups: d.sharedSyms(&d.groups), Roles: d.sharedSyms(&d.roles)}
}

// Flags of a factor facts record.
const (
	ffActivated = 1 << iota
	ffLastUsed
	ffEvidence
	ffFIPS
	ffAAGUIDAttested
	ffParams // a TOTP factor's parameters follow the evidence (absent in records written before)
)

func encodeFactorFacts(f core.FactorFacts) []byte {
	e := newFactsEncoder()
	var flags uint64
	if f.ActivatedAt != nil {
		flags |= ffActivated
	}
	if f.LastUsedAt != nil {
		flags |= ffLastUsed
	}
	if f.Params != nil {
		flags |= ffParams
	}
	ev := f.Evidence
	if ev != nil {
		flags |= ffEvidence
		if ev.FIPS {
			flags |= ffFIPS
		}
		if ev.AAGUIDAttested {
			flags |= ffAAGUIDAttested
		}
	}
	e.uint(flags)
	e.str(f.Kind)
	e.str(f.State)
	e.time(f.CreatedAt)
	if f.ActivatedAt != nil {
		e.time(*f.ActivatedAt)
	}
	if f.LastUsedAt != nil {
		e.time(*f.LastUsedAt)
	}
	if ev != nil {
		encodeEvidence(e, ev)
	}
	if f.Params != nil {
		encodeParams(e, f.Params)
	}
	return e.b
}

// encodeParams writes a factor's policy parameters, in a fixed order.
func encodeParams(e *factsEncoder, params map[string]string) {
	keys := slices.Sorted(maps.Keys(params))
	e.uint(uint64(len(keys)))
	for _, k := range keys {
		e.str(k)
		e.str(params[k])
	}
}

func encodeEvidence(e *factsEncoder, ev *attest.Evidence) {
	for _, s := range []string{ev.Format, ev.Vendor, ev.Model, ev.Firmware, ev.FormFactor, ev.PINPolicy,
		ev.TouchPolicy, ev.KeyAlgorithm, ev.AAGUID, ev.AttestationType} {
		e.str(s)
	}
	e.uint(uint64(ev.Serial))
	e.uint(uint64(len(ev.Advisories)))
	for _, a := range ev.Advisories {
		e.str(a.ID)
		e.str(a.Summary)
	}
}

func (d *factsDecoder) factorFacts(id string) core.FactorFacts {
	flags := d.uint()
	f := core.FactorFacts{ID: id, Kind: d.sym(), State: d.sym(), CreatedAt: d.time()}
	if flags&ffActivated != 0 {
		f.ActivatedAt = ptrTo(d.time())
	}
	if flags&ffLastUsed != 0 {
		f.LastUsedAt = ptrTo(d.time())
	}
	if flags&ffEvidence != 0 {
		f.Evidence = d.evidence(flags)
	}
	if flags&ffParams != 0 {
		f.Params = map[string]string{}
		for n := d.uint(); n > 0 && d.err == nil; n-- {
			k := d.sym()
			f.Params[k] = d.sym()
		}
	}
	return f
}

func (d *factsDecoder) evidence(flags uint64) *attest.Evidence {
	ev := &attest.Evidence{FIPS: flags&ffFIPS != 0, AAGUIDAttested: flags&ffAAGUIDAttested != 0}
	for _, p := range []*string{&ev.Format, &ev.Vendor, &ev.Model, &ev.Firmware, &ev.FormFactor, &ev.PINPolicy,
		&ev.TouchPolicy, &ev.KeyAlgorithm, &ev.AAGUID, &ev.AttestationType} {
		*p = d.sym()
	}
	ev.Serial = uint32(d.uint())
	ev.Advisories = d.advisories()
	return ev
}

func ptrTo[T any](v T) *T { return &v }
