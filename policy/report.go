package policy

import (
	"slices"
	"time"
)

// Subject is one user with what Evaluate needs about them.
type Subject struct {
	User         User
	Factors      []Factor
	FirstApplied map[string]time.Time
	Exemptions   []Exemption
}

// Counts aggregate decisions over a set of users.
type Counts struct {
	Users int `json:"users"`
	// WithFactor counts users with at least one active factor the policy
	// accepts for them (Decision.Counted): a TOTP app where the rules
	// allow only security keys is not adoption.
	WithFactor   int `json:"with_factor"`
	Compliant    int `json:"compliant"` // exempt users included
	Grace        int `json:"grace"`
	NonCompliant int `json:"non_compliant"`
	Exempt       int `json:"exempt"`
	// Adoption is WithFactor / Users, 0 when there are no users.
	Adoption          float64 `json:"adoption"`
	StaleFactors      int     `json:"stale_factors"`
	VulnerableFactors int     `json:"vulnerable_factors"`
}

// Compliance is a compliance report.
type Compliance struct {
	Counts
	ByGroup map[string]Counts `json:"by_group"`
	ByRole  map[string]Counts `json:"by_role"`
	// KindsInUse counts active factors by kind.
	KindsInUse map[string]int `json:"kinds_in_use"`
	// PrivilegedShort counts admins and security officers with fewer than
	// two hardware factors the policy accepts.
	PrivilegedShort int `json:"privileged_short"`
}

// Report evaluates every subject at now and aggregates the decisions. For
// large populations, stream users through a [Tally] instead.
func Report(doc *Document, subjects []Subject, now time.Time) Compliance {
	var t Tally
	for _, s := range subjects {
		d := Evaluate(doc, s.User, s.Factors, s.FirstApplied, s.Exemptions, now)
		t.Add(s.User, s.Factors, d)
	}
	return t.Compliance()
}

// Tally aggregates decisions one user at a time, in constant memory per
// group and role. The zero value is ready to use; it is not safe for
// concurrent use (merge per-goroutine tallies with Merge).
type Tally struct {
	all     Counts
	byGroup map[string]*Counts
	byRole  map[string]*Counts
	kinds   map[string]int
	privSh  int
}

// Add counts one user's decision.
func (t *Tally) Add(u User, factors []Factor, d Decision) {
	if t.byGroup == nil {
		t.byGroup, t.byRole, t.kinds = map[string]*Counts{}, map[string]*Counts{}, map[string]int{}
	}
	for _, f := range factors {
		if f.State == FactorActive {
			t.kinds[f.Kind]++
		}
	}
	t.all.add(d)
	for _, g := range uniq(u.Groups) {
		bucket(t.byGroup, g).add(d)
	}
	for _, r := range uniq(u.Roles) {
		bucket(t.byRole, r).add(d)
	}
	if Privileged(u) && d.CountedHardware < 2 {
		t.privSh++
	}
}

// Merge adds another tally's counts into t.
func (t *Tally) Merge(o *Tally) {
	if t.byGroup == nil {
		t.byGroup, t.byRole, t.kinds = map[string]*Counts{}, map[string]*Counts{}, map[string]int{}
	}
	t.all.merge(o.all)
	for g, c := range o.byGroup {
		bucket(t.byGroup, g).merge(*c)
	}
	for r, c := range o.byRole {
		bucket(t.byRole, r).merge(*c)
	}
	for k, n := range o.kinds {
		t.kinds[k] += n
	}
	t.privSh += o.privSh
}

// Compliance returns the report so far.
func (t *Tally) Compliance() Compliance {
	c := Compliance{Counts: t.all.final(), ByGroup: map[string]Counts{}, ByRole: map[string]Counts{},
		KindsInUse: map[string]int{}, PrivilegedShort: t.privSh}
	for g, n := range t.byGroup {
		c.ByGroup[g] = n.final()
	}
	for r, n := range t.byRole {
		c.ByRole[r] = n.final()
	}
	for k, n := range t.kinds {
		c.KindsInUse[k] = n
	}
	return c
}

func bucket(m map[string]*Counts, key string) *Counts {
	c := m[key]
	if c == nil {
		c = &Counts{}
		m[key] = c
	}
	return c
}

func (c *Counts) add(d Decision) {
	c.Users++
	if d.Counted > 0 {
		c.WithFactor++
	}
	switch d.Status {
	case StatusCompliant:
		c.Compliant++
	case StatusGrace:
		c.Grace++
	case StatusNonCompliant:
		c.NonCompliant++
	}
	if d.Exempt() {
		c.Exempt++
	}
	c.StaleFactors += len(d.Stale)
	c.VulnerableFactors += len(d.Vulnerable)
}

func (c *Counts) merge(o Counts) {
	c.Users += o.Users
	c.WithFactor += o.WithFactor
	c.Compliant += o.Compliant
	c.Grace += o.Grace
	c.NonCompliant += o.NonCompliant
	c.Exempt += o.Exempt
	c.StaleFactors += o.StaleFactors
	c.VulnerableFactors += o.VulnerableFactors
}

func (c Counts) final() Counts {
	if c.Users > 0 {
		c.Adoption = float64(c.WithFactor) / float64(c.Users)
	}
	return c
}

// uniq returns the distinct entries, so a user listed twice in a group
// counts once.
func uniq(s []string) []string {
	if len(s) < 2 {
		return s
	}
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}
