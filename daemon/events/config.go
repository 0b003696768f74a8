package events

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"
)

// Sink types.
const (
	TypeFile    = "file"
	TypeSyslog  = "syslog"
	TypeWebhook = "webhook"
	TypeSSE     = "sse" // the stream served by [Manager.SSEHandler]; not configured as a sink
)

// Duration is a time.Duration written as "15s" in YAML.
type Duration struct{ time.Duration }

// UnmarshalYAML reads "500ms", "15s", "1h".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 500ms, 30s or 5m", n.Line, n.Value)
	}
	d.Duration = v
	return nil
}

// MarshalYAML writes the duration as text.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Config is the events section of keyfleetd's configuration. The zero
// Config has no sinks and serves SSE with the defaults below.
type Config struct {
	Sinks []SinkConfig `yaml:"sinks"`
	// PollInterval is how often sinks look for new events when no
	// notification came (default 1s).
	PollInterval Duration  `yaml:"poll_interval"`
	SSE          SSEConfig `yaml:"sse"`
}

// SinkConfig configures one sink. Exactly the section that matches Type is
// set.
type SinkConfig struct {
	// Name identifies the sink in status, metrics and its cursor: letters,
	// digits, '-', '_' and '.', at most 64. Renaming a sink starts it from
	// the beginning of the log.
	Name string `yaml:"name"`
	Type string `yaml:"type"` // file, syslog or webhook
	// Disabled keeps the sink's cursor but delivers nothing.
	Disabled bool   `yaml:"disabled"`
	Filter   Filter `yaml:"filter"`
	// BatchSize is the most events per delivery (default 100; webhook
	// bodies and fsyncs are per batch).
	BatchSize int         `yaml:"batch_size"`
	Retry     RetryConfig `yaml:"retry"`
	// StartAt is where a sink with no cursor yet begins: "oldest" (the
	// whole log, the default) or "head" (only events from now on).
	StartAt string         `yaml:"start_at"`
	File    *FileConfig    `yaml:"file,omitempty"`
	Syslog  *SyslogConfig  `yaml:"syslog,omitempty"`
	Webhook *WebhookConfig `yaml:"webhook,omitempty"`
}

// RetryConfig is how a sink retries a batch its receiver refused: after
// attempt n it waits min(Max, Initial·2^(n-1)), with up to half of that
// replaced by random jitter.
type RetryConfig struct {
	Initial Duration `yaml:"initial"` // default 500ms
	Max     Duration `yaml:"max"`     // default 1m
	// MaxAttempts is how many times a batch is tried before it becomes a
	// dead letter. 0 means never give up, the default for file and syslog
	// sinks; webhooks default to 10.
	MaxAttempts int `yaml:"max_attempts"`
}

// FileConfig writes one JSON event per line to Path, rotating by size.
type FileConfig struct {
	Path string `yaml:"path"`
	// MaxSizeMB rotates the file before it grows past this size (default
	// 100). Rotated files are Path.1 (newest) to Path.MaxFiles.
	MaxSizeMB int `yaml:"max_size_mb"`
	// MaxFiles is how many rotated files are kept (default 5).
	MaxFiles int `yaml:"max_files"`
	// NoSync skips the fsync after each batch. Faster, but a power loss
	// can lose events the cursor already counts as delivered.
	NoSync bool `yaml:"no_sync"`
}

// SyslogConfig sends RFC 5424 messages.
type SyslogConfig struct {
	// Network is udp, tcp, tls or unix (the local syslog socket).
	Network string `yaml:"network"`
	// Address is host:port, or a socket path for unix (default /dev/log).
	Address string `yaml:"address"`
	// Facility is a facility name (default authpriv).
	Facility string `yaml:"facility"`
	AppName  string `yaml:"app_name"` // default keyfleetd
	Hostname string `yaml:"hostname"` // default the machine's host name
	// CAFile holds PEM roots that sign the receiver's certificate (tls;
	// default the system roots). ServerName overrides the name checked.
	CAFile     string `yaml:"ca_file"`
	ServerName string `yaml:"server_name"`
	// Timeout bounds a connect or a batch write (default 10s).
	Timeout Duration `yaml:"timeout"`
	// TLS, if set, is used as is for the tls network (tests, embedders).
	TLS *tls.Config `yaml:"-"`
}

