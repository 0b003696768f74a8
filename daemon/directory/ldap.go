package directory

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/keyfleet/keyfleet/daemon/core"
)

// inChainRule is AD's LDAP_MATCHING_RULE_IN_CHAIN: memberOf through any
// depth of nested groups, resolved by the server.
const inChainRule = "1.2.840.113556.1.4.1941"

// uacDisabled is userAccountControl's ACCOUNTDISABLE bit.
const uacDisabled = 0x2

// dirUser is one user entry as read.
type dirUser struct {
	id, dn, username, displayName, email string
	disabled                             bool
}

// dirState is a complete read of the directory: what an incremental read
// starts from.
type dirState struct {
	users map[string]*dirUser // by id
	byDN  map[string]string   // normalised DN → id
	// memberOf maps a user id to the mapped groups (normalised DNs) they
	// are in, directly or through nested groups.
	memberOf map[string][]string
	inChain  bool
	// problems are entries that could not be used (no id or username);
	// unusable are the ids of those that had an id: still in the
	// directory, so not leavers.
	problems []string
	unusable map[string]bool
	// warnings say where the read went another way than configured
	// (IN_CHAIN not answered: nesting resolved by keyfleet). Nothing was
	// left out.
	warnings []string
}

// seen reports whether a full read saw the entry with this id.
func (st *dirState) seen(id string) bool { return st.users[id] != nil || st.unusable[id] }

// ldapReader reads an LDAP source. It keeps the last complete read in
// memory so that the next read can be incremental.
type ldapReader struct {
	cfg *LDAPConfig
	now func() time.Time
	// pageHook runs after each page of every search (tests stop the
	// directory mid-read with it).
	pageHook func(entries int)
	last     *dirState
}

// read is the outcome of a read: the mapped entries, the cursor to start
// the next incremental read from, and whether it read everything. state
// becomes the reader's last read once the sync applied it (commit).
type read struct {
	entries  []core.DirectoryEntry
	cursor   string
	full     bool
	problems []string
	warnings []string
	state    *dirState
}

// commit makes a read the base of the next incremental one.
func (r *ldapReader) commit(rd read) { r.last = rd.state }

func (r *ldapReader) connect(ctx context.Context) (*conn, error) {
	c, err := r.cfg.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.pageHook = r.pageHook
	return c, nil
}

// userAttrs are the attributes read of a user.
func (r *ldapReader) userAttrs() []string {
	a := r.cfg.Attributes
	out := []string{a.ID, a.Username, a.DisplayName, a.Email}
	if a.Disabled != "" {
		out = append(out, a.Disabled)
	}
	return out
}

// full reads every user and every mapped group's members.
func (r *ldapReader) full(ctx context.Context) (read, error) {
	c, err := r.connect(ctx)
	if err != nil {
		return read{}, err
	}
	defer c.Close()
	cursor, inChain, err := r.startCursor(c)
	if err != nil {
		return read{}, err
	}
	st := &dirState{users: map[string]*dirUser{}, byDN: map[string]string{}, inChain: inChain, unusable: map[string]bool{}}
	err = c.search(ctx, r.cfg.UserBase, r.cfg.UserFilter, r.userAttrs(), func(e *ldap.Entry) error {
		st.add(r.user(e, st))
		return nil
	})
	if err != nil {
		return read{}, err
	}
	if st.memberOf, err = r.memberships(ctx, c, st); err != nil {
		return read{}, err
	}
	return read{entries: st.entries(r.cfg, nil), cursor: cursor, full: true, problems: st.problems, warnings: st.warnings, state: st}, nil
}

// startCursor reads where the next incremental read starts, before this
// read begins (changes made during it are read again next time): AD's
// highestCommittedUSN, else the time less the allowed clock skew.
func (r *ldapReader) startCursor(c *conn) (string, bool, error) {
	ad, usn, err := c.rootDSE()
	if err != nil {
		return "", false, err
	}
	inChain := r.cfg.Nested == NestedInChain || (r.cfg.Nested == NestedAuto && ad)
	if ad && usn != "" {
		return "usn:" + usn, inChain, nil
	}
	return "ts:" + r.now().Add(-clockSkew).UTC().Format("20060102150405Z"), inChain, nil
}

