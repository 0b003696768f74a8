package policy

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Limits on a document, so a hostile or broken file cannot make Parse
// work for long.
const (
	MaxDocumentSize = 1 << 20
	MaxRules        = 1000
	maxListLen      = 1000
	maxProblems     = 50
)

// Parse reads and validates a policy document. name is used only in error
// messages (usually the file name). On any problem it returns a
// [*ParseError] (wrapping ErrInvalidDocument) listing every problem found,
// each with its line and field.
func Parse(name string, data []byte) (*Document, error) {
	d := &decoder{file: name}
	if len(data) > MaxDocumentSize {
		d.problem(nil, "", "the document is %d bytes; the limit is %d", len(data), MaxDocumentSize)
		return nil, d.err()
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		d.yamlError(err)
		return nil, d.err()
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		d.problem(nil, "", "the document is empty; it needs at least version and rules")
		return nil, d.err()
	}
	doc := d.document(root.Content[0])
	if err := d.err(); err != nil {
		return nil, err
	}
	return doc, nil
}

// MustParse is Parse for documents known at compile time (tests,
// examples); it panics on error.
func MustParse(name string, data []byte) *Document {
	doc, err := Parse(name, data)
	if err != nil {
		panic(err)
	}
	return doc
}

// decoder walks a yaml.Node tree, collecting problems instead of stopping
// at the first.
type decoder struct {
	file     string
	problems []Problem
}

func (d *decoder) err() error {
	if len(d.problems) == 0 {
		return nil
	}
	return &ParseError{Problems: d.problems}
}

func (d *decoder) problem(n *yaml.Node, field, format string, args ...any) {
	if len(d.problems) >= maxProblems {
		return
	}
	p := Problem{File: d.file, Field: field, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	d.problems = append(d.problems, p)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError turns a YAML syntax error into problems with line numbers.
func (d *decoder) yamlError(err error) {
	msgs := []string{err.Error()}
	if te, ok := err.(*yaml.TypeError); ok {
		msgs = te.Errors
	}
	for _, m := range msgs {
		p := Problem{File: d.file, Msg: "invalid YAML: " + strings.TrimPrefix(m, "yaml: ")}
		if sm := yamlLineRE.FindStringSubmatch(m); sm != nil {
			p.Line, _ = strconv.Atoi(sm[1])
			p.Msg = "invalid YAML: " + sm[2]
		}
		d.problems = append(d.problems, p)
	}
}

// field is one known key of a mapping and how to read its value.
type field struct {
	name string
	read func(val *yaml.Node, path string)
}

// mapping reads a mapping node, calling each known field's reader and
// reporting unknown and repeated keys. It returns the keys it saw.
func (d *decoder) mapping(n *yaml.Node, path string, fields []field) map[string]*yaml.Node {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		d.problem(n, path, "must be a mapping of %s, got %s", fieldNames(fields), describe(n))
		return nil
	}
	seen := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := resolve(n.Content[i]), n.Content[i+1]
		sub := joinPath(path, key.Value)
		if _, dup := seen[key.Value]; dup {
			d.problem(key, sub, "appears twice")
			continue
		}
		seen[key.Value] = val
		f := findField(fields, key.Value)
		if f == nil {
			d.problem(key, sub, "unknown field; known fields are %s", fieldNames(fields))
			continue
		}
		f.read(val, sub)
	}
	return seen
}

func findField(fields []field, name string) *field {
	for i := range fields {
		if fields[i].name == name {
			return &fields[i]
		}
	}
	return nil
}

func fieldNames(fields []field) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	return strings.Join(names, ", ")
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// resolve follows aliases (bounded, since a cycle is a YAML error).
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}
