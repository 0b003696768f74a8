package host

import (
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config says where plugins are and which binaries may run. Its zero value
// loads no plugin. In keyfleetd's YAML:
//
//	plugins:
//	  dir: /usr/lib/keyfleet/plugins
//	  plugins:
//	    - name: keyfleet-plugin-totp
//	      sha256: 3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b
//	      timeout: 5s
//	      procs: 1
type Config struct {
	// Dir is the folder searched for plugin binaries: every file named
	// keyfleet-plugin-*. An absolute path; empty loads no plugin.
	Dir string `yaml:"dir"`
	// Plugins pins each binary that may run. A binary in Dir that is not
	// listed, or whose SHA-256 differs, is refused.
	Plugins []PluginConfig `yaml:"plugins"`
}

// PluginConfig pins one plugin binary.
type PluginConfig struct {
	// Name is the binary's file name in Dir, keyfleet-plugin-<something>.
	Name string `yaml:"name"`
	// SHA256 is the binary's checksum in hex, as sha256sum prints it.
	SHA256 string `yaml:"sha256"`
	// Timeout bounds each call to the plugin (default 5s, at most 5m).
	// A call that takes longer fails and the plugin is restarted.
	Timeout Duration `yaml:"timeout"`
	// Procs is how many threads may run the plugin's Go code at once:
	// the host starts the process with GOMAXPROCS set to it (default 1,
	// at most 256; other languages ignore it). One is what a factor's
	// small calls need, and it spares the plugin the cost of waking a
	// second thread for each call that arrives; raise it only for a kind
	// whose calls are heavy enough to keep a core busy.
	Procs int `yaml:"procs"`
}

// DefaultTimeout is a plugin call's timeout when the config sets none.
const DefaultTimeout = 5 * time.Second

const maxTimeout = 5 * time.Minute

// DefaultProcs is a plugin's GOMAXPROCS when the config sets none.
const DefaultProcs = 1

const maxProcs = 256

// Prefix starts the file name of every plugin binary.
const Prefix = "keyfleet-plugin-"

var nameRE = regexp.MustCompile(`^keyfleet-plugin-[a-z0-9][a-z0-9_-]{0,31}$`)

// Duration is a time.Duration written as "5s" in YAML.
type Duration struct{ time.Duration }

// UnmarshalYAML reads "5s", "1m".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 5s or 1m", n.Line, n.Value)
	}
	d.Duration = v
	return nil
}

// MarshalYAML writes the duration as text.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Validate reports every problem in the config at once, each naming the
// field; nil when the config can be used.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("plugins: "+format, args...)) }
	if c.Dir != "" && !filepath.IsAbs(c.Dir) {
		bad("dir %q must be an absolute path", c.Dir)
	}
	if c.Dir == "" && len(c.Plugins) > 0 {
		bad("dir is required when plugins are listed")
	}
	seen := map[string]bool{}
	for i, p := range c.Plugins {
		where := fmt.Sprintf("plugins[%d] (%s)", i, p.Name)
		if !nameRE.MatchString(p.Name) {
			bad("%s: name must be a file name like %sname (a-z 0-9 _ -, at most 32 after the prefix)", where, Prefix)
		}
		if seen[p.Name] {
			bad("%s: listed twice", where)
		}
		seen[p.Name] = true
		if _, err := parseSum(p.SHA256); err != nil {
			bad("%s: sha256 %v", where, err)
		}
		if p.Timeout.Duration < 0 || p.Timeout.Duration > maxTimeout {
			bad("%s: timeout %s must be between 0 (default %s) and %s", where, p.Timeout, DefaultTimeout, maxTimeout)
		}
		if p.Procs < 0 || p.Procs > maxProcs {
			bad("%s: procs %d must be between 0 (default %d) and %d", where, p.Procs, DefaultProcs, maxProcs)
		}
	}
	return errors.Join(errs...)
}

// parseSum reads a hex SHA-256 as sha256sum prints it.
func parseSum(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.ToLower(strings.TrimSpace(s)))
	if err != nil || len(b) != 32 {
		return nil, errors.New("must be 64 hex digits (run sha256sum on the binary)")
	}
	return b, nil
}

func (p PluginConfig) timeout() time.Duration {
	if p.Timeout.Duration == 0 {
		return DefaultTimeout
	}
	return p.Timeout.Duration
}

func (p PluginConfig) procs() int {
	if p.Procs == 0 {
		return DefaultProcs
	}
	return p.Procs
}
