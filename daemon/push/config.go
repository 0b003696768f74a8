package push

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written as "10m" in YAML.
type Duration struct{ time.Duration }

// UnmarshalYAML reads "30s", "10m".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 30s or 10m", n.Line, n.Value)
	}
	d.Duration = v
	return nil
}

// MarshalYAML writes the duration as text.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Config is the push section of keyfleetd's configuration. Its zero
// value is the default: pushes through the companions' channels only.
type Config struct {
	// MaxPerUser pushes may go to one user in Period (default 5 in 10m);
	// more are refused with 429 until the oldest leaves the window. With
	// Options.Shared the count is a token bucket every keyfleetd shares:
	// MaxPerUser at most, one more every Period.
	MaxPerUser int      `yaml:"max_per_user"`
	Period     Duration `yaml:"period"`
	// KeepAlive is how often an idle stream gets a comment line (default
	// 20s), so that proxies keep it open and dead companions are found.
	KeepAlive Duration `yaml:"keep_alive"`
	// ClockSkew is how far a companion's clock may be from keyfleetd's
	// in its signed requests (default 2m).
	ClockSkew Duration `yaml:"clock_skew"`
	// StreamsPerDevice bounds the open streams of one companion (default
	// 4); a new one beyond ends the oldest.
	StreamsPerDevice int `yaml:"streams_per_device"`
	// MaxPending bounds the pushes waiting at once (default 100,000).
	MaxPending int `yaml:"max_pending"`
	// Gateways are relays that also get a notice of each push.
	Gateways []GatewayConfig `yaml:"gateways"`
}

// GatewayConfig is one relay.
type GatewayConfig struct {
	// Name appears in logs and metrics; Type is webhook or ntfy.
	Name string `yaml:"name"`
	Type string `yaml:"type"`
	// URL receives the notice: the webhook's URL, or the ntfy server's
	// base URL (the topic is TopicPrefix and the factor's id).
	URL string `yaml:"url"`
	// Secret (or SecretFile) keys a webhook's HMAC-SHA256 signature
	// (at least 16 bytes).
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
	// Token (or TokenFile) is an ntfy access token, sent as a bearer
	// token; TopicPrefix starts every topic (default "keyfleet-").
	Token       string `yaml:"token"`
	TokenFile   string `yaml:"token_file"`
	TopicPrefix string `yaml:"topic_prefix"`
	// Click is a URL an ntfy notification opens (the web companion).
	Click string `yaml:"click"`
	// Timeout bounds one delivery (default 5s). AllowHTTP permits
	// http:// (loopback tests only).
	Timeout   Duration `yaml:"timeout"`
	AllowHTTP bool     `yaml:"allow_http"`
}

// String hides secrets.
func (g GatewayConfig) String() string { return fmt.Sprintf("%s gateway %s", g.Type, g.Name) }

// Gateway types.
const (
	TypeWebhook = "webhook"
	TypeNtfy    = "ntfy"
)

// Defaults fills the zero fields.
func (c *Config) Defaults() {
	set := func(d *Duration, v time.Duration) {
		if d.Duration == 0 {
			d.Duration = v
		}
	}
	if c.MaxPerUser == 0 {
		c.MaxPerUser = 5
	}
	set(&c.Period, 10*time.Minute)
	set(&c.KeepAlive, 20*time.Second)
	set(&c.ClockSkew, 2*time.Minute)
	if c.StreamsPerDevice == 0 {
		c.StreamsPerDevice = 4
	}
	if c.MaxPending == 0 {
		c.MaxPending = 100_000
	}
	for i := range c.Gateways {
		set(&c.Gateways[i].Timeout, 5*time.Second)
		if c.Gateways[i].Type == TypeNtfy && c.Gateways[i].TopicPrefix == "" {
			c.Gateways[i].TopicPrefix = "keyfleet-"
		}
	}
}

// Validate reports every problem at once, each naming its setting.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("push."+format, a...)) }
	if c.MaxPerUser < 1 || c.MaxPerUser > 1000 {
		bad("max_per_user: %d must be from 1 to 1000", c.MaxPerUser)
	}
	if c.Period.Duration < time.Second || c.Period.Duration > 24*time.Hour {
		bad("period: %s must be from 1s to 24h", c.Period)
	}
	if c.KeepAlive.Duration < time.Second || c.KeepAlive.Duration > 5*time.Minute {
		bad("keep_alive: %s must be from 1s to 5m", c.KeepAlive)
	}
	if c.ClockSkew.Duration < 5*time.Second || c.ClockSkew.Duration > 15*time.Minute {
		bad("clock_skew: %s must be from 5s to 15m", c.ClockSkew)
	}
	if c.StreamsPerDevice < 1 || c.StreamsPerDevice > 64 || c.MaxPending < 1 {
		bad("streams_per_device: %d must be from 1 to 64, and max_pending at least 1", c.StreamsPerDevice)
	}
	names := map[string]bool{}
	for i, g := range c.Gateways {
		if err := g.validate(); err != nil {
			bad("gateways[%d] (%s): %v", i, g.Name, err)
		}
		if names[g.Name] {
			bad("gateways[%d]: the name %q is used twice", i, g.Name)
		}
		names[g.Name] = true
	}
	return errors.Join(errs...)
}

func (g GatewayConfig) validate() error {
	u, err := url.Parse(g.URL)
	switch {
	case g.Name == "" || strings.ContainsAny(g.Name, " \t\n"):
		return errors.New("name: give a name without spaces")
	case g.Type != TypeWebhook && g.Type != TypeNtfy:
		return fmt.Errorf("type: %q must be webhook or ntfy", g.Type)
	case err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && g.AllowHTTP)):
		return fmt.Errorf("url: %q must be an https:// URL (http:// only with allow_http, for loopback tests)", g.URL)
	case g.Timeout.Duration < 100*time.Millisecond || g.Timeout.Duration > time.Minute:
		return fmt.Errorf("timeout: %s must be from 100ms to 1m", g.Timeout)
	}
	switch {
	case g.Secret != "" && g.SecretFile != "", g.Token != "" && g.TokenFile != "":
		return errors.New("give secret or secret_file, and token or token_file, not both")
	case g.Type == TypeWebhook && g.SecretFile == "" && len(g.Secret) < 16:
		return errors.New("secret: a webhook needs a secret (or secret_file) of at least 16 bytes")
	}
	return nil
}

// secret is the webhook's HMAC key (from secret_file when set, read
// when the hub is made).
func (g GatewayConfig) secret() ([]byte, error) {
	s, err := readOptional(g.Secret, g.SecretFile, "secret")
	if err == nil && len(s) < 16 {
		err = errors.New("secret: a webhook needs a secret (or secret_file) of at least 16 bytes")
	}
	return []byte(s), err
}

// readOptional returns value, or the first line of file; not both.
func readOptional(value, file, name string) (string, error) {
	if value != "" && file != "" {
		return "", fmt.Errorf("%s: give %s or %s_file, not both", name, name, name)
	}
	if file == "" {
		return value, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s_file: %w", name, err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(line), nil
}