// clockSkew is how far the directory's clock may be from keyfleetd's for
// an incremental read by modifyTimestamp not to miss a change.
const clockSkew = 2 * time.Minute

// changeFilter narrows a filter to entries changed since cursor.
func changeFilter(filter, cursor string) (string, bool) {
	switch {
	case strings.HasPrefix(cursor, "usn:"):
		n, err := strconv.ParseUint(cursor[4:], 10, 64)
		return fmt.Sprintf("(&%s(uSNChanged>=%d))", filter, n+1), err == nil
	case strings.HasPrefix(cursor, "ts:"):
		return fmt.Sprintf("(&%s(modifyTimestamp>=%s))", filter, ldap.EscapeFilter(cursor[3:])), true
	}
	return "", false
}

// changes reads what changed since cursor: users whose entries changed,
// and users whose mapped memberships changed when any group did. It
// reports false when it cannot (no earlier read in this process, or a
// cursor it does not know): the caller reads everything.
func (r *ldapReader) changes(ctx context.Context, cursor string) (read, bool, error) {
	userFilter, ok1 := changeFilter(r.cfg.UserFilter, cursor)
	groupFilter, ok2 := changeFilter(r.cfg.GroupFilter, cursor)
	if r.last == nil || !ok1 || !ok2 {
		return read{}, false, nil
	}
	c, err := r.connect(ctx)
	if err != nil {
		return read{}, false, err
	}
	defer c.Close()
	next, _, err := r.startCursor(c)
	if err != nil {
		return read{}, false, err
	}
	st := r.last.clone()
	changed := map[string]bool{}
	err = c.search(ctx, r.cfg.UserBase, userFilter, r.userAttrs(), func(e *ldap.Entry) error {
		if u := r.user(e, st); u != nil {
			st.add(u)
			changed[u.id] = true
		}
		return nil
	})
	if err != nil {
		return read{}, false, err
	}
	if err := r.regroup(ctx, c, st, groupFilter, changed); err != nil {
		return read{}, false, err
	}
	return read{entries: st.entries(r.cfg, changed), cursor: next, problems: st.problems, warnings: st.warnings, state: st}, true, nil
}

// regroup reads the memberships again when a group changed, or a user is
// new or has a new DN (groups name their members by DN), and marks the
// users whose mapped groups changed.
func (r *ldapReader) regroup(ctx context.Context, c *conn, st *dirState, groupFilter string, changed map[string]bool) error {
	moved := false // a new user, or one whose DN changed: group members name DNs
	for id := range changed {
		if old := r.last.users[id]; old == nil || normDN(old.dn) != normDN(st.users[id].dn) {
			moved = true
		}
	}
	groupChanged := false
	err := c.search(ctx, r.cfg.GroupBase, groupFilter, []string{"1.1"}, func(*ldap.Entry) error {
		groupChanged = true
		return nil
	})
	if err != nil || (!groupChanged && !moved) {
		return err
	}
	before := st.memberOf
	if st.memberOf, err = r.memberships(ctx, c, st); err != nil {
		return err
	}
	for id := range st.users {
		if !slices.Equal(before[id], st.memberOf[id]) {
			changed[id] = true
		}
	}
	return nil
}

// user reads one entry; nil (and a problem noted) when it has no id or
// username.
func (r *ldapReader) user(e *ldap.Entry, st *dirState) *dirUser {
	a := r.cfg.Attributes
	u := &dirUser{dn: e.DN, username: strings.ToLower(strings.TrimSpace(e.GetEqualFoldAttributeValue(a.Username))),
		displayName: e.GetEqualFoldAttributeValue(a.DisplayName), email: e.GetEqualFoldAttributeValue(a.Email)}
	u.id = r.externalID(e)
	if u.id == "" || u.username == "" {
		st.problems = append(st.problems, fmt.Sprintf("%s: no %s or %s; left out", e.DN, a.ID, a.Username))
		if u.id != "" {
			st.unusable[u.id] = true
		}
		return nil
	}
	if a.Disabled != "" {
		u.disabled = r.disabledValue(e.GetEqualFoldAttributeValue(a.Disabled))
	}
	return u
}

