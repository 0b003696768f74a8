package directorytest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// FakeAD is a small LDAP v3 server on the loopback that answers where
// slapd cannot the way an Active Directory domain controller does:
// ranged retrieval of large multi-valued attributes (MS-ADTS
// 3.1.1.3.1.3.3: asked for member, a group with more than MaxValRange
// members answers member;range=0-1499, and the rest is asked for as
// member;range=1500-*…) and LDAP_MATCHING_RULE_IN_CHAIN. It speaks what
// keyfleet's sync sends, over the wire in BER: a simple bind (ReaderDN,
// ReaderPassword), searches (base or subtree; filters of and, or, not,
// equality, presence and IN_CHAIN on memberOf; the paged results
// control) and unbind. No TLS: keyfleet reaches it with allow_plaintext.
type FakeAD struct {
	// URL is ldap://127.0.0.1:port; PasswordFile holds ReaderPassword.
	URL, PasswordFile string

	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
	// entries in the order added, and by normalised DN.
	entries     []*fakeEntry
	byDN        map[string]*fakeEntry
	maxValRange int
	fault       RangeFault
	leftOut     map[string]bool // DNs IN_CHAIN answers leave out
	asked       []string        // the ranges asked for, "dn attr;range=…"
}

// RangeFault is how a FakeAD's ranged retrieval goes wrong.
type RangeFault int

// Ranged retrieval, right and wrong.
const (
	// RangesAsAD answers ranges as Active Directory does.
	RangesAsAD RangeFault = iota
	// RangesNeverEnd answers every follow-up with ten more made-up
	// values and a range that never ends in '*'.
	RangesNeverEnd
	// RangesStuck answers every follow-up with the first range again.
	RangesStuck
	// RangesShort sends half the values the first range says it holds.
	RangesShort
)

type fakeEntry struct {
	dn    string
	attrs []fakeAttr
}

type fakeAttr struct {
	name string
	vals [][]byte
}

// StartFakeAD starts a FakeAD answering at most maxValRange values of an
// attribute at once (AD's MaxValRange: 1500 by default), and stops it
// when the test ends. Its root DSE says Active Directory.
func StartFakeAD(t testing.TB, maxValRange int) *FakeAD {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &FakeAD{URL: "ldap://" + ln.Addr().String(), PasswordFile: filepath.Join(t.TempDir(), "reader.password"),
		ln: ln, conns: map[net.Conn]bool{}, byDN: map[string]*fakeEntry{}, maxValRange: maxValRange, leftOut: map[string]bool{}}
	if err := os.WriteFile(f.PasswordFile, []byte(ReaderPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(f.stop)
	return f
}

// AddPerson adds a user entry with AD's attributes (objectCategory
// person, objectClass user, sAMAccountName, objectGUID,
// userAccountControl), named PersonDN(p.UID).
func (f *FakeAD) AddPerson(p Person) {
	uac := "512"
	if p.Disabled {
		uac = "514"
	}
	name := p.Name
	if name == "" {
		name = p.UID
	}
	f.add(PersonDN(p.UID), map[string][]string{"objectClass": {"top", "person", "organizationalPerson", "user"},
		"objectCategory": {"person"}, "sAMAccountName": {strings.ToUpper(p.UID)}, "displayName": {name}, "mail": {p.Mail},
		"userAccountControl": {uac}, "objectGUID": {string(p.GUID[:])}})
}

// AddGroup adds a group (objectClass group) named GroupDN(cn) with the
// given member DNs.
func (f *FakeAD) AddGroup(cn string, members ...string) {
	f.add(GroupDN(cn), map[string][]string{"objectClass": {"top", "group"}, "cn": {cn}, "member": members})
}

func (f *FakeAD) add(dn string, attrs map[string][]string) {
	e := &fakeEntry{dn: dn}
	for _, name := range []string{"objectClass", "objectCategory", "cn", "sAMAccountName", "displayName", "mail", "userAccountControl", "objectGUID", "member"} {
		a := fakeAttr{name: name}
		for _, v := range attrs[name] {
			if v != "" {
				a.vals = append(a.vals, []byte(v))
			}
		}
		if len(a.vals) > 0 {
			e.attrs = append(e.attrs, a)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries = append(f.entries, e)
	f.byDN[fakeNorm(dn)] = e
}

// SetRangeFault makes the ranged retrieval go wrong (or right again).
func (f *FakeAD) SetRangeFault(fault RangeFault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault = fault
}

// LeaveOutOfInChain makes IN_CHAIN answers leave out the entry dn, as a
// server that answers IN_CHAIN wrongly would.
func (f *FakeAD) LeaveOutOfInChain(dn string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leftOut[fakeNorm(dn)] = true
}

// RangeRequests are the follow-up ranges asked for so far, each as
// "<dn> <attr>;range=<lo>-*".
func (f *FakeAD) RangeRequests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.asked...)
}

func (f *FakeAD) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns[c] = true
		f.mu.Unlock()
		f.wg.Add(1)
		go f.serve(c)
	}
}

