package directory

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
	"go.yaml.in/yaml/v3"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// Duration is a time.Duration written as "15m" in YAML.
type Duration struct{ time.Duration }

// UnmarshalYAML reads "30s", "15m", "6h".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 30s, 15m or 6h", n.Line, n.Value)
	}
	d.Duration = v
	return nil
}

// MarshalYAML writes the duration as text.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Config is the directory section of keyfleetd.yaml. The zero Config
// reads no directory (no LDAP URL) and serves no SCIM.
type Config struct {
	LDAP LDAPConfig `yaml:"ldap"`
	SCIM SCIMConfig `yaml:"scim"`
}

// LDAPEnabled reports whether an LDAP directory is configured.
func (c *Config) LDAPEnabled() bool { return c.LDAP.URL != "" }

// Directory flavours: what the defaults below assume.
const (
	FlavorOpenLDAP = "openldap"
	FlavorAD       = "ad"
)

// How nested groups are read (LDAPConfig.Nested).
const (
	NestedAuto    = "auto"     // in_chain where the server offers it (Active Directory), else resolve
	NestedInChain = "in_chain" // AD's LDAP_MATCHING_RULE_IN_CHAIN (1.2.840.113556.1.4.1941)
	NestedResolve = "resolve"  // keyfleet reads every group and follows groups in groups
	NestedOff     = "off"      // direct members only
)

// LDAPConfig configures the LDAP / Active Directory sync. Every field but
// URL, UserBase and, for a bind, BindDN and BindPasswordFile has a default
// for the flavour.
type LDAPConfig struct {
	// Name names the source in users' links and the audit trail (default
	// "ldap"). Renaming it unlinks every user it made.
	Name   string `yaml:"name"`
	Flavor string `yaml:"flavor"` // openldap (default) or ad
	// URL is ldaps://host:636 or ldap://host:389 (with StartTLS).
	URL      string `yaml:"url"`
	StartTLS bool   `yaml:"start_tls"`
	// CAFile is the PEM bundle the server's certificate must chain to
	// (default: the system's roots); ServerName overrides the name it must
	// carry (default: the URL's host).
	CAFile     string `yaml:"ca_file"`
	ServerName string `yaml:"server_name"`
	// AllowPlaintext lets ldap:// without StartTLS send the bind
	// password in the clear: only for a directory on the loopback.
	AllowPlaintext bool `yaml:"allow_plaintext"`
	// BindDN and BindPasswordFile are the read-only account keyfleet binds
	// as; the file is read at every sync (so it can be rotated) and must
	// not be readable by others.
	BindDN           string `yaml:"bind_dn"`
	BindPasswordFile string `yaml:"bind_password_file"`
	// UserBase and UserFilter select the users; GroupBase and GroupFilter
	// the groups (default GroupBase: UserBase).
	UserBase    string       `yaml:"user_base"`
	UserFilter  string       `yaml:"user_filter"`
	GroupBase   string       `yaml:"group_base"`
	GroupFilter string       `yaml:"group_filter"`
	Attributes  AttributeMap `yaml:"attributes"`
	// Groups maps directory group DNs to keyfleet groups; Roles maps
	// directory group DNs to keyfleet roles (granting them still needs a
	// second person's approval). A user is in a group if they are in it
	// directly or through groups in it (Nested).
	Groups map[string]string `yaml:"groups"`
	Roles  map[string]string `yaml:"roles"`
	Nested string            `yaml:"nested"`
	// PageSize is the RFC 2696 page size (default 500).
	PageSize int `yaml:"page_size"`
	// Interval is how often keyfleetd syncs (default 15m; a sync reads
	// only what changed where the directory allows), FullInterval how
	// often it reads everything, finding the users that left (default 6h).
	Interval     Duration `yaml:"interval"`
	FullInterval Duration `yaml:"full_interval"`
	// Timeout bounds each LDAP request (default 30s).
	Timeout Duration `yaml:"timeout"`
	// MaxDisablePercent stops a sync that would disable more than this
	// share of the source's users (default 10) and at least MinDisable
	// (default 10): a wrong filter or base must not disable everyone.
	// 'keyfleet directory sync --force' goes past it.
	MaxDisablePercent int `yaml:"max_disable_percent"`
	MinDisable        int `yaml:"min_disable"`
}

// AttributeMap names the directory attributes keyfleet reads.
type AttributeMap struct {
	// ID is the stable id (default entryUUID; objectGUID on AD).
	ID string `yaml:"id"`
	// Username (default uid; sAMAccountName on AD), lower-cased.
	Username    string `yaml:"username"`
	DisplayName string `yaml:"display_name"` // default cn; displayName on AD
	Email       string `yaml:"email"`        // default mail
	// Disabled marks a disabled user: on AD userAccountControl's
	// ACCOUNTDISABLE bit (0x2); otherwise any value but FALSE or 0 (say
	// pwdAccountLockedTime). Empty: no user is disabled in the directory.
	Disabled string `yaml:"disabled"`
	// Member is the groups' member attribute (default member).
	Member string `yaml:"member"`
}

