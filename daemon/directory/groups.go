package directory

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/go-ldap/ldap/v3"
)

// Nested groups. A user is in a mapped group when they are a member of it
// or of a group that is (at any depth). Active Directory resolves that
// itself (LDAP_MATCHING_RULE_IN_CHAIN: one search per mapped group,
// each answer checked against the group's direct members, since a server
// that does not know the rule answers with nothing);
// elsewhere keyfleet reads every group under group_base and follows
// groups in groups, each group once (cycles end there).

// mappedGroups are the normalised DNs of the groups the maps name.
func (c *LDAPConfig) mappedGroups() []string {
	var out []string
	for dn := range c.Groups {
		out = append(out, normDN(dn))
	}
	for dn := range c.Roles {
		out = append(out, normDN(dn))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// memberships finds the mapped groups each user of st is in.
func (r *ldapReader) memberships(ctx context.Context, c *conn, st *dirState) error {
	mapped := r.cfg.mappedGroups()
	if len(mapped) == 0 {
		newSetBuilder(len(st.users)).done(st, mapped)
		return nil
	}
	byDN := st.byDN()
	if st.inChain {
		noted := len(st.problems)
		b, err := r.inChain(ctx, c, st, byDN, mapped)
		if err == nil {
			b.done(st, mapped)
			return nil
		}
		var nc *inChainError
		if !errors.As(err, &nc) {
			return err
		}
		if r.cfg.Nested == NestedInChain {
			return fmt.Errorf("%w: %v; set nested: auto or resolve", ErrSearch, nc)
		}
		// auto: the server says it is AD but does not answer IN_CHAIN as
		// AD does. Resolve the nesting here, for this read and the
		// incremental ones built on it.
		st.inChain = false
		st.problems = st.problems[:noted] // resolve notes the missing groups again
		st.warnings = append(st.warnings, nc.Error()+"; keyfleet resolved the nested groups itself")
	}
	b, err := r.resolve(ctx, c, st, byDN, mapped)
	if err != nil {
		return err
	}
	b.done(st, mapped)
	return nil
}

// groupMembers is a group's members as read: the users among them (by
// index in the state) and the others' normalised DNs (groups, or entries
// the user filter leaves out).
type groupMembers struct {
	users  []int32
	others []string
}

// resolve reads every group under group_base and follows groups in
// groups itself.
func (r *ldapReader) resolve(ctx context.Context, c *conn, st *dirState, byDN map[string]int32, mapped []string) (*setBuilder, error) {
	groups, err := r.readGroups(ctx, c, byDN)
	if err != nil {
		return nil, err
	}
	b := newSetBuilder(len(st.users))
	for k, g := range mapped {
		if _, ok := groups[g]; !ok {
			st.problems = append(st.problems, fmt.Sprintf("mapped group %s is not under %s or does not match %s", g, r.cfg.GroupBase, r.cfg.GroupFilter))
			continue
		}
		r.walk(groups, g, func(u int32) { b.add(u, uint32(k)) })
	}
	return b, nil
}

// readGroups reads every group under group_base: its members, by the
// group's normalised DN. A group whose members come in ranges (Active
// Directory's large groups) is read to its last range once the paged
// search is done.
func (r *ldapReader) readGroups(ctx context.Context, c *conn, byDN map[string]int32) (map[string]groupMembers, error) {
	attr := r.cfg.Attributes.Member
	groups := map[string]groupMembers{}
	var partial []*ldap.Entry
	err := c.search(ctx, r.cfg.GroupBase, r.cfg.GroupFilter, []string{attr}, func(e *ldap.Entry) error {
		if ranged(e, attr) {
			partial = append(partial, e)
			return nil
		}
		members, err := c.values(ctx, e, attr)
		groups[normDN(e.DN)] = sortMembers(members, byDN)
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, e := range partial {
		members, err := c.values(ctx, e, attr)
		if err != nil {
			return nil, err
		}
		groups[normDN(e.DN)] = sortMembers(members, byDN)
	}
	return groups, nil
}

// sortMembers tells a group's users from its other members.
func sortMembers(dns []string, byDN map[string]int32) groupMembers {
	var m groupMembers
	for _, dn := range dns {
		n := normDN(dn)
		if u, ok := byDN[n]; ok {
			m.users = append(m.users, u)
		} else {
			m.others = append(m.others, n)
		}
	}
	return m
}

// normDNs is dns each normalised.
func normDNs(dns []string) []string {
	out := make([]string, len(dns))
	for i, dn := range dns {
		out[i] = normDN(dn)
	}
	return out
}

// walk calls user for each user in group g, through nested groups
// unless nesting is off (a user may come more than once).
func (r *ldapReader) walk(groups map[string]groupMembers, g string, user func(int32)) {
	seen := map[string]bool{g: true}
	queue := []string{g}
	for len(queue) > 0 {
		cur := groups[queue[0]]
		queue = queue[1:]
		for _, u := range cur.users {
			user(u)
		}
		if r.cfg.Nested == NestedOff {
			continue
		}
		for _, m := range cur.others {
			if _, isGroup := groups[m]; isGroup && !seen[m] {
				seen[m] = true
				queue = append(queue, m)
			}
		}
	}
}

// inChainError says the server did not answer LDAP_MATCHING_RULE_IN_CHAIN
// as Active Directory does: it refused the rule, or left out users who
// are direct members of the group (a server that does not know the rule
// matches nothing, and says so with an empty, successful answer).
type inChainError struct {
	server, group, why string
}

func (e *inChainError) Error() string {
	return fmt.Sprintf("%s says it is Active Directory but did not answer LDAP_MATCHING_RULE_IN_CHAIN (%s) for %s: %s",
		e.server, inChainRule, e.group, e.why)
}

// inChain asks Active Directory for each mapped group's members at any
// depth, and checks each answer against the group's own member list:
// every user who is a direct member must be in it. An answer that fails
// the check, or a refusal of the rule, is an *inChainError. When no
// mapped group has a direct member among the users read, nothing can be
// checked; with nested: auto that is an *inChainError too (resolving is
// slower, never wrong), with nested: in_chain the answers are taken
// unless they are all empty (what a server that does not know the rule
// answers).
func (r *ldapReader) inChain(ctx context.Context, c *conn, st *dirState, byDN map[string]int32, mapped []string) (*setBuilder, error) {
	b := newSetBuilder(len(st.users))
	others := map[string]bool{} // ids answered that are not users read
	checked, answered := false, false
	for k, g := range mapped {
		got := map[string]bool{}
		filter := fmt.Sprintf("(&%s(memberOf:%s:=%s))", r.cfg.UserFilter, inChainRule, ldap.EscapeFilter(g))
		err := c.search(ctx, r.cfg.UserBase, filter, []string{r.cfg.Attributes.ID}, func(e *ldap.Entry) error {
			if id := r.externalID(e); id != "" {
				got[id] = true
			}
			return nil
		})
		if err != nil {
			if refusesRule(err) {
				return nil, &inChainError{server: r.cfg.URL, group: g, why: "the search was refused: " + err.Error()}
			}
			return nil, err
		}
		direct, found, err := r.directMembers(ctx, c, g)
		if err != nil {
			return nil, err
		}
		if !found {
			st.problems = append(st.problems, fmt.Sprintf("mapped group %s does not exist or does not match %s", g, r.cfg.GroupFilter))
			continue
		}
		if err := checkChain(r.cfg.URL, g, st, byDN, direct, got, &checked); err != nil {
			return nil, err
		}
		for id := range got {
			if u, ok := st.index[id]; ok {
				b.add(u, uint32(k))
			} else {
				others[id] = true
			}
		}
		answered = answered || len(got) > 0
	}
	if !checked && (r.cfg.Nested != NestedInChain || !answered) {
		return nil, &inChainError{server: r.cfg.URL, group: "the mapped groups",
			why: fmt.Sprintf("none has a direct member among the users read, so the answers (%d users) could not be checked", b.members()+len(others))}
	}
	return b, nil
}

// checkChain checks one IN_CHAIN answer (got, by user id) against the
// group's direct members (normalised DNs): each of them that is a user
// read must be in it. checked becomes true once one such user was found.
func checkChain(server, g string, st *dirState, byDN map[string]int32, direct []string, got map[string]bool, checked *bool) error {
	missing := 0
	for _, m := range direct {
		u, ok := byDN[m]
		if !ok {
			continue // a group, or an entry the user filter leaves out
		}
		*checked = true
		if !got[st.users[u].id()] {
			missing++
		}
	}
	if missing > 0 {
		return &inChainError{server: server, group: g,
			why: fmt.Sprintf("%d of its direct members were not in the answer (%d users answered)", missing, len(got))}
	}
	return nil
}

// directMembers reads group g's own member list (normalised DNs), every
// range of it; found is false when g does not exist or does not match the
// group filter.
func (r *ldapReader) directMembers(ctx context.Context, c *conn, g string) (members []string, found bool, err error) {
	req := ldap.NewSearchRequest(g, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false, r.cfg.GroupFilter,
		[]string{r.cfg.Attributes.Member}, nil)
	res, err := c.Search(req)
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, classify("reading the members of "+g, err)
	}
	if len(res.Entries) == 0 {
		return nil, false, nil
	}
	all, err := c.values(ctx, res.Entries[0], r.cfg.Attributes.Member)
	if err != nil {
		return nil, false, err
	}
	return normDNs(all), true, nil
}

// refusesRule reports whether a search error is the server refusing the
// IN_CHAIN filter (it does not know the rule or the attribute), as
// opposed to the server going away or denying the search altogether.
func refusesRule(err error) bool {
	var le *ldap.Error
	if !errors.As(err, &le) {
		return false
	}
	switch le.ResultCode {
	case ldap.LDAPResultInappropriateMatching, ldap.LDAPResultUndefinedAttributeType, ldap.LDAPResultUnwillingToPerform,
		ldap.LDAPResultProtocolError, ldap.LDAPResultOperationsError:
		return true
	}
	return false
}