func (f *FakeAD) stop() {
	f.ln.Close()
	f.mu.Lock()
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// serve answers one connection's requests in order until it ends.
func (f *FakeAD) serve(c net.Conn) {
	defer f.wg.Done()
	defer func() {
		f.mu.Lock()
		delete(f.conns, c)
		f.mu.Unlock()
		c.Close()
	}()
	bound := false
	for {
		p, err := ber.ReadPacket(c)
		if err != nil || len(p.Children) < 2 {
			return
		}
		id, _ := p.Children[0].Value.(int64)
		op := p.Children[1]
		var out []*ber.Packet
		switch op.Tag {
		case ldap.ApplicationBindRequest:
			out, bound = bindAnswer(id, op)
		case ldap.ApplicationSearchRequest:
			out = f.search(id, op, controls(p), bound)
		case ldap.ApplicationAbandonRequest:
			continue
		default: // unbind, or what keyfleet never sends
			return
		}
		for _, o := range out {
			if _, err := c.Write(o.Bytes()); err != nil {
				return
			}
		}
	}
}

// controls decodes a request's controls.
func controls(p *ber.Packet) []ldap.Control {
	var out []ldap.Control
	if len(p.Children) > 2 && p.Children[2].ClassType == ber.ClassContext && p.Children[2].Tag == 0 {
		for _, c := range p.Children[2].Children {
			if ctrl, err := ldap.DecodeControl(c); err == nil && ctrl != nil {
				out = append(out, ctrl)
			}
		}
	}
	return out
}

// bindAnswer accepts ReaderDN with ReaderPassword, a simple bind.
func bindAnswer(id int64, op *ber.Packet) ([]*ber.Packet, bool) {
	if len(op.Children) < 3 || op.Children[2].Tag != 0 {
		return []*ber.Packet{result(id, ldap.ApplicationBindResponse, ldap.LDAPResultAuthMethodNotSupported, "simple bind only", nil)}, false
	}
	dn, pw := str(op.Children[1]), op.Children[2].Data.String()
	if !strings.EqualFold(dn, ReaderDN) || pw != ReaderPassword {
		return []*ber.Packet{result(id, ldap.ApplicationBindResponse, ldap.LDAPResultInvalidCredentials, "80090308: invalid credentials", nil)}, false
	}
	return []*ber.Packet{result(id, ldap.ApplicationBindResponse, ldap.LDAPResultSuccess, "", nil)}, true
}

// message wraps a protocol operation in an LDAPMessage.
func message(id int64, op *ber.Packet, ctrls ...ldap.Control) *ber.Packet {
	m := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP message")
	m.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "message id"))
	m.AppendChild(op)
	if len(ctrls) > 0 {
		cs := ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "controls")
		for _, c := range ctrls {
			cs.AppendChild(c.Encode())
		}
		m.AppendChild(cs)
	}
	return m
}

// result is an LDAPResult operation (bind response, search done).
func result(id int64, tag ber.Tag, code uint16, diag string, ctrls []ldap.Control) *ber.Packet {
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, tag, nil, "result")
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, int64(code), "result code"))
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "matched DN"))
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, diag, "diagnostic message"))
	return message(id, op, ctrls...)
}

func str(p *ber.Packet) string { return ber.DecodeString(p.Data.Bytes()) }