// SCIMConfig turns on the SCIM 2.0 service provider under /scim/v2.
type SCIMConfig struct {
	Enabled bool `yaml:"enabled"`
	// Groups maps a SCIM group's displayName to what it gives its
	// members: a keyfleet group, a role (granted only with a second
	// person's approval), or both.
	Groups map[string]SCIMGroupMap `yaml:"groups"`
	// AutoGroups gives members of an unmapped group the keyfleet group
	// named like it (lower case, spaces as '-'), when that is a valid
	// group name. Roles are never automatic.
	AutoGroups bool `yaml:"auto_groups"`
	// MaxResults bounds a list's page (default 200).
	MaxResults int `yaml:"max_results"`
}

// SCIMGroupMap is what one SCIM group gives its members.
type SCIMGroupMap struct {
	Group string `yaml:"group"`
	Role  string `yaml:"role"`
}

// Defaults fills the unset fields of a configured LDAP source.
func (c *LDAPConfig) Defaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Name, "ldap")
	def(&c.Flavor, FlavorOpenLDAP)
	def(&c.GroupBase, c.UserBase)
	def(&c.Nested, NestedAuto)
	a := &c.Attributes
	if c.Flavor == FlavorAD {
		def(&c.UserFilter, "(&(objectCategory=person)(objectClass=user))")
		def(&c.GroupFilter, "(objectClass=group)")
		def(&a.ID, "objectGUID")
		def(&a.Username, "sAMAccountName")
		def(&a.DisplayName, "displayName")
		def(&a.Disabled, "userAccountControl")
	} else {
		def(&c.UserFilter, "(objectClass=inetOrgPerson)")
		def(&c.GroupFilter, "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))")
		def(&a.ID, "entryUUID")
		def(&a.Username, "uid")
		def(&a.DisplayName, "cn")
	}
	def(&a.Email, "mail")
	def(&a.Member, "member")
	if c.PageSize == 0 {
		c.PageSize = 500
	}
	for d, v := range map[*Duration]time.Duration{&c.Interval: 15 * time.Minute, &c.FullInterval: 6 * time.Hour, &c.Timeout: 30 * time.Second} {
		if d.Duration == 0 {
			d.Duration = v
		}
	}
	if c.MaxDisablePercent == 0 {
		c.MaxDisablePercent = 10
	}
	if c.MinDisable == 0 {
		c.MinDisable = 10
	}
}

// Defaults fills every unset field (the LDAP settings by flavour, also
// while no URL turns the sync on).
func (c *Config) Defaults() {
	c.LDAP.Defaults()
	if c.SCIM.MaxResults == 0 {
		c.SCIM.MaxResults = 200
	}
}

// Validate fills the defaults and reports every problem with c, each
// saying what to change.
func (c *Config) Validate() error {
	c.Defaults()
	var errs []error
	switch {
	case c.LDAPEnabled():
		errs = append(errs, c.LDAP.validate()...)
	case c.LDAP.UserBase != "" || c.LDAP.BindDN != "" || len(c.LDAP.Groups)+len(c.LDAP.Roles) > 0:
		errs = append(errs, errors.New("ldap.url: empty, so the other ldap settings do nothing; give the directory's URL (ldaps://host:636) or remove them"))
	}
	errs = append(errs, c.SCIM.validate()...)
	return errors.Join(errs...)
}

func (c *LDAPConfig) validate() []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("ldap."+format, a...)) }
	if !core.ValidSourceName(c.Name) {
		bad("name: %q must be 1-32 lower-case letters, digits, '-' or '_', not starting with scim", c.Name)
	}
	if c.Flavor != FlavorOpenLDAP && c.Flavor != FlavorAD {
		bad("flavor: %q must be openldap or ad", c.Flavor)
	}
	errs = append(errs, c.validateConn()...)
	for field, dn := range map[string]string{"user_base": c.UserBase, "group_base": c.GroupBase} {
		if _, err := ldap.ParseDN(dn); err != nil || dn == "" {
			bad("%s: %q is not a DN like ou=people,dc=example,dc=org", field, dn)
		}
	}
	for field, f := range map[string]string{"user_filter": c.UserFilter, "group_filter": c.GroupFilter} {
		if _, err := ldap.CompileFilter(f); err != nil {
			bad("%s: %q is not an LDAP filter: %v", field, f, err)
		}
	}
	errs = append(errs, c.validateMaps()...)
	if !slices.Contains([]string{NestedAuto, NestedInChain, NestedResolve, NestedOff}, c.Nested) {
		bad("nested: %q must be auto, in_chain, resolve or off", c.Nested)
	}
	if c.PageSize < 1 || c.PageSize > 5000 {
		bad("page_size: %d must be between 1 and 5000", c.PageSize)
	}
	if c.Interval.Duration < time.Minute || c.FullInterval.Duration < c.Interval.Duration {
		bad("interval: %s must be at least 1m, and full_interval (%s) at least the interval", c.Interval, c.FullInterval)
	}
	if c.Timeout.Duration < time.Second || c.Timeout.Duration > 10*time.Minute {
		bad("timeout: %s must be between 1s and 10m", c.Timeout)
	}
	if c.MaxDisablePercent < 1 || c.MaxDisablePercent > 100 || c.MinDisable < 0 {
		bad("max_disable_percent: %d must be between 1 and 100, and min_disable (%d) not negative", c.MaxDisablePercent, c.MinDisable)
	}
	return errs
}

