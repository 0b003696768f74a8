package daemon

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/keyfleet/keyfleet/daemon/directory"
	"github.com/keyfleet/keyfleet/daemon/events"
	"github.com/keyfleet/keyfleet/daemon/push"
	"github.com/keyfleet/keyfleet/daemon/radius"
	"github.com/keyfleet/keyfleet/plugins/host"
)

// Config is keyfleetd's configuration. It comes from a YAML file, then the
// environment (KEYFLEET_*), then flags; later sources win. The zero value
// of every field but DataDir is a safe default (see Defaults).
type Config struct {
	// DataDir holds the store, keys, TLS material and the default config
	// file (keyfleetd.yaml). Required.
	DataDir string `yaml:"data"`
	// Listen is the HTTPS address (default 127.0.0.1:8443).
	Listen string `yaml:"listen"`
	// TLSCert and TLSKey are PEM files; default the self-signed pair that
	// init made under DataDir/tls.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	Log     struct {
		Format string `yaml:"format"` // json (default) or text
		Level  string `yaml:"level"`  // debug, info (default), warn, error
	} `yaml:"log"`
	// ApprovalTTL is how long a two-person request waits (default 24h).
	ApprovalTTL Duration `yaml:"approval_ttl"`
	// EnrolmentTTL is an enrolment's default lifetime (default 1h).
	EnrolmentTTL Duration `yaml:"enrolment_ttl"`
	// Tokens bounds a person's own tokens: PersonTTL when they name no
	// lifetime (default 12h), MaxPersonTTL the longest they may ask for
	// (default 168h). Service accounts' tokens are not bounded; one that
	// never expires is flagged by the compliance report.
	Tokens struct {
		PersonTTL    Duration `yaml:"person_ttl"`
		MaxPersonTTL Duration `yaml:"max_person_ttl"`
	} `yaml:"tokens"`
	// Approvals.IndependenceWindow is how long after one person acted on
	// another's account (made it, asked a role for it, recovered it,
	// enrolled a key or issued a pass for it) the two may not decide each
	// other's requests (default 168h; docs/security.md).
	Approvals struct {
		IndependenceWindow Duration `yaml:"independence_window"`
	} `yaml:"approvals"`
	// Proofs.TTL is how long a proof's challenge may be answered
	// (default 2m, 10s to 10m).
	Proofs struct {
		TTL Duration `yaml:"ttl"`
	} `yaml:"proofs"`
	// MaxBodyBytes limits API request bodies (default 1 MiB).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// TrustedProxies are the reverse proxies whose X-Forwarded-For and
	// Forwarded headers name the client (daemon/clientaddr). Default none:
	// the client is the TCP peer.
	TrustedProxies []Prefix `yaml:"trusted_proxies"`
	// ShutdownTimeout bounds how long in-flight requests may finish after
	// SIGINT or SIGTERM (default 15s).
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// Attestation configures which attestation roots keyfleetd trusts
	// besides the built-in Yubico set.
	Attestation struct {
		// PIVRoots are PEM files of extra PIV attestation roots (a test
		// CA, a virtual key's CA from 'keyfleet-vkey ca export'). Never
		// trusted unless listed here.
		PIVRoots []string `yaml:"piv_roots"`
		// FIDO2Roots are PEM files of extra FIDO attestation roots.
		FIDO2Roots []string `yaml:"fido2_roots"`
	} `yaml:"attestation"`
	// FIDO2 configures the built-in fido2 kind (security keys, passkeys).
	FIDO2 struct {
		Disabled bool `yaml:"disabled"`
		// RPID is the WebAuthn relying party: the host people reach
		// keyfleet at, or a registrable suffix (default: web.origin's host).
		RPID   string `yaml:"rp_id"`
		RPName string `yaml:"rp_name"`
		// Origins accepted in clientDataJSON (default: web.origin).
		Origins               []string `yaml:"origins"`
		RequireAttestation    bool     `yaml:"require_attestation"`
		UserVerification      string   `yaml:"user_verification"` // required, preferred (default), discouraged
		EnterpriseAttestation bool     `yaml:"enterprise_attestation"`
	} `yaml:"fido2"`
	// Web configures the dashboard and self-service pages.
	Web struct {
		Disabled bool `yaml:"disabled"`
		// Origin is the exact origin browsers use (default
		// https://localhost:<listen port>).
		Origin string `yaml:"origin"`
		// Insecure drops the Secure cookie flag: only for tests on
		// http://localhost.
		Insecure bool `yaml:"insecure"`
	} `yaml:"web"`
	// Verify tunes verification for applications (POST /v1/verify…).
	Verify struct {
		// MaxFailures wrong answers in a row lock a factor, and as many
		// across a user's factors lock the user (default 5).
		MaxFailures int `yaml:"max_failures"`
		// Lockout is how long a lock lasts unless an admin clears it
		// sooner (default 15m).
		Lockout Duration `yaml:"lockout"`
		// TTL is how long a begun verification may be finished (default 5m).
		TTL Duration `yaml:"ttl"`
	} `yaml:"verify"`
	// BreakGlass bounds emergency sessions (docs/recovery.md).
	BreakGlass struct {
		// MaxSession is the longest a break-glass session may last
		// (default 4h, at most 24h).
		MaxSession Duration `yaml:"max_session"`
	} `yaml:"breakglass"`
	// Events configures the event sinks (docs/events.md).
	Events events.Config `yaml:"events"`
	// Plugins are the factor plugins to load, each pinned by SHA-256
	// (docs/plugins.md). The zero value loads none.
	Plugins host.Config `yaml:"plugins"`
	// Push tunes the push factor's delivery: rate limits, the
	// companions' channels and relays (docs/push.md).
	Push push.Config `yaml:"push"`
	// Directory brings users in from LDAP / Active Directory and serves
	// SCIM 2.0 (docs/directory.md). The zero value does neither.
	Directory directory.Config `yaml:"directory"`
	Store     struct {
		// Backend is badger (default: the store in DATA/store) or
		// postgres (several keyfleetd on one database; backend.go).
		Backend  string         `yaml:"backend"`
		Postgres PostgresConfig `yaml:"postgres"`
		// Memory sizes Badger's memtables and caches and the Go memory
		// limit (memory.go; default 256MiB). The three settings below,
		// when set, win over their share of it.
		Memory       Size     `yaml:"memory"`
		BlockCacheMB int64    `yaml:"block_cache_mb"`
		IndexCacheMB int64    `yaml:"index_cache_mb"`
		KeyRotation  Duration `yaml:"key_rotation"`
		// Space settings: the free-space reserve and the memtable size
		// (faults.go, docs/operations.md).
		StoreSpace `yaml:",inline"`
	} `yaml:"store"`
	// Audit configures the signed audit checkpoints (faults.go).
	Audit AuditConfig `yaml:"audit"`
	// Radius is the RADIUS listener for VPNs and Wi-Fi (docs/radius.md);
	// off unless enabled.
	Radius radius.Config `yaml:"radius"`
	// FirstLogin lets the login surfaces (RADIUS, PAM) answer a user who
	// must enrol and has no factor with an access pass (docs/radius.md).
	FirstLogin FirstLoginConfig `yaml:"first_login"`
}