// search answers a search request: the matching entries (a page of them
// with the paged results control), then its result.
func (f *FakeAD) search(id int64, op *ber.Packet, ctrls []ldap.Control, bound bool) []*ber.Packet {
	if len(op.Children) < 8 {
		return []*ber.Packet{result(id, ldap.ApplicationSearchResultDone, ldap.LDAPResultProtocolError, "malformed search", nil)}
	}
	base, scope := fakeNorm(str(op.Children[0])), op.Children[1].Value
	var attrs []string
	for _, a := range op.Children[7].Children {
		attrs = append(attrs, str(a))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if base == "" && scope == int64(ldap.ScopeBaseObject) {
		return []*ber.Packet{f.rootDSE(id), result(id, ldap.ApplicationSearchResultDone, ldap.LDAPResultSuccess, "", nil)}
	}
	if !bound {
		return []*ber.Packet{result(id, ldap.ApplicationSearchResultDone, ldap.LDAPResultOperationsError, "000004DC: a successful bind must be completed first", nil)}
	}
	hits, err := f.find(base, scope == int64(ldap.ScopeBaseObject), op.Children[6])
	if err != nil {
		return []*ber.Packet{result(id, ldap.ApplicationSearchResultDone, ldap.LDAPResultNoSuchObject, err.Error(), nil)}
	}
	var done []ldap.Control
	if pg, ok := ldap.FindControl(ctrls, ldap.ControlTypePaging).(*ldap.ControlPaging); ok && pg.PagingSize > 0 {
		start, _ := strconv.Atoi(string(pg.Cookie))
		start = min(start, len(hits))
		end := min(start+int(pg.PagingSize), len(hits))
		next := &ldap.ControlPaging{}
		if end < len(hits) {
			next.Cookie = []byte(strconv.Itoa(end))
		}
		hits, done = hits[start:end], []ldap.Control{next}
	}
	out := make([]*ber.Packet, 0, len(hits)+1)
	for _, e := range hits {
		out = append(out, f.entryPacket(id, e, attrs))
	}
	return append(out, result(id, ldap.ApplicationSearchResultDone, ldap.LDAPResultSuccess, "", done))
}

// find is the entries at (base scope) or under base that match filter.
func (f *FakeAD) find(base string, baseScope bool, filter *ber.Packet) ([]*fakeEntry, error) {
	suffix := fakeNorm(Suffix)
	if (baseScope && f.byDN[base] == nil) || (base != suffix && !strings.HasSuffix(base, ","+suffix)) {
		return nil, errors.New("0000208D: no such object " + base)
	}
	chains := map[string]map[string]bool{}
	var hits []*fakeEntry
	for _, e := range f.entries {
		n := fakeNorm(e.dn)
		in := n == base || (!baseScope && strings.HasSuffix(n, ","+base))
		if in && f.match(filter, e, chains) {
			hits = append(hits, e)
		}
	}
	return hits, nil
}

func (f *FakeAD) rootDSE(id int64) *ber.Packet {
	e := &fakeEntry{attrs: []fakeAttr{{name: "highestCommittedUSN", vals: [][]byte{[]byte(strconv.Itoa(firstUSN))}}, {name: "supportedCapabilities"}}}
	for _, c := range adCapabilities {
		e.attrs[1].vals = append(e.attrs[1].vals, []byte(c))
	}
	return f.entryPacket(id, e, nil)
}

// match evaluates a filter on e. What it does not know matches nothing.
func (f *FakeAD) match(p *ber.Packet, e *fakeEntry, chains map[string]map[string]bool) bool {
	switch p.Tag {
	case ldap.FilterAnd, ldap.FilterOr:
		for _, c := range p.Children {
			if f.match(c, e, chains) != (p.Tag == ldap.FilterAnd) {
				return p.Tag != ldap.FilterAnd
			}
		}
		return p.Tag == ldap.FilterAnd
	case ldap.FilterNot:
		return len(p.Children) == 1 && !f.match(p.Children[0], e, chains)
	case ldap.FilterPresent:
		return e.attr(p.Data.String()) != nil || strings.EqualFold(p.Data.String(), "objectClass")
	case ldap.FilterEqualityMatch:
		if len(p.Children) == 2 && e.attr(str(p.Children[0])) != nil {
			for _, v := range e.attr(str(p.Children[0])).vals {
				if strings.EqualFold(string(v), str(p.Children[1])) {
					return true
				}
			}
		}
	case ldap.FilterExtensibleMatch:
		var rule, attr, value string
		for _, c := range p.Children {
			switch c.Tag {
			case ldap.MatchingRuleAssertionMatchingRule:
				rule = str(c)
			case ldap.MatchingRuleAssertionType:
				attr = str(c)
			case ldap.MatchingRuleAssertionMatchValue:
				value = str(c)
			}
		}
		if rule == "1.2.840.113556.1.4.1941" && strings.EqualFold(attr, "memberOf") {
			g := fakeNorm(value)
			if chains[g] == nil {
				chains[g] = f.chain(g)
			}
			return chains[g][fakeNorm(e.dn)] && !f.leftOut[fakeNorm(e.dn)]
		}
	}
	return false
}

// chain is every entry in group g, directly or through groups in it.
func (f *FakeAD) chain(g string) map[string]bool {
	in := map[string]bool{}
	queue := []string{g}
	for len(queue) > 0 {
		e := f.byDN[queue[0]]
		queue = queue[1:]
		if e == nil || e.attr("member") == nil {
			continue
		}
		for _, m := range e.attr("member").vals {
			if n := fakeNorm(string(m)); !in[n] {
				in[n] = true
				queue = append(queue, n)
			}
		}
	}
	return in
}

func (e *fakeEntry) attr(name string) *fakeAttr {
	for i := range e.attrs {
		if strings.EqualFold(e.attrs[i].name, name) {
			return &e.attrs[i]
		}
	}
	return nil
}

// entryPacket is a SearchResultEntry with the attributes asked for (all
// when none or '*'), large ones in ranges.
func (f *FakeAD) entryPacket(id int64, e *fakeEntry, asked []string) *ber.Packet {
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationSearchResultEntry, nil, "entry")
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, e.dn, "DN"))
	list := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "attributes")
	all := len(asked) == 0
	for _, a := range asked {
		all = all || a == "*"
	}
	for _, a := range e.attrs {
		name, vals, ok := f.selectAttr(e, a, asked, all)
		if !ok {
			continue
		}
		pa := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "attribute")
		pa.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, name, "type"))
		set := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "values")
		for _, v := range vals {
			set.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, string(v), "value"))
		}
		pa.AppendChild(set)
		list.AppendChild(pa)
	}
	op.AppendChild(list)
	return message(id, op)
}

