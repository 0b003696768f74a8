package directory

import (
	"maps"
	"slices"
	"strings"
	"unsafe"

	"github.com/keyfleet/keyfleet/daemon/core"
)

// The directory as read is kept between syncs (the base of the next
// incremental read), so it is kept small: a user is one string and a few
// numbers in one slice, their mapped groups a number into a table of the
// distinct sets of groups users are in, nothing of go-ldap's entries, and
// no index by DN (built while memberships are resolved, then dropped).
// The entries a sync applies are made a batch at a time from it.

// dirUser is one user entry as read. Its text is one string: the id, the
// DN, the username, the display name, the email and, where it is not the
// DN itself, the DN normalised (normDN).
type dirUser struct {
	s        string
	ends     [5]uint32 // where the id, DN, username, display name and email end in s
	set      uint32    // the mapped groups the user is in: dirState.sets[set]
	disabled bool
}

// newDirUser puts a user's fields in one string: like's, when like (an
// earlier read of the user, or nil) has the same (the full sync of a
// directory that did not change then takes no text of its own while the
// earlier read is still held).
func newDirUser(like *dirUser, id, dn, username, displayName, email string, disabled bool) dirUser {
	if like != nil && like.id() == id && like.dn() == dn && like.username() == username && like.displayName() == displayName && like.email() == email {
		return dirUser{s: like.s, ends: like.ends, disabled: disabled}
	}
	norm := normDN(dn)
	if norm == dn {
		norm = ""
	}
	var b strings.Builder
	b.Grow(len(id) + len(dn) + len(username) + len(displayName) + len(email) + len(norm))
	u := dirUser{disabled: disabled}
	for i, f := range [...]string{id, dn, username, displayName, email} {
		b.WriteString(f)
		u.ends[i] = uint32(b.Len())
	}
	b.WriteString(norm)
	u.s = b.String()
	return u
}

func (u *dirUser) field(i int) string {
	lo := uint32(0)
	if i > 0 {
		lo = u.ends[i-1]
	}
	return u.s[lo:u.ends[i]]
}

func (u *dirUser) id() string          { return u.field(0) }
func (u *dirUser) dn() string          { return u.field(1) }
func (u *dirUser) username() string    { return u.field(2) }
func (u *dirUser) displayName() string { return u.field(3) }
func (u *dirUser) email() string       { return u.field(4) }

// normDN is the user's DN normalised.
func (u *dirUser) normDN() string {
	if n := u.s[u.ends[4]:]; n != "" {
		return n
	}
	return u.dn()
}