// Duration is a time.Duration written as "15m" in YAML and the environment.
type Duration struct{ time.Duration }

// UnmarshalYAML reads "15m", "24h".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 30s, 15m or 24h", n.Line, n.Value)
	}
	d.Duration = v
	return nil
}

// MarshalYAML writes the duration as text.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Prefix is an address range, written "10.0.0.0/8" or as one address
// ("192.0.2.7", "2001:db8::7") in YAML and the environment.
type Prefix struct{ netip.Prefix }

// UnmarshalYAML reads a range, naming the line of a bad one.
func (p *Prefix) UnmarshalYAML(n *yaml.Node) error {
	v, err := parsePrefix(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: trusted_proxies: %w", n.Line, err)
	}
	*p = v
	return nil
}

// MarshalYAML writes the range as text.
func (p Prefix) MarshalYAML() (any, error) { return p.String(), nil }

// parsePrefix reads a range or a single address. It refuses a range with
// host bits set ("10.0.0.1/8" is either 10.0.0.0/8 or 10.0.0.1/32; guessing
// could trust far more than meant) and one that trusts every address.
func parsePrefix(s string) (Prefix, error) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return Prefix{netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())}, nil
	}
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		return Prefix{}, fmt.Errorf("%q is not an address or a range like 10.0.0.0/8 or 2001:db8::/32", s)
	case p != p.Masked():
		return Prefix{}, fmt.Errorf("%q has bits set past its length: write %s for the range, or %s for the one address",
			s, p.Masked(), netip.PrefixFrom(p.Addr(), p.Addr().BitLen()))
	case p.Bits() == 0:
		return Prefix{}, fmt.Errorf("%q trusts every address, so anyone could choose the address they are audited and rate limited under; list your proxies", s)
	}
	return Prefix{p}, nil
}

// trustedProxies are the configured proxy ranges.
func (c *Config) trustedProxies() []netip.Prefix {
	out := make([]netip.Prefix, len(c.TrustedProxies))
	for i, p := range c.TrustedProxies {
		out[i] = p.Prefix
	}
	return out
}

