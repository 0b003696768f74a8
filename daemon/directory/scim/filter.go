package scim

import (
	"fmt"
	"strings"

	filter "github.com/scim2/filter-parser/v2"
)

// Filters (RFC 7644 §3.4.2.2) are parsed by scim2/filter-parser and
// evaluated here against a resource's representation: a lower-cased map.
// A filter only ever narrows the client's own users and groups.

// maxFilter bounds a filter's length.
const maxFilter = 1024

// parseFilter parses a filter and checks it names only attributes of the
// resource (known lists the lower-cased top-level names).
func parseFilter(raw string, known map[string]bool) (filter.Expression, error) {
	if len(raw) > maxFilter {
		return nil, badRequest(typeInvalidFilter, "the filter is %d bytes long; the limit is %d", len(raw), maxFilter)
	}
	expr, err := filter.ParseFilter([]byte(raw))
	if err != nil {
		return nil, badRequest(typeInvalidFilter, "%q is not a SCIM filter (RFC 7644 §3.4.2.2), such as userName eq \"alice\"", raw)
	}
	return expr, checkAttrs(expr, known)
}

// checkAttrs refuses a filter on an attribute the resource does not have.
func checkAttrs(e filter.Expression, known map[string]bool) error {
	switch x := e.(type) {
	case *filter.AttributeExpression:
		return knownPath(x.AttributePath, known, typeInvalidFilter)
	case *filter.ValuePath:
		return knownPath(x.AttributePath, known, typeInvalidFilter)
	case *filter.LogicalExpression:
		if err := checkAttrs(x.Left, known); err != nil {
			return err
		}
		return checkAttrs(x.Right, known)
	case *filter.NotExpression:
		return checkAttrs(x.Expression, known)
	}
	return badRequest(typeInvalidFilter, "unsupported filter")
}

// knownPath checks an attribute path's top-level name (or extension).
func knownPath(p filter.AttributePath, known map[string]bool, scimType string) error {
	name := strings.ToLower(p.AttributeName)
	if uri := strings.ToLower(p.URI()); uri != "" && uri != strings.ToLower(schemaUser) && uri != strings.ToLower(schemaGroup) {
		if uri == enterpriseKey && known[enterpriseKey] && enterpriseKnown[name] {
			return nil
		}
		return badRequest(scimType, "%q is not an attribute keyfleet has; GET /Schemas lists them", p.String())
	}
	if !known[name] {
		return badRequest(scimType, "%q is not an attribute keyfleet has; GET /Schemas lists them", p.String())
	}
	return nil
}

// match evaluates a filter against a representation.
func match(e filter.Expression, m map[string]any) bool {
	switch x := e.(type) {
	case *filter.AttributeExpression:
		return compareAny(valuesAt(m, x.AttributePath), x.Operator, x.CompareValue, caseExact(x.AttributePath))
	case *filter.ValuePath:
		for _, el := range elements(m, x.AttributePath) {
			if match(x.ValueFilter, el) {
				return true
			}
		}
		return false
	case *filter.LogicalExpression:
		if x.Operator == filter.AND {
			return match(x.Left, m) && match(x.Right, m)
		}
		return match(x.Left, m) || match(x.Right, m)
	case *filter.NotExpression:
		return !match(x.Expression, m)
	}
	return false
}

// caseExact: ids compare exactly, everything else without case (RFC 7643
// makes userName, displayName and emails case-insensitive).
func caseExact(p filter.AttributePath) bool {
	n := strings.ToLower(p.AttributeName)
	return n == "id" || n == "externalid" || (n == "members" && strings.EqualFold(p.SubAttributeName(), "value"))
}

// container is the map an attribute path starts in: the resource, or an
// extension's object.
func container(m map[string]any, p filter.AttributePath) map[string]any {
	uri := strings.ToLower(p.URI())
	if uri == "" || uri == strings.ToLower(schemaUser) || uri == strings.ToLower(schemaGroup) {
		return m
	}
	c, _ := m[uri].(map[string]any)
	return c
}

// valuesAt collects the values at a path: a sub-attribute of a complex or
// of every element of a multi-valued attribute ("value" when none named).
func valuesAt(m map[string]any, p filter.AttributePath) []any {
	v := container(m, p)[strings.ToLower(p.AttributeName)]
	sub := strings.ToLower(p.SubAttributeName())
	var out []any
	pick := func(x any) {
		if obj, ok := x.(map[string]any); ok {
			key := sub
			if key == "" {
				key = "value"
			}
			if val, ok := obj[key]; ok {
				out = append(out, val)
			}
			return
		}
		if sub == "" && x != nil {
			out = append(out, x)
		}
	}
	if list, ok := v.([]any); ok {
		for _, x := range list {
			pick(x)
		}
		return out
	}
	pick(v)
	return out
}

// elements are the objects of a multi-valued attribute (or a complex
// one's object).
func elements(m map[string]any, p filter.AttributePath) []map[string]any {
	var out []map[string]any
	switch v := container(m, p)[strings.ToLower(p.AttributeName)].(type) {
	case []any:
		for _, x := range v {
			if obj, ok := x.(map[string]any); ok {
				out = append(out, obj)
			}
		}
	case map[string]any:
		out = append(out, v)
	}
	return out
}

// compareAny reports whether any value passes the comparison.
func compareAny(vals []any, op filter.CompareOperator, want any, exact bool) bool {
	if op == filter.PR {
		for _, v := range vals {
			if s, ok := v.(string); !ok || s != "" {
				return true
			}
		}
		return false
	}
	for _, v := range vals {
		if compare(v, op, want, exact) {
			return true
		}
	}
	return false
}

func compare(got any, op filter.CompareOperator, want any, exact bool) bool {
	if gb, ok := got.(bool); ok {
		wb, ok := want.(bool)
		return ok && (op == filter.EQ && gb == wb || op == filter.NE && gb != wb)
	}
	g, w := fmt.Sprint(got), fmt.Sprint(want)
	if !exact {
		g, w = strings.ToLower(g), strings.ToLower(w)
	}
	switch op {
	case filter.EQ:
		return g == w
	case filter.NE:
		return g != w
	case filter.CO:
		return strings.Contains(g, w)
	case filter.SW:
		return strings.HasPrefix(g, w)
	case filter.EW:
		return strings.HasSuffix(g, w)
	case filter.GT:
		return g > w
	case filter.GE:
		return g >= w
	case filter.LT:
		return g < w
	case filter.LE:
		return g <= w
	}
	return false
}

// simpleEq reads a filter of the form `<attr> eq "<value>"`: the shape
// Entra ID and Okta send to find one user or group, answered by index.
func simpleEq(e filter.Expression) (attr, value string, ok bool) {
	x, isAttr := e.(*filter.AttributeExpression)
	if !isAttr || x.Operator != filter.EQ || x.AttributePath.SubAttribute != nil || container(map[string]any{}, x.AttributePath) == nil {
		return "", "", false
	}
	v, isStr := x.CompareValue.(string)
	return strings.ToLower(x.AttributePath.AttributeName), v, isStr
}