// dirState is a complete read of the directory: what an incremental read
// starts from.
type dirState struct {
	users []dirUser
	index map[string]int32 // id → users
	// mapped are the normalised DNs of the mapped groups (sorted) and
	// sets the distinct sets of them users are in, each as indexes into
	// mapped, ascending; sets[0] is no group. Neither changes once made:
	// a later read that resolves memberships makes new ones.
	mapped  []string
	sets    [][]uint32
	inChain bool
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

func newDirState(inChain bool) *dirState {
	return &dirState{index: map[string]int32{}, sets: [][]uint32{nil}, inChain: inChain, unusable: map[string]bool{}}
}

// seen reports whether a full read saw the entry with this id.
func (st *dirState) seen(id string) bool {
	_, ok := st.index[id]
	return ok || st.unusable[id]
}

// user is the user with this id, nil if none.
func (st *dirState) user(id string) *dirUser {
	if i, ok := st.index[id]; ok {
		return &st.users[i]
	}
	return nil
}

// add puts u in the state, replacing an earlier read of it (its mapped
// groups stay until memberships are read again).
func (st *dirState) add(u dirUser) {
	if i, ok := st.index[u.id()]; ok {
		u.set = st.users[i].set
		st.users[i] = u
		return
	}
	st.index[u.id()] = int32(len(st.users))
	st.users = append(st.users, u)
}

// size is about how many bytes of the heap the state takes: the users,
// their text, the index by id (a map slot and its share of the map's
// spare room) and the problems noted.
func (st *dirState) size() int64 {
	n := int64(cap(st.users))*int64(unsafe.Sizeof(dirUser{})) + int64(len(st.index))*mapEntryBytes
	for i := range st.users {
		n += int64(len(st.users[i].s)+15) &^ 15 // the allocator's size classes
	}
	for _, p := range st.problems {
		n += int64(len(p)) + 16
	}
	return n + int64(len(st.unusable))*mapEntryBytes
}

// mapEntryBytes is what an entry of a map[string]int32 takes, its key's
// text apart (measured at 150,000 and 300,000 entries: 31 bytes).
const mapEntryBytes = 32

// byDN indexes the users by normalised DN.
func (st *dirState) byDN() map[string]int32 {
	out := make(map[string]int32, len(st.users))
	for i := range st.users {
		out[st.users[i].normDN()] = int32(i)
	}
	return out
}

// groups is the mapped groups of the user at i.
func (st *dirState) groups(i int) []uint32 { return st.sets[st.users[i].set] }

func (st *dirState) clone() *dirState {
	return &dirState{users: slices.Clone(st.users), index: maps.Clone(st.index), mapped: st.mapped, sets: st.sets,
		inChain: st.inChain, unusable: maps.Clone(st.unusable)}
}

// setBuilder finds the sets of mapped groups users are in, the groups
// added in ascending order: add(u, k) puts group k in user u's set. Each
// set is made once, however many users are in it.
type setBuilder struct {
	sets [][]uint32
	next map[[2]uint32]uint32 // a set and a group → the set with the group
	of   []uint32             // by user
}

func newSetBuilder(users int) *setBuilder {
	return &setBuilder{sets: [][]uint32{nil}, next: map[[2]uint32]uint32{}, of: make([]uint32, users)}
}

func (b *setBuilder) add(u int32, k uint32) {
	from := b.of[u]
	if s := b.sets[from]; len(s) > 0 && s[len(s)-1] == k {
		return
	}
	key := [2]uint32{from, k}
	to, ok := b.next[key]
	if !ok {
		to = uint32(len(b.sets))
		b.sets = append(b.sets, append(slices.Clip(b.sets[from]), k))
		b.next[key] = to
	}
	b.of[u] = to
}

// members is how many users are in a mapped group.
func (b *setBuilder) members() int {
	n := 0
	for _, s := range b.of {
		if s != 0 {
			n++
		}
	}
	return n
}

// done makes the sets the state's.
func (b *setBuilder) done(st *dirState, mapped []string) {
	st.mapped, st.sets = mapped, b.sets
	for i := range st.users {
		st.users[i].set = b.of[i]
	}
}

// entryList is the entries a read yields, in the order they are applied.
type entryList interface {
	len() int
	// batch is the entries i to j-1.
	batch(i, j int) []core.DirectoryEntry
}

// entrySlice is entries already made.
type entrySlice []core.DirectoryEntry

func (e entrySlice) len() int                             { return len(e) }
func (e entrySlice) batch(i, j int) []core.DirectoryEntry { return e[i:j] }

// stateEntries makes the entries of a state's users a batch at a time.
type stateEntries struct {
	st    *dirState
	order []int32 // users, by username
	// groups and roles are what each of st.sets maps to, sorted.
	groups, roles [][]string
}

// entries is the users (only those in only, when not nil) as entries,
// sorted by username (then id).
func (st *dirState) entries(cfg *LDAPConfig, only map[string]bool) *stateEntries {
	e := &stateEntries{st: st, groups: make([][]string, len(st.sets)), roles: make([][]string, len(st.sets))}
	groups, roles := normMap(cfg.Groups), normMap(cfg.Roles)
	for i, set := range st.sets {
		for _, k := range set {
			if v := groups[st.mapped[k]]; v != "" {
				e.groups[i] = append(e.groups[i], v)
			}
			if v := roles[st.mapped[k]]; v != "" {
				e.roles[i] = append(e.roles[i], v)
			}
		}
		slices.Sort(e.groups[i])
		slices.Sort(e.roles[i])
	}
	if only == nil {
		e.order = make([]int32, len(st.users))
		for i := range e.order {
			e.order[i] = int32(i)
		}
	} else {
		for id := range only {
			if i, ok := st.index[id]; ok {
				e.order = append(e.order, i)
			}
		}
	}
	slices.SortFunc(e.order, func(a, b int32) int {
		ua, ub := &st.users[a], &st.users[b]
		if c := strings.Compare(ua.username(), ub.username()); c != 0 {
			return c
		}
		return strings.Compare(ua.id(), ub.id())
	})
	return e
}

func (e *stateEntries) len() int { return len(e.order) }

func (e *stateEntries) batch(i, j int) []core.DirectoryEntry {
	out := make([]core.DirectoryEntry, 0, j-i)
	for _, k := range e.order[i:j] {
		u := &e.st.users[k]
		out = append(out, core.DirectoryEntry{ExternalID: u.id(), DN: u.dn(), Username: u.username(), DisplayName: u.displayName(),
			Email: u.email(), Disabled: u.disabled, Groups: slices.Clone(e.groups[u.set]), Roles: slices.Clone(e.roles[u.set])})
	}
	return out
}