// validateConn checks the URL, TLS and bind settings.
func (c *LDAPConfig) validateConn() []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("ldap."+format, a...)) }
	u, err := url.Parse(c.URL)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "ldap" && u.Scheme != "ldaps"):
		bad("url: %q must be ldaps://host:636 or ldap://host:389", c.URL)
	case u.Scheme == "ldaps" && c.StartTLS:
		bad("start_tls: StartTLS is for ldap:// URLs; %s is TLS already", c.URL)
	case u.Scheme == "ldap" && !c.StartTLS && !c.AllowPlaintext:
		bad("url: %s sends the bind password in the clear; use ldaps://, or set start_tls: true", c.URL)
	}
	if c.CAFile != "" {
		if _, err := os.Stat(c.CAFile); err != nil {
			bad("ca_file: %v", err)
		}
	}
	if (c.BindDN == "") != (c.BindPasswordFile == "") {
		bad("bind_dn and bind_password_file go together (both empty binds anonymously)")
	}
	if c.BindDN != "" {
		if _, err := ldap.ParseDN(c.BindDN); err != nil {
			bad("bind_dn: %q is not a DN: %v", c.BindDN, err)
		}
	}
	if c.BindPasswordFile != "" {
		if _, err := readPassword(c.BindPasswordFile); err != nil {
			bad("bind_password_file: %v", err)
		}
	}
	return errs
}

// validateMaps checks the group and role maps.
func (c *LDAPConfig) validateMaps() []error {
	var errs []error
	for dn, g := range c.Groups {
		if _, err := ldap.ParseDN(dn); err != nil {
			errs = append(errs, fmt.Errorf("ldap.groups: %q is not a group DN: %v", dn, err))
		}
		if !validGroup(g) {
			errs = append(errs, fmt.Errorf("ldap.groups: %q is not a keyfleet group name: use 1-64 lower-case letters, digits and . _ -", g))
		}
	}
	for dn, r := range c.Roles {
		if _, err := ldap.ParseDN(dn); err != nil {
			errs = append(errs, fmt.Errorf("ldap.roles: %q is not a group DN: %v", dn, err))
		}
		if !personRole(r) {
			errs = append(errs, fmt.Errorf("ldap.roles: %q is not a role people hold; roles are admin, security_officer, helpdesk, enroller, auditor", r))
		}
	}
	return errs
}

func (c *SCIMConfig) validate() []error {
	var errs []error
	for name, m := range c.Groups {
		if m.Group == "" && m.Role == "" {
			errs = append(errs, fmt.Errorf("scim.groups: %q maps to nothing; give a group, a role or both", name))
		}
		if m.Group != "" && !validGroup(m.Group) {
			errs = append(errs, fmt.Errorf("scim.groups: %q: %q is not a keyfleet group name", name, m.Group))
		}
		if m.Role != "" && !personRole(m.Role) {
			errs = append(errs, fmt.Errorf("scim.groups: %q: %q is not a role people hold", name, m.Role))
		}
	}
	if c.MaxResults < 1 || c.MaxResults > 1000 {
		errs = append(errs, fmt.Errorf("scim.max_results: %d must be between 1 and 1000", c.MaxResults))
	}
	return errs
}

func personRole(r string) bool {
	return core.ValidRole(r) && !core.ServiceAccountRole(r) && r != api.RoleUser
}

func validGroup(g string) bool {
	if g == "" || len(g) > 64 || !(g[0] >= 'a' && g[0] <= 'z' || g[0] >= '0' && g[0] <= '9') {
		return false
	}
	return strings.Trim(g, "abcdefghijklmnopqrstuvwxyz0123456789._-") == ""
}

// readPassword reads a bind password file: its first line, which must be
// there, from a file others cannot read.
func readPassword(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s can be read by others (mode %s); chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	pw = strings.TrimRight(pw, "\r")
	if pw == "" {
		return "", fmt.Errorf("%s is empty; put the bind password on its first line", path)
	}
	return pw, nil
}
