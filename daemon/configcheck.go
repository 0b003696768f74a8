package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/keyfleet/keyfleet/daemon/events"
)

// ConfigError is one problem in a configuration file: its line (0 when
// the setting is missing) and what is wrong, starting with the setting's
// name ("verify.lockout: …").
type ConfigError struct {
	File string
	Line int
	Msg  string
}

func (e ConfigError) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Msg
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// ConfigErrors is every problem found in a configuration file, in line
// order. CheckConfigFile and LoadFile return it.
type ConfigErrors []ConfigError

func (es ConfigErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// CheckConfigFile reads a configuration file and reports every problem in
// it: YAML syntax, unknown settings (with the nearest known name), values
// of the wrong kind, and everything Validate and the event sinks' own
// check find, each with its line and the setting's name and never a Go
// type name. dataDir stands in for a data setting the file does not have
// (serve's --data); "" skips the checks that need one. Missing attestation
// root files are reported too. It returns ConfigErrors, or nil.
func CheckConfigFile(path, dataDir string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	lines, errs := checkStructure(path, b)
	if errs != nil {
		return errs
	}
	var cfg Config
	if err := decodeStrict(b, &cfg); err != nil {
		return ConfigErrors{{File: path, Msg: err.Error()}}
	}
	placeholder := cfg.DataDir == "" && dataDir == ""
	if cfg.DataDir == "" {
		cfg.DataDir = cmpOr(dataDir, "/data-folder-given-to-serve")
	}
	cfg.Defaults()
	var found []error
	if err := cfg.Validate(); err != nil {
		found = append(found, unjoin(err)...)
	}
	if err := cfg.Events.Validate(); err != nil {
		found = append(found, unjoin(err)...)
	}
	if _, err := loadRoots(cfg); err != nil {
		found = append(found, err)
	}
	if !placeholder {
		if _, err := loadCertificate(cfg); err != nil {
			found = append(found, fmt.Errorf("tls_cert: %w", err))
		}
	}
	return locate(path, lines, found)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func decodeStrict(b []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// unjoin splits an errors.Join into its errors (and leaves alone an error
// that wraps several with fmt.Errorf, whose text is its own).
func unjoin(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	parts := j.Unwrap()
	texts := make([]string, len(parts))
	for i, e := range parts {
		texts[i] = e.Error()
	}
	if strings.Join(texts, "\n") != err.Error() {
		return []error{err}
	}
	var out []error
	for _, e := range parts {
		out = append(out, unjoin(e)...)
	}
	return out
}

var indexed = regexp.MustCompile(`\b(sinks|plugins|gateways)\[(\d+)\]`)

// locate gives each error the line of the setting it names, and sorts
// them by line.
func locate(path string, lines map[string]int, found []error) error {
	if len(found) == 0 {
		return nil
	}
	var out ConfigErrors
	for _, err := range found {
		msg := strings.TrimPrefix(err.Error(), events.ErrInvalidConfig.Error()+": ")
		key, rest, _ := strings.Cut(msg, ":")
		line := lines[key]
		if word, _, _ := strings.Cut(strings.TrimSpace(rest), " "); lines[key+"."+word] != 0 {
			line = lines[key+"."+word] // "plugins: dir … must be absolute"
		}
		if m := indexed.FindStringSubmatch(msg); m != nil {
			section := map[string]string{"sinks": "events", "plugins": "plugins", "gateways": "push"}[m[1]]
			line = cmpOrInt(lines[section+"."+m[0]], line)
		}
		out = append(out, ConfigError{File: path, Line: line, Msg: msg})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}

func cmpOrInt(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// checkStructure walks the YAML against Config's settings. It returns the
// line of every setting present (by path, like "events.sinks[0].name"),
// or the problems found.
func checkStructure(path string, b []byte) (map[string]int, ConfigErrors) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		msg := err.Error()
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			n, _ := strconv.Atoi(m[1])
			return nil, ConfigErrors{{File: path, Line: n, Msg: "not valid YAML: " + m[2]}}
		}
		return nil, ConfigErrors{{File: path, Msg: "not valid YAML: " + strings.TrimPrefix(msg, "yaml: ")}}
	}
	w := &walker{file: path, lines: map[string]int{}}
	if len(doc.Content) > 0 {
		w.node(doc.Content[0], reflect.TypeOf(Config{}), "")
	}
	if len(w.errs) > 0 {
		return nil, w.errs
	}
	return w.lines, nil
}

type walker struct {
	file  string
	lines map[string]int
	errs  ConfigErrors
}

func (w *walker) bad(n *yaml.Node, key, format string, a ...any) {
	w.errs = append(w.errs, ConfigError{File: w.file, Line: n.Line, Msg: key + ": " + fmt.Sprintf(format, a...)})
}

// node checks n against type t at path key.
func (w *walker) node(n *yaml.Node, t reflect.Type, key string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if _, seen := w.lines[key]; key != "" && !seen {
		w.lines[key] = n.Line // a list item's own line
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Tag == "!!null" {
		return
	}
	switch {
	case t.Name() == "Duration": // daemon's, events' and the plugin host's: "15m"
		w.duration(n, key)
	case t == reflect.TypeFor[Size](): // "256MiB"
		w.size(n, key)
	case scalarStruct(t): // written as one value (a proxy range), read by its own UnmarshalYAML
		w.scalar(n, t, key)
	case t.Kind() == reflect.Struct:
		w.mapping(n, t, key)
	case t.Kind() == reflect.Map: // names chosen by the operator (directory group maps)
		if n.Kind != yaml.MappingNode {
			w.bad(n, key, "want a section of name: value lines, or {} for none")
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			w.node(n.Content[i+1], t.Elem(), joinKey(key, n.Content[i].Value))
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.bad(n, key, "want a list, like [a, b] or one \"- item\" per line")
			return
		}
		for i, item := range n.Content {
			w.node(item, t.Elem(), fmt.Sprintf("%s[%d]", key, i))
		}
	default:
		w.scalar(n, t, key)
	}
}

func (w *walker) mapping(n *yaml.Node, t reflect.Type, key string) {
	if n.Kind != yaml.MappingNode {
		w.bad(n, cmpOr(key, "the file"), "want a section of settings (name: value lines indented under it)")
		return
	}
	fields := settingFields(t)
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		path := joinKey(key, k.Value)
		f, ok := fields[k.Value]
		if !ok {
			w.bad(k, path, "unknown setting%s", suggest(k.Value, fields))
			continue
		}
		if line, dup := first[k.Value]; dup {
			w.bad(k, path, "set twice (first on line %d); keep one", line)
			continue
		}
		first[k.Value] = k.Line
		w.lines[path] = k.Line
		w.node(v, f, path)
	}
}

func joinKey(parent, k string) string {
	if parent == "" {
		return k
	}
	return parent + "." + k
}

// settingFields maps each YAML name of t's fields to the field's type;
// an inline struct's settings are t's own.
func settingFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if opts == "inline" && f.Type.Kind() == reflect.Struct {
			for k, v := range settingFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func (w *walker) duration(n *yaml.Node, key string) {
	if n.Kind != yaml.ScalarNode {
		w.bad(n, key, "want a duration like 30s, 15m or 24h")
		return
	}
	if _, err := time.ParseDuration(n.Value); err != nil {
		w.bad(n, key, "%q is not a duration like 30s, 15m or 24h", n.Value)
	}
}

func (w *walker) size(n *yaml.Node, key string) {
	if n.Kind != yaml.ScalarNode {
		w.bad(n, key, "want a size like 256MiB or 1GiB")
		return
	}
	if _, err := ParseSize(n.Value); err != nil {
		w.bad(n, key, "%v", err)
	}
}

func (w *walker) scalar(n *yaml.Node, t reflect.Type, key string) {
	if n.Kind != yaml.ScalarNode {
		w.bad(n, key, "want a single value, not a list or a section")
		return
	}
	switch t.Kind() {
	case reflect.Bool:
		if n.Tag != "!!bool" {
			w.bad(n, key, "want true or false")
		}
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64, reflect.Uint32:
		if n.Tag != "!!int" {
			w.bad(n, key, "want a whole number")
		} else if _, err := strconv.ParseInt(n.Value, 0, 64); err != nil {
			w.bad(n, key, "%s is out of range", n.Value)
		}
	}
}

// suggest names the known setting closest to an unknown one.
func suggest(name string, fields map[string]reflect.Type) string {
	best, bestD := "", 3
	for k := range fields {
		if d := editDistance(name, k); d < bestD || (d == bestD && k < best) {
			best, bestD = k, d
		}
	}
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	if best != "" {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	return "; the settings here are " + strings.Join(names, ", ")
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// scalarStruct reports whether t is a struct written as one value: it
// reads itself (yaml.Unmarshaler), like a trusted proxy's range.
func scalarStruct(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t.Name() != "Duration" && reflect.PointerTo(t).Implements(unmarshalerType)
}
