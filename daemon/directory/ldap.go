package directory

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// inChainRule is AD's LDAP_MATCHING_RULE_IN_CHAIN: memberOf through any
// depth of nested groups, resolved by the server.
const inChainRule = "1.2.840.113556.1.4.1941"

// uacDisabled is userAccountControl's ACCOUNTDISABLE bit.
const uacDisabled = 0x2

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
	entries  entryList
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
	st := newDirState(inChain)
	err = c.search(ctx, r.cfg.UserBase, r.cfg.UserFilter, r.userAttrs(), func(e *ldap.Entry) error {
		if u, ok := r.user(e, st); ok {
			st.add(u)
		}
		return nil
	})
	if err != nil {
		return read{}, err
	}
	if err := r.memberships(ctx, c, st); err != nil {
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
		if u, ok := r.user(e, st); ok {
			st.add(u)
			changed[u.id()] = true
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
		if old := r.last.user(id); old == nil || old.normDN() != st.user(id).normDN() {
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
	if err = r.memberships(ctx, c, st); err != nil {
		return err
	}
	same := slices.Equal(r.last.mapped, st.mapped) // the sets number the same groups
	for i := range st.users {
		var differ bool
		switch {
		case i >= len(r.last.users): // a new user was in no group
			differ = len(st.groups(i)) > 0
		case same:
			differ = !slices.Equal(r.last.groups(i), st.groups(i))
		default:
			differ = !slices.Equal(r.last.groupDNs(i), st.groupDNs(i))
		}
		if differ {
			changed[st.users[i].id()] = true
		}
	}
	return nil
}

// user reads one entry; false (and a problem noted) when it has no id
// or username.
func (r *ldapReader) user(e *ldap.Entry, st *dirState) (dirUser, bool) {
	a := r.cfg.Attributes
	id, username := r.externalID(e), strings.ToLower(strings.TrimSpace(e.GetEqualFoldAttributeValue(a.Username)))
	if id == "" || username == "" {
		st.problems = append(st.problems, fmt.Sprintf("%s: no %s or %s; left out", e.DN, a.ID, a.Username))
		if id != "" {
			st.unusable[id] = true
		}
		return dirUser{}, false
	}
	disabled := a.Disabled != "" && r.disabledValue(e.GetEqualFoldAttributeValue(a.Disabled))
	var like *dirUser
	if r.last != nil {
		like = r.last.user(id)
	}
	return newDirUser(like, id, e.DN, username, e.GetEqualFoldAttributeValue(a.DisplayName), e.GetEqualFoldAttributeValue(a.Email), disabled), true
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

// groupDNs is the mapped groups (normalised DNs) of the user at i.
func (st *dirState) groupDNs(i int) []string {
	set := st.groups(i)
	if len(set) == 0 {
		return nil
	}
	out := make([]string, len(set))
	for j, k := range set {
		out[j] = st.mapped[k]
	}
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