// WebhookConfig POSTs signed batches over HTTPS.
type WebhookConfig struct {
	URL string `yaml:"url"`
	// Secret keys the HMAC-SHA256 signature (at least 16 bytes). Prefer
	// SecretFile, which keeps it out of the configuration file; set one.
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
	// CAFile holds PEM roots that sign the receiver's certificate
	// (default the system roots).
	CAFile string `yaml:"ca_file"`
	// Timeout bounds one request (default 10s).
	Timeout Duration `yaml:"timeout"`
	// AllowHTTP permits a plain http:// URL (loopback testing only).
	AllowHTTP bool `yaml:"allow_http"`
	// TLS, if set, is used as is (tests, embedders).
	TLS *tls.Config `yaml:"-"`
}

// String hides the secret.
func (w WebhookConfig) String() string { return fmt.Sprintf("webhook %s", redactURL(w.URL)) }

// SSEConfig tunes GET /v1/events.
type SSEConfig struct {
	// KeepAlive is how often an idle stream gets a comment line (default 15s).
	KeepAlive Duration `yaml:"keep_alive"`
	// WriteTimeout drops a client that cannot take a write in this time
	// (default 30s).
	WriteTimeout Duration `yaml:"write_timeout"`
}

// Filter selects the events a sink delivers. Empty lists match everything;
// an event must pass every non-empty list.
type Filter struct {
	// Actions are globs over the action ("factor.*", "user.disable").
	Actions []string `yaml:"actions"`
	// Severities lists severities to deliver (info, notice, warning, high).
	Severities []string `yaml:"severities"`
	// Groups delivers events whose target user is in one of these groups.
	Groups []string `yaml:"groups"`
}

// Defaults.
const (
	DefaultBatchSize       = 100
	DefaultPollInterval    = time.Second
	DefaultWebhookAttempts = 10
	defaultTimeout         = 10 * time.Second
)

var sinkName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ErrInvalidConfig is wrapped by every error [Config.Validate] returns.
var ErrInvalidConfig = errors.New("invalid events configuration")

// Validate checks the configuration and fills in defaults. It returns an
// error wrapping ErrInvalidConfig that names the sink and the field.
func (c *Config) Validate() error {
	if c.PollInterval.Duration <= 0 {
		c.PollInterval.Duration = DefaultPollInterval
	}
	if c.SSE.KeepAlive.Duration <= 0 {
		c.SSE.KeepAlive.Duration = 15 * time.Second
	}
	if c.SSE.WriteTimeout.Duration <= 0 {
		c.SSE.WriteTimeout.Duration = 30 * time.Second
	}
	seen := map[string]bool{}
	var errs []error
	for i := range c.Sinks {
		s := &c.Sinks[i]
		if err := s.validate(); err != nil {
			errs = append(errs, fmt.Errorf("%w: events.sinks[%d] (%s): %w", ErrInvalidConfig, i, s.Name, err))
			continue
		}
		if seen[s.Name] {
			errs = append(errs, fmt.Errorf("%w: events.sinks[%d]: the name %q is used twice; each sink needs its own name (it keys the cursor)", ErrInvalidConfig, i, s.Name))
		}
		seen[s.Name] = true
	}
	return errors.Join(errs...)
}

func (s *SinkConfig) validate() error {
	if !sinkName.MatchString(s.Name) {
		return fmt.Errorf("name %q: use 1-64 letters, digits, '.', '_' or '-'", s.Name)
	}
	if s.BatchSize == 0 {
		s.BatchSize = DefaultBatchSize
	}
	if s.BatchSize < 1 || s.BatchSize > 10000 {
		return fmt.Errorf("batch_size %d: use 1 to 10000", s.BatchSize)
	}
	if s.StartAt == "" {
		s.StartAt = "oldest"
	}
	if s.StartAt != "oldest" && s.StartAt != "head" {
		return fmt.Errorf("start_at %q: use oldest or head", s.StartAt)
	}
	if err := s.Filter.validate(); err != nil {
		return err
	}
	if err := s.validateTarget(); err != nil {
		return err
	}
	return s.Retry.validate(s.Type)
}