// selectAttr is what an entry answers of attribute a: as it is, or a
// range of it (asked for as a;range=lo-hi, or too large to send whole).
func (f *FakeAD) selectAttr(e *fakeEntry, a fakeAttr, asked []string, all bool) (string, [][]byte, bool) {
	for _, q := range asked {
		name, opt, ok := strings.Cut(q, ";")
		if !ok || !strings.EqualFold(name, a.name) || !strings.HasPrefix(strings.ToLower(opt), "range=") {
			continue
		}
		los, his, _ := strings.Cut(opt[len("range="):], "-")
		lo, err := strconv.Atoi(los)
		if err != nil || lo < 0 {
			continue
		}
		hi, err := strconv.Atoi(his)
		if err != nil {
			hi = -1
		}
		f.asked = append(f.asked, e.dn+" "+q)
		return f.valueRange(a, lo, hi, true)
	}
	for _, q := range asked {
		all = all || strings.EqualFold(q, a.name)
	}
	if !all {
		return "", nil, false
	}
	if len(a.vals) > f.maxValRange {
		return f.valueRange(a, 0, -1, false)
	}
	return a.name, a.vals, true
}

// valueRange answers the values lo to hi (-1: to the end) of a, at most
// maxValRange of them, the way the fault says.
func (f *FakeAD) valueRange(a fakeAttr, lo, hi int, followUp bool) (string, [][]byte, bool) {
	switch {
	case followUp && f.fault == RangesNeverEnd:
		var vals [][]byte
		for i := range 10 {
			vals = append(vals, fmt.Appendf(nil, "CN=ghost-%d,%s", lo+i, Groups))
		}
		return fmt.Sprintf("%s;range=%d-%d", a.name, lo, lo+9), vals, true
	case followUp && f.fault == RangesStuck:
		lo, hi = 0, -1
	}
	lo = min(lo, len(a.vals))
	end := min(lo+f.maxValRange, len(a.vals))
	if hi >= 0 {
		end = min(end, hi+1)
	}
	vals := a.vals[lo:end]
	if !followUp && f.fault == RangesShort {
		vals = vals[:len(vals)/2]
	}
	if end == len(a.vals) {
		return fmt.Sprintf("%s;range=%d-*", a.name, lo), vals, true
	}
	return fmt.Sprintf("%s;range=%d-%d", a.name, lo, end-1), vals, true
}

// fakeNorm is a DN in one spelling, for comparing.
func fakeNorm(dn string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(dn), ", ", ","))
}
