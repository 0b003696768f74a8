package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// goTypeName matches what a Go decoder would say about its types.
var goTypeName = regexp.MustCompile(`\b(daemon|events|host|yaml|time)\.[A-Z]|\bint64\b|\[\]string|\bstruct\b|!!|unmarshal|Duration\b`)

func TestCheckConfigNamesTheLineAndTheSetting(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"a misspelt setting, with the nearest name", "listen: 127.0.0.1:8443\nlistn: 127.0.0.1:9\n",
			[]string{`:2: listn: unknown setting; did you mean "listen"?`}},
		{"a misspelt nested setting", "verify:\n  lockuot: 1m\n", []string{`:2: verify.lockuot: unknown setting; did you mean "lockout"?`}},
		{"a setting that is nothing like one", "verify:\n  colour: red\n", []string{`:2: verify.colour: unknown setting; the settings here are lockout, max_failures, ttl`}},
		{"a yes for a switch", "web:\n  disabled: maybe\n", []string{":2: web.disabled: want true or false"}},
		{"words for a number", "max_body_bytes: big\n", []string{":1: max_body_bytes: want a whole number"}},
		{"one file where a list is wanted", "attestation:\n  piv_roots: /etc/keyfleet/root.pem\n", []string{":2: attestation.piv_roots: want a list"}},
		{"a value where a section is wanted", "log: json\n", []string{":1: log: want a section of settings"}},
		{"a duration in words", "verify:\n  ttl: 5 minutes\n", []string{`:2: verify.ttl: "5 minutes" is not a duration like 30s, 15m or 24h`}},
		{"broken YAML", "listen: [127.0.0.1\nlog: {}\n", []string{"not valid YAML"}},
		{"a value out of range, at its line", "listen: 127.0.0.1:1\nlog:\n  format: xml\n", []string{`:3: log.format: "xml" must be json or text`}},
		{"an event sink with a bad name, at the sink", "events:\n  sinks:\n    - name: 'no spaces'\n      type: file\n      file: {path: /tmp/e.jsonl}\n",
			[]string{`:3: events.sinks[0] (no spaces): name "no spaces"`}},
		{"a relative plugin folder", "plugins:\n  dir: plugins\n", []string{`:2: plugins: dir "plugins" must be an absolute path`}},
		{"a root file that is not there", "attestation:\n  piv_roots: [/nonexistent/root.pem]\n", []string{":2: attestation.piv_roots: open /nonexistent/root.pem"}},
		{"a section given twice", "events:\n  poll_interval: 1s\nlisten: 127.0.0.1:8443\nevents:\n  sinks: []\n", []string{":4: events: set twice (first on line 1); keep one"}},
		{"every problem at once, in line order", "listn: x\nverify:\n  ttl: soon\n  max_failures: many\n",
			[]string{":1: listn", ":3: verify.ttl", ":4: verify.max_failures"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keyfleetd.yaml")
			os.WriteFile(path, []byte(tt.yaml), 0o600)
			err := CheckConfigFile(path, "")
			var ce ConfigErrors
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want ConfigErrors", err)
			}
			text := err.Error()
			last := -1
			for _, w := range tt.want {
				i := strings.Index(text, w)
				if i < 0 || i < last {
					t.Fatalf("want %q (in this order) in:\n%s", tt.want, text)
				}
				last = i
			}
			if goTypeName.MatchString(text) {
				t.Fatalf("the error names Go types: %s", text)
			}
			if !strings.HasPrefix(text, path) {
				t.Fatalf("the error does not start with the file: %s", text)
			}
		})
	}
}

func TestCheckConfigNeverEchoesASecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyfleetd.yaml")
	os.WriteFile(path, []byte("events:\n  sinks:\n    - name: siem\n      type: webhook\n      webhook:\n        url: https://siem.example.org/in\n        secret: tooshort-S3CRET\n        timout: 5s\n"), 0o600)
	err := CheckConfigFile(path, "")
	if err == nil || strings.Contains(err.Error(), "S3CRET") {
		t.Fatalf("%v", err)
	}
	os.WriteFile(path, []byte("events:\n  sinks:\n    - name: siem\n      type: webhook\n      webhook:\n        url: https://siem.example.org/in\n        secret: tooshort-S3CRET\n"), 0o600)
	err = CheckConfigFile(path, "")
	if err == nil || !strings.Contains(err.Error(), ":3: events.sinks[0]") || strings.Contains(err.Error(), "S3CRET") {
		t.Fatalf("%v", err)
	}
}

func TestCheckConfigPassesTheDefaultFileAndAFullOne(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keyfleetd.yaml")
	os.WriteFile(path, []byte(DefaultConfigFile("")), 0o600)
	if err := CheckConfigFile(path, ""); err != nil {
		t.Fatalf("the default file: %v", err)
	}
	full := DefaultConfigFile("") + "" // the commented examples, switched on
	full = strings.Replace(full, "  sinks: []             # none.", "  sinks:                # the examples:", 1)
	full = regexp.MustCompile(`(?m)^  # (- |  )`).ReplaceAllString(full, "  $1")
	full = strings.Replace(full, "  plugins: []           # none.", "  plugins:              #", 1)
	full = strings.Replace(full, "  gateways: []          # relays", "  gateways:             # relays", 1)
	full = strings.Replace(full, "  clients: []           # none:", "  clients:              #", 1)
	full = strings.Replace(full, `  dir: ""               # absolute`, `  dir: /usr/lib/keyfleet/plugins # absolute`, 1)
	os.WriteFile(path, []byte(full), 0o600)
	if err := CheckConfigFile(path, ""); err != nil {
		t.Fatalf("the default file with its examples switched on:\n%v\n%s", err, full)
	}
}