func (s *SinkConfig) validateTarget() error {
	sections := map[string]bool{TypeFile: s.File != nil, TypeSyslog: s.Syslog != nil, TypeWebhook: s.Webhook != nil}
	if _, ok := sections[s.Type]; !ok {
		return fmt.Errorf("type %q: use file, syslog or webhook", s.Type)
	}
	for typ, set := range sections {
		if set != (typ == s.Type) {
			return fmt.Errorf("a %s sink takes exactly one %q section and no other", s.Type, s.Type)
		}
	}
	switch s.Type {
	case TypeFile:
		return s.File.validate()
	case TypeSyslog:
		return s.Syslog.validate()
	default:
		return s.Webhook.validate()
	}
}

func (r *RetryConfig) validate(typ string) error {
	if r.Initial.Duration <= 0 {
		r.Initial.Duration = 500 * time.Millisecond
	}
	if r.Max.Duration <= 0 {
		r.Max.Duration = time.Minute
	}
	if r.Max.Duration < r.Initial.Duration {
		return fmt.Errorf("retry.max %s is shorter than retry.initial %s", r.Max, r.Initial)
	}
	if r.MaxAttempts < 0 {
		return fmt.Errorf("retry.max_attempts %d: use 0 (never give up) or more", r.MaxAttempts)
	}
	if r.MaxAttempts == 0 && typ == TypeWebhook {
		r.MaxAttempts = DefaultWebhookAttempts
	}
	return nil
}

func (f *Filter) validate() error {
	for _, p := range f.Actions {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			return fmt.Errorf("filter.actions: %q is not a glob like factor.* or user.disable", p)
		}
	}
	for _, s := range f.Severities {
		if !slices.Contains(Severities, s) {
			return fmt.Errorf("filter.severities: %q is not one of info, notice, warning, high", s)
		}
	}
	return nil
}

func (f *FileConfig) validate() error {
	if f.Path == "" {
		return errors.New("file.path is required")
	}
	if f.MaxSizeMB == 0 {
		f.MaxSizeMB = 100
	}
	if f.MaxFiles == 0 {
		f.MaxFiles = 5
	}
	if f.MaxSizeMB < 1 || f.MaxFiles < 1 || f.MaxFiles > 1000 {
		return fmt.Errorf("file: max_size_mb (%d) must be at least 1 and max_files (%d) 1 to 1000", f.MaxSizeMB, f.MaxFiles)
	}
	return nil
}

func (s *SyslogConfig) validate() error {
	if s.Network == "unix" && s.Address == "" {
		s.Address = "/dev/log"
	}
	switch s.Network {
	case "udp", "tcp", "tls", "unix":
	default:
		return fmt.Errorf("syslog.network %q: use udp, tcp, tls or unix", s.Network)
	}
	if s.Address == "" {
		return fmt.Errorf("syslog.address is required for %s (host:port)", s.Network)
	}
	if s.Facility == "" {
		s.Facility = "authpriv"
	}
	if _, ok := facilities[s.Facility]; !ok {
		return fmt.Errorf("syslog.facility %q is not a syslog facility (auth, authpriv, local0 … local7, …)", s.Facility)
	}
	if s.AppName == "" {
		s.AppName = "keyfleetd"
	}
	if s.Timeout.Duration <= 0 {
		s.Timeout.Duration = defaultTimeout
	}
	if s.Network != "tls" && (s.CAFile != "" || s.ServerName != "") {
		return fmt.Errorf("syslog.ca_file and server_name apply only to network tls")
	}
	return nil
}

func (w *WebhookConfig) validate() error {
	u, err := url.Parse(w.URL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("webhook.url %q is not an absolute URL", redactURL(w.URL))
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && w.AllowHTTP) {
		return fmt.Errorf("webhook.url %s: use https (allow_http permits http for loopback testing)", redactURL(w.URL))
	}
	if u.User != nil {
		return fmt.Errorf("webhook.url %s carries credentials; the signature authenticates keyfleetd", redactURL(w.URL))
	}
	if (w.Secret == "") == (w.SecretFile == "") {
		return errors.New("webhook: set exactly one of secret and secret_file")
	}
	if w.Secret != "" && len(w.Secret) < 16 {
		return errors.New("webhook.secret is too short: use at least 16 bytes (32 random bytes, hex-encoded, is good)")
	}
	if w.Timeout.Duration <= 0 {
		w.Timeout.Duration = defaultTimeout
	}
	return nil
}

// redactURL drops credentials and the query (which may carry a token).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}
