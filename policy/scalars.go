package policy

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.problem(n, path, "must be a string, got %s", describe(n))
		return "", false
	}
	return n.Value, true
}

func (d *decoder) integer(n *yaml.Node, path string) (int, bool) {
	n = resolve(n)
	var v int
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&v) != nil {
		d.problem(n, path, "must be a whole number, got %s", describe(n))
		return 0, false
	}
	return v, true
}

func (d *decoder) boolean(n *yaml.Node, path string) (bool, bool) {
	n = resolve(n)
	var v bool
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&v) != nil {
		d.problem(n, path, "must be true or false, got %s", describe(n))
		return false, false
	}
	return v, true
}

// list reads a non-empty list of strings, each checked by valid (which
// returns the normalised value and "" or a complaint). Duplicates are
// reported. The result is never nil when ok.
func (d *decoder) list(n *yaml.Node, path string, valid func(string) (string, string)) ([]string, bool) {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		d.problem(n, path, "must be a list, got %s", describe(n))
		return nil, false
	}
	if len(n.Content) == 0 {
		d.problem(n, path, "must list at least one entry; leave the field out for no restriction")
		return nil, false
	}
	if len(n.Content) > maxListLen {
		d.problem(n, path, "lists %d entries; the limit is %d", len(n.Content), maxListLen)
		return nil, false
	}
	out, ok := make([]string, 0, len(n.Content)), true
	for i, item := range n.Content {
		sub := fmt.Sprintf("%s[%d]", path, i)
		s, good := d.str(item, sub)
		if !good {
			ok = false
			continue
		}
		v, complaint := valid(s)
		switch {
		case complaint != "":
			d.problem(resolve(item), sub, "%s", complaint)
			ok = false
		case slices.Contains(out, v):
			d.problem(resolve(item), sub, "%q is listed twice", v)
			ok = false
		default:
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out, ok
}

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)
	kindRE   = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)
	aaguidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

func validName(s string) (string, string) {
	if !nameRE.MatchString(s) {
		return s, fmt.Sprintf("%q is not a valid name: use 1-64 of a-z 0-9 _ . - starting with a letter or digit", s)
	}
	return s, ""
}

func validKind(s string) (string, string) {
	if !kindRE.MatchString(s) {
		return s, fmt.Sprintf("%q is not a factor kind: use 1-32 of a-z 0-9 _ -", s)
	}
	return s, ""
}

func validText(s string) (string, string) {
	if strings.TrimSpace(s) == "" || len(s) > 256 {
		return s, "must be 1 to 256 characters"
	}
	return s, ""
}

func validAAGUID(s string) (string, string) {
	v := strings.ToLower(s)
	if !aaguidRE.MatchString(v) {
		return s, fmt.Sprintf("%q is not an AAGUID (8-4-4-4-12 hex digits)", s)
	}
	return v, ""
}

func oneOf(allowed ...string) func(string) (string, string) {
	return func(s string) (string, string) {
		if !slices.Contains(allowed, s) {
			return s, fmt.Sprintf("%q is not one of %s", s, strings.Join(allowed, ", "))
		}
		return s, ""
	}
}

// maxDuration bounds every duration in a document (ten years).
const maxDuration = 3650 * 24 * time.Hour

// duration reads "30d", "2w" or a Go duration ("72h", "90m").
func (d *decoder) duration(n *yaml.Node, path string) (time.Duration, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return 0, false
	}
	v, err := parseDuration(s)
	if err != nil {
		d.problem(resolve(n), path, "%v", err)
		return 0, false
	}
	return v, true
}

func parseDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("%q is not a duration: write it as 30d, 2w or 72h", s)
	var v time.Duration
	if unit := strings.TrimLeft(s, "0123456789"); unit == "d" || unit == "w" {
		n, err := strconv.Atoi(strings.TrimSuffix(s, unit))
		if err != nil || n > 1e6 {
			return 0, bad
		}
		if unit == "w" {
			n *= 7
		}
		if n > int(maxDuration/(24*time.Hour)) { // compared in days: hours could overflow
			return 0, fmt.Errorf("%q is longer than the limit of %s", s, formatDuration(maxDuration))
		}
		v = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if v, err = time.ParseDuration(s); err != nil {
			return 0, bad
		}
	}
	if v < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	if v > maxDuration {
		return 0, fmt.Errorf("%q is longer than the limit of %s", s, formatDuration(maxDuration))
	}
	return v, nil
}

// formatDuration writes whole days as "30 days", anything else as Go does.
func formatDuration(v time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case v == day:
		return "1 day"
	case v > 0 && v%day == 0:
		return fmt.Sprintf("%d days", v/day)
	}
	return v.String()
}
