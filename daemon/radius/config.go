package radius

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// First factors: what User-Password holds besides the code.
const (
	// FirstFactorNone: User-Password is the one-time code alone.
	FirstFactorNone = "none"
	// FirstFactorLDAP: User-Password is the directory password followed
	// by the code; the password is checked by binding to LDAP as the user.
	FirstFactorLDAP = "ldap"
)

// Duration is a time.Duration written as "2m" in YAML.
type Duration struct{ time.Duration }

// UnmarshalYAML reads "30s", "2m".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 5s or 2m", n.Line, n.Value)
	}
	d.Duration = v
	return nil
}

// MarshalYAML writes the duration as text.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Config is the radius section of keyfleetd.yaml. The zero value is a
// listener that is off; Defaults fills what an enabled one leaves unset.
type Config struct {
	Enabled bool `yaml:"enabled"`
	// Listen is the UDP address (default 127.0.0.1:1812).
	Listen string `yaml:"listen"`
	// Clients are the NASes (VPN gateways, Wi-Fi controllers, a
	// FreeRADIUS in front) allowed to ask, each with its own secret.
	Clients []ClientConfig `yaml:"clients"`
	// FirstFactor is none (default: the code alone) or ldap (password
	// then code, the password checked against LDAP).
	FirstFactor string     `yaml:"first_factor"`
	LDAP        LDAPConfig `yaml:"ldap"`
	// CodeLength is how many digits at the end of password+code are the
	// code (default 6), unless Separator is set: then the code follows
	// its last occurrence ("secret,123456").
	CodeLength int    `yaml:"code_length"`
	Separator  string `yaml:"separator"`
	// Kinds narrows the factor kinds a code may answer for (default:
	// every kind answered with a code: totp, hotp, …).
	Kinds []string `yaml:"kinds"`
	// ChallengeTTL is how long an Access-Challenge may be answered
	// (default 2m).
	ChallengeTTL Duration   `yaml:"challenge_ttl"`
	RateLimit    RateConfig `yaml:"rate_limit"`
	// MaxInFlight bounds the requests worked on at once; more are
	// dropped, and the NAS retries (default 512).
	MaxInFlight int `yaml:"max_in_flight"`
}

// ClientConfig is one RADIUS client (NAS).
type ClientConfig struct {
	// Name identifies the client in logs, metrics and audit records.
	Name string `yaml:"name"`
	// Networks are the source addresses it sends from: CIDR prefixes or
	// single addresses. No two clients may overlap.
	Networks []string `yaml:"networks"`
	// SecretFile holds the shared secret (at least 16 characters; one
	// line); it must not be readable by everyone.
	SecretFile string `yaml:"secret_file"`
}

// LDAPConfig says how to check a password by binding as the user.
type LDAPConfig struct {
	// URL is ldap://host[:port] or ldaps://host[:port].
	URL string `yaml:"url"`
	// BindDN is the DN (or, for Active Directory, the user principal
	// name) to bind as, with {user} where the user name goes:
	// "uid={user},ou=people,dc=example,dc=org" or "{user}@example.org".
	BindDN string `yaml:"bind_dn"`
	// StartTLS upgrades an ldap:// connection before binding.
	StartTLS bool `yaml:"start_tls"`
	// CAFile is a PEM bundle to trust for the server's certificate
	// (default: the system roots).
	CAFile string `yaml:"ca_file"`
	// Timeout bounds connecting and binding (default 5s).
	Timeout Duration `yaml:"timeout"`
}

// RateConfig bounds requests per client and per user name (token
// buckets: a rate per second and a burst).
type RateConfig struct {
	PerClient   float64 `yaml:"per_client"`   // default 1000/s
	ClientBurst int     `yaml:"client_burst"` // default 2000
	PerUser     float64 `yaml:"per_user"`     // default 0.2/s (12 a minute)
	UserBurst   int     `yaml:"user_burst"`   // default 6
}

// Defaults fills every unset field of an enabled listener.
func (c *Config) Defaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:1812"
	}
	if c.FirstFactor == "" {
		c.FirstFactor = FirstFactorNone
	}
	if c.CodeLength == 0 {
		c.CodeLength = 6
	}
	if c.ChallengeTTL.Duration == 0 {
		c.ChallengeTTL.Duration = 2 * time.Minute
	}
	if c.LDAP.Timeout.Duration == 0 {
		c.LDAP.Timeout.Duration = 5 * time.Second
	}
	r := &c.RateLimit
	if r.PerClient == 0 {
		r.PerClient = 1000
	}
	if r.ClientBurst == 0 {
		r.ClientBurst = 2000
	}
	if r.PerUser == 0 {
		r.PerUser = 0.2
	}
	if r.UserBurst == 0 {
		r.UserBurst = 6
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 512
	}
}

var clientNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Validate reports every problem with an enabled listener's settings,
// each saying what to change (call Defaults first). It does not read the
// secret files; New does.
func (c *Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("radius."+format, a...)) }
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen: %q is not host:port, like 0.0.0.0:1812", c.Listen)
	}
	if len(c.Clients) == 0 {
		bad("clients: none listed; add each NAS with its name, networks and secret_file")
	}
	errs = append(errs, c.validateClients()...)
	switch c.FirstFactor {
	case FirstFactorNone:
	case FirstFactorLDAP:
		errs = append(errs, c.LDAP.validate()...)
	default:
		bad("first_factor: %q must be none or ldap", c.FirstFactor)
	}
	if c.CodeLength < 4 || c.CodeLength > 10 {
		bad("code_length: %d must be from 4 to 10", c.CodeLength)
	}
	if d := c.ChallengeTTL.Duration; d < 10*time.Second || d > 10*time.Minute {
		bad("challenge_ttl: %s must be from 10s to 10m", c.ChallengeTTL)
	}
	r := c.RateLimit
	if r.PerClient <= 0 || r.ClientBurst < 1 || r.PerUser <= 0 || r.UserBurst < 1 {
		bad("rate_limit: rates must be above 0 and bursts at least 1")
	}
	if c.MaxInFlight < 1 || c.MaxInFlight > 65536 {
		bad("max_in_flight: %d must be from 1 to 65536", c.MaxInFlight)
	}
	return errors.Join(errs...)
}

func (c *Config) validateClients() []error {
	var errs []error
	names := map[string]bool{}
	var seen []struct {
		prefix netip.Prefix
		name   string
	}
	for i, cl := range c.Clients {
		where := fmt.Sprintf("radius.clients[%d]", i)
		if !clientNameRE.MatchString(cl.Name) || names[cl.Name] {
			errs = append(errs, fmt.Errorf("%s.name: %q must be unique, 1 to 64 of letters, digits, '.', '_' and '-'", where, cl.Name))
		}
		names[cl.Name] = true
		if cl.SecretFile == "" {
			errs = append(errs, fmt.Errorf("%s.secret_file: required (a file holding the shared secret, at least 16 characters)", where))
		}
		if len(cl.Networks) == 0 {
			errs = append(errs, fmt.Errorf("%s.networks: list the addresses the NAS sends from (10.0.0.5 or 10.0.0.0/24)", where))
		}
		for _, n := range cl.Networks {
			p, err := parseNetwork(n)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.networks: %w", where, err))
				continue
			}
			for _, s := range seen {
				if s.prefix.Overlaps(p) {
					errs = append(errs, fmt.Errorf("%s.networks: %s overlaps %s of client %q; a source address must name one client", where, n, s.prefix, s.name))
				}
			}
			seen = append(seen, struct {
				prefix netip.Prefix
				name   string
			}{p, cl.Name})
		}
	}
	return errs
}

// parseNetwork reads "10.0.0.0/24" or "10.0.0.5".
func parseNetwork(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or a CIDR prefix", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or a CIDR prefix", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (l LDAPConfig) validate() []error {
	var errs []error
	u, err := url.Parse(l.URL)
	if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" {
		errs = append(errs, fmt.Errorf("radius.ldap.url: %q must be ldap://host[:port] or ldaps://host[:port]", l.URL))
	} else if u.Scheme == "ldap" && !l.StartTLS && !loopbackHost(u.Hostname()) {
		errs = append(errs, fmt.Errorf("radius.ldap.url: %q would send passwords in clear; use ldaps:// or start_tls: true", l.URL))
	}
	if strings.Count(l.BindDN, "{user}") != 1 {
		errs = append(errs, fmt.Errorf("radius.ldap.bind_dn: %q must hold {user} once, like uid={user},ou=people,dc=example,dc=org", l.BindDN))
	}
	if d := l.Timeout.Duration; d < 100*time.Millisecond || d > time.Minute {
		errs = append(errs, fmt.Errorf("radius.ldap.timeout: %s must be from 100ms to 1m", l.Timeout))
	}
	return errs
}

func loopbackHost(h string) bool {
	a, err := netip.ParseAddr(h)
	return h == "localhost" || (err == nil && a.IsLoopback())
}

// readSecret reads a client's shared secret: one line of at least 16
// characters, in a file not readable by everyone.
func readSecret(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o004 != 0 {
		return nil, fmt.Errorf("%s is readable by everyone; chmod o-r it (the secret is a password)", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	secret := strings.TrimRight(string(b), "\r\n")
	if strings.ContainsAny(secret, "\r\n") {
		return nil, fmt.Errorf("%s holds more than one line; keep only the secret", path)
	}
	if len(secret) < 16 {
		return nil, fmt.Errorf("%s holds a secret of %d characters; use at least 16 (openssl rand -base64 24)", path, len(secret))
	}
	return []byte(secret), nil
}