// Defaults fills every unset field.
func (c *Config) Defaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	defDur := func(d *Duration, v time.Duration) {
		if d.Duration == 0 {
			d.Duration = v
		}
	}
	def(&c.Listen, "127.0.0.1:8443")
	def(&c.TLSCert, filepath.Join(c.DataDir, "tls", "cert.pem"))
	def(&c.TLSKey, filepath.Join(c.DataDir, "tls", "key.pem"))
	def(&c.Log.Format, "json")
	def(&c.Log.Level, "info")
	defDur(&c.ApprovalTTL, 24*time.Hour)
	defDur(&c.EnrolmentTTL, time.Hour)
	defDur(&c.Tokens.PersonTTL, 12*time.Hour)
	defDur(&c.Tokens.MaxPersonTTL, 7*24*time.Hour)
	defDur(&c.Approvals.IndependenceWindow, 7*24*time.Hour)
	defDur(&c.Proofs.TTL, 2*time.Minute)
	defDur(&c.ShutdownTimeout, 15*time.Second)
	defDur(&c.Store.KeyRotation, 10*24*time.Hour)
	defDur(&c.BreakGlass.MaxSession, 4*time.Hour)
	defDur(&c.Verify.Lockout, 15*time.Minute)
	defDur(&c.Verify.TTL, 5*time.Minute)
	if c.Verify.MaxFailures == 0 {
		c.Verify.MaxFailures = 5
	}
	c.Push.Defaults()
	if c.Web.Origin == "" {
		if _, port, err := net.SplitHostPort(c.Listen); err == nil {
			c.Web.Origin = "https://localhost:" + port
		}
	}
	if u, err := url.Parse(c.Web.Origin); err == nil && c.FIDO2.RPID == "" {
		c.FIDO2.RPID = u.Hostname()
	}
	if len(c.FIDO2.Origins) == 0 && c.Web.Origin != "" {
		c.FIDO2.Origins = []string{c.Web.Origin}
	}
	def(&c.FIDO2.RPName, "keyfleet")
	def(&c.FIDO2.UserVerification, "preferred")
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
	def(&c.Store.Backend, BackendBadger)
	c.memoryDefaults()
	c.Store.StoreSpace.defaults()
	c.Audit.defaults(c.DataDir)
	c.Directory.Defaults()
	c.loginDefaults()
}

// Validate reports every problem with c, each saying what to change.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.DataDir == "" {
		bad("data: no data folder given; pass --data DIR (made by 'keyfleetd init --data DIR')")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen: %q is not host:port, like 127.0.0.1:8443", c.Listen)
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		bad("log.format: %q must be json or text", c.Log.Format)
	}
	if _, ok := logLevels[c.Log.Level]; !ok {
		bad("log.level: %q must be debug, info, warn or error", c.Log.Level)
	}
	if c.ApprovalTTL.Duration < time.Minute || c.ApprovalTTL.Duration > 30*24*time.Hour {
		bad("approval_ttl: %s must be between 1m and 720h", c.ApprovalTTL)
	}
	if c.EnrolmentTTL.Duration < time.Minute || c.EnrolmentTTL.Duration > 7*24*time.Hour {
		bad("enrolment_ttl: %s must be between 1m and 168h", c.EnrolmentTTL)
	}
	if c.Tokens.MaxPersonTTL.Duration < time.Minute || c.Tokens.MaxPersonTTL.Duration > 90*24*time.Hour {
		bad("tokens.max_person_ttl: %s must be between 1m and 2160h", c.Tokens.MaxPersonTTL)
	}
	if c.Tokens.PersonTTL.Duration < time.Minute || c.Tokens.PersonTTL.Duration > c.Tokens.MaxPersonTTL.Duration {
		bad("tokens.person_ttl: %s must be between 1m and tokens.max_person_ttl (%s)", c.Tokens.PersonTTL, c.Tokens.MaxPersonTTL)
	}
	if c.Approvals.IndependenceWindow.Duration < 0 || c.Approvals.IndependenceWindow.Duration > 365*24*time.Hour {
		bad("approvals.independence_window: %s must be between 0s and 8760h", c.Approvals.IndependenceWindow)
	}
	if c.Proofs.TTL.Duration < 10*time.Second || c.Proofs.TTL.Duration > 10*time.Minute {
		bad("proofs.ttl: %s must be between 10s and 10m", c.Proofs.TTL)
	}
	if c.MaxBodyBytes < 1024 || c.MaxBodyBytes > 64<<20 {
		bad("max_body_bytes: %d must be between 1024 and 67108864", c.MaxBodyBytes)
	}
	if c.Store.BlockCacheMB < 0 || c.Store.IndexCacheMB < 0 {
		bad("store: cache sizes cannot be negative")
	}
	errs = append(errs, c.memoryErrors()...)
	if err := c.Plugins.Validate(); err != nil {
		errs = append(errs, err) // each says plugins: …
	}
	if err := c.Push.Validate(); err != nil {
		errs = append(errs, err) // each says push.…
	}
	if err := c.Directory.Validate(); err != nil {
		bad("directory: %v", err)
	}
	if n := c.Verify.MaxFailures; n < 1 || n > 100 {
		bad("verify.max_failures: %d must be between 1 and 100", n)
	}
	if d := c.Verify.Lockout.Duration; d < time.Second || d > 7*24*time.Hour {
		bad("verify.lockout: %s must be between 1s and 168h", c.Verify.Lockout)
	}
	if d := c.Verify.TTL.Duration; d < 10*time.Second || d > time.Hour {
		bad("verify.ttl: %s must be between 10s and 1h", c.Verify.TTL)
	}
	if d := c.BreakGlass.MaxSession.Duration; d < time.Minute || d > 24*time.Hour {
		bad("breakglass.max_session: %s must be between 1m and 24h", c.BreakGlass.MaxSession)
	}
	for _, p := range c.TrustedProxies {
		if _, err := parsePrefix(p.String()); err != nil {
			bad("trusted_proxies: %v", err)
		}
	}
	if c.Store.KeyRotation.Duration < time.Hour {
		bad("store.key_rotation: %s must be at least 1h", c.Store.KeyRotation)
	}
	errs = append(errs, c.validateBackend()...)
	errs = append(errs, c.Store.StoreSpace.validate()...)
	errs = append(errs, c.Audit.validate(c.DataDir)...)
	errs = append(errs, c.validateLogin()...)
	return errors.Join(errs...)
}