// externalID is the entry's stable id as text: AD's binary objectGUID in
// its usual form, anything else as it is.
func (r *ldapReader) externalID(e *ldap.Entry) string {
	if strings.EqualFold(r.cfg.Attributes.ID, "objectGUID") {
		if b := e.GetEqualFoldRawAttributeValue("objectGUID"); len(b) == 16 {
			return guidString(b)
		}
	}
	return e.GetEqualFoldAttributeValue(r.cfg.Attributes.ID)
}

// guidString formats an objectGUID: its first three fields are stored
// little-endian (Windows' GUID layout), the rest as bytes.
func guidString(b []byte) string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", binary.LittleEndian.Uint32(b[0:4]), binary.LittleEndian.Uint16(b[4:6]),
		binary.LittleEndian.Uint16(b[6:8]), b[8:10], b[10:16])
}

// disabledValue reads the disabled attribute: userAccountControl's
// ACCOUNTDISABLE bit, or any value but FALSE or 0.
func (r *ldapReader) disabledValue(v string) bool {
	if strings.EqualFold(r.cfg.Attributes.Disabled, "userAccountControl") {
		n, err := strconv.ParseInt(v, 10, 64)
		return err == nil && n&uacDisabled != 0
	}
	return v != "" && !strings.EqualFold(v, "false") && v != "0"
}

// add puts u in the state, replacing an earlier read of it (a rename
// moves its DN).
func (st *dirState) add(u *dirUser) {
	if u == nil {
		return
	}
	if old := st.users[u.id]; old != nil {
		delete(st.byDN, normDN(old.dn))
	}
	st.users[u.id] = u
	st.byDN[normDN(u.dn)] = u.id
}

func (st *dirState) clone() *dirState {
	return &dirState{users: maps.Clone(st.users), byDN: maps.Clone(st.byDN), memberOf: st.memberOf, inChain: st.inChain,
		unusable: maps.Clone(st.unusable)}
}

// entries maps the users (only those in only, when not nil) to entries,
// sorted by username.
func (st *dirState) entries(cfg *LDAPConfig, only map[string]bool) []core.DirectoryEntry {
	groups, roles := normMap(cfg.Groups), normMap(cfg.Roles)
	out := make([]core.DirectoryEntry, 0, len(st.users))
	for id, u := range st.users {
		if only != nil && !only[id] {
			continue
		}
		e := core.DirectoryEntry{ExternalID: id, DN: u.dn, Username: u.username, DisplayName: u.displayName, Email: u.email, Disabled: u.disabled}
		for _, g := range st.memberOf[id] {
			if v := groups[g]; v != "" {
				e.Groups = append(e.Groups, v)
			}
			if v := roles[g]; v != "" {
				e.Roles = append(e.Roles, v)
			}
		}
		slices.Sort(e.Groups)
		slices.Sort(e.Roles)
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b core.DirectoryEntry) int { return strings.Compare(a.Username, b.Username) })
	return out
}

// normMap is m with its DN keys normalised.
func normMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for dn, v := range m {
		out[normDN(dn)] = v
	}
	return out
}

// normDN is a DN in one spelling, for comparing: parsed and lower-cased
// (attribute values in directories' DNs compare without case).
func normDN(dn string) string {
	if !strings.ContainsAny(dn, `\"+;<>#`) {
		return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(dn), ", ", ","))
	}
	if d, err := ldap.ParseDN(dn); err == nil {
		return strings.ToLower(d.String())
	}
	return strings.ToLower(dn)
}
