package directory

import (
	"context"
	"fmt"
	"slices"

	"github.com/go-ldap/ldap/v3"
)

// Nested groups. A user is in a mapped group when they are a member of it
// or of a group that is (at any depth). Active Directory resolves that
// itself (LDAP_MATCHING_RULE_IN_CHAIN: one search per mapped group);
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

// memberships maps each user id to the mapped groups they are in.
func (r *ldapReader) memberships(ctx context.Context, c *conn, st *dirState) (map[string][]string, error) {
	mapped := r.cfg.mappedGroups()
	out := map[string][]string{}
	if len(mapped) == 0 {
		return out, nil
	}
	if st.inChain {
		return out, r.inChain(ctx, c, mapped, out)
	}
	groups := map[string][]string{}
	err := c.search(ctx, r.cfg.GroupBase, r.cfg.GroupFilter, []string{r.cfg.Attributes.Member}, func(e *ldap.Entry) error {
		members := e.GetEqualFoldAttributeValues(r.cfg.Attributes.Member)
		norm := make([]string, len(members))
		for i, m := range members {
			norm[i] = normDN(m)
		}
		groups[normDN(e.DN)] = norm
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, g := range mapped {
		if _, ok := groups[g]; !ok {
			st.problems = append(st.problems, fmt.Sprintf("mapped group %s is not under %s or does not match %s", g, r.cfg.GroupBase, r.cfg.GroupFilter))
			continue
		}
		for id := range r.walk(groups, st, g) {
			out[id] = append(out[id], g)
		}
	}
	return out, nil
}

// walk collects the users in group g, through nested groups unless
// nesting is off.
func (r *ldapReader) walk(groups map[string][]string, st *dirState, g string) map[string]bool {
	users := map[string]bool{}
	seen := map[string]bool{g: true}
	queue := []string{g}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, m := range groups[cur] {
			if id, ok := st.byDN[m]; ok {
				users[id] = true
				continue
			}
			if _, isGroup := groups[m]; isGroup && !seen[m] && r.cfg.Nested != NestedOff {
				seen[m] = true
				queue = append(queue, m)
			}
		}
	}
	return users
}

// inChain asks Active Directory for each mapped group's members at any
// depth.
func (r *ldapReader) inChain(ctx context.Context, c *conn, mapped []string, out map[string][]string) error {
	for _, g := range mapped {
		filter := fmt.Sprintf("(&%s(memberOf:%s:=%s))", r.cfg.UserFilter, inChainRule, ldap.EscapeFilter(g))
		err := c.search(ctx, r.cfg.UserBase, filter, []string{r.cfg.Attributes.ID}, func(e *ldap.Entry) error {
			if id := r.externalID(e); id != "" {
				out[id] = append(out[id], g)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