// LoadFile reads a YAML config file into c. Unknown keys and values of the
// wrong kind are errors (ConfigErrors, with line numbers), so a misspelt
// setting is not silently ignored.
func (c *Config) LoadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	if _, errs := checkStructure(path, b); errs != nil {
		return errs
	}
	if err := decodeStrict(b, c); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// envVars maps each environment variable to the setting it overrides.
var envVars = map[string]func(c *Config, v string) error{
	"KEYFLEET_DATA":          func(c *Config, v string) error { c.DataDir = v; return nil },
	"KEYFLEET_LISTEN":        func(c *Config, v string) error { c.Listen = v; return nil },
	"KEYFLEET_TLS_CERT":      func(c *Config, v string) error { c.TLSCert = v; return nil },
	"KEYFLEET_TLS_KEY":       func(c *Config, v string) error { c.TLSKey = v; return nil },
	"KEYFLEET_LOG_FORMAT":    func(c *Config, v string) error { c.Log.Format = v; return nil },
	"KEYFLEET_LOG_LEVEL":     func(c *Config, v string) error { c.Log.Level = v; return nil },
	"KEYFLEET_APPROVAL_TTL":  durEnv(func(c *Config) *Duration { return &c.ApprovalTTL }),
	"KEYFLEET_ENROLMENT_TTL": durEnv(func(c *Config) *Duration { return &c.EnrolmentTTL }),
	"KEYFLEET_STORE_BACKEND": func(c *Config, v string) error { c.Store.Backend = v; return nil },
	"KEYFLEET_STORE_MEMORY": func(c *Config, v string) error {
		s, err := ParseSize(v)
		c.Store.Memory = s
		return err
	},
	"KEYFLEET_STORE_DSN": func(c *Config, v string) error { c.Store.Postgres.DSN = v; return nil },
	"KEYFLEET_PIV_ROOTS": func(c *Config, v string) error {
		c.Attestation.PIVRoots = strings.Split(v, ",")
		return nil
	},
	"KEYFLEET_TRUSTED_PROXIES": func(c *Config, v string) error {
		c.TrustedProxies = nil
		for _, s := range strings.Split(v, ",") {
			p, err := parsePrefix(s)
			if err != nil {
				return err
			}
			c.TrustedProxies = append(c.TrustedProxies, p)
		}
		return nil
	},
	"KEYFLEET_MAX_BODY_BYTES": func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		c.MaxBodyBytes = n
		return err
	},
}

func durEnv(field func(*Config) *Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		field(c).Duration = d
		return err
	}
}

// LoadEnv applies KEYFLEET_* variables from getenv.
func (c *Config) LoadEnv(getenv func(string) string) error {
	var errs []error
	for name, set := range envVars {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			if err := set(c, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
			}
		}
	}
	return errors.Join(errs...)
}
