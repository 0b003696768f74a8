package scim

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	filter "github.com/scim2/filter-parser/v2"
)

// PATCH (RFC 7644 §3.5.2) on a representation (a lower-cased map). It
// takes the shapes identity providers send: Entra ID's capitalised ops,
// "False" as a string, emails[type eq "work"].value and members lists to
// add or remove; Okta's replace without a path whose value is an object,
// and members[value eq "…"] to remove.

// maxOperations bounds the operations of one PATCH.
const maxOperations = 1000

// patchOps reads a PatchOp message.
func patchOps(m map[string]any) ([]map[string]any, error) {
	if err := checkSchemas(m, schemaPatch); err != nil {
		return nil, err
	}
	for k := range m {
		if k != "schemas" && k != "operations" {
			return nil, badRequest(typeInvalidSyntax, "%q is not part of a PatchOp message; send schemas and Operations", k)
		}
	}
	list, ok := m["operations"].([]any)
	if !ok || len(list) == 0 {
		return nil, badRequest(typeInvalidSyntax, "Operations is required: a list of {op, path, value}")
	}
	if len(list) > maxOperations {
		return nil, badRequest(typeInvalidSyntax, "%d operations; the limit is %d", len(list), maxOperations)
	}
	out := make([]map[string]any, len(list))
	for i, x := range list {
		if out[i], ok = x.(map[string]any); !ok {
			return nil, badRequest(typeInvalidSyntax, "operation %d is not an object {op, path, value}", i+1)
		}
	}
	return out, nil
}

// applyPatch applies the operations to res in order; known lists the
// resource's attributes.
func applyPatch(res map[string]any, ops []map[string]any, known map[string]bool) error {
	for i, op := range ops {
		if err := applyOp(res, op, known); err != nil {
			return fmt.Errorf("operation %d: %w", i+1, err)
		}
	}
	return nil
}

func applyOp(res map[string]any, op map[string]any, known map[string]bool) error {
	name, _ := op["op"].(string)
	name = strings.ToLower(name)
	if name != "add" && name != "replace" && name != "remove" {
		return badRequest(typeInvalidSyntax, "op %q must be add, replace or remove", op["op"])
	}
	raw, _ := op["path"].(string)
	value := op["value"]
	if raw == "" {
		if name == "remove" {
			return badRequest(typeNoTarget, "remove needs a path")
		}
		obj, ok := value.(map[string]any)
		if !ok {
			return badRequest(typeInvalidValue, "%s without a path needs an object value", name)
		}
		for k, v := range obj {
			if err := applyPath(res, k, name, v, known); err != nil {
				return err
			}
		}
		return nil
	}
	return applyPath(res, raw, name, value, known)
}

// applyPath applies one operation at one path.
func applyPath(res map[string]any, raw, op string, value any, known map[string]bool) error {
	if strings.EqualFold(raw, enterpriseKey) { // an extension's whole object
		obj, ok := value.(map[string]any)
		if !ok {
			return badRequest(typeInvalidValue, "%s must be an object", schemaEnterprise)
		}
		for k, v := range obj {
			if err := applyPath(res, schemaEnterprise+":"+k, op, v, known); err != nil {
				return err
			}
		}
		return nil
	}
	p, err := filter.ParsePath([]byte(raw))
	if err != nil {
		return badRequest(typeInvalidPath, "%q is not an attribute path (RFC 7644 §3.5.2)", raw)
	}
	if err := knownPath(p.AttributePath, known, typeInvalidPath); err != nil {
		return err
	}
	if n := strings.ToLower(p.AttributePath.AttributeName); (n == "id" || n == "meta" || n == "schemas") && p.AttributePath.URI() == "" {
		if n == "id" && op == "replace" && value == res["id"] {
			return nil // Okta sends the id back in a replace of the whole resource
		}
		return &Error{Status: 400, ScimType: typeMutability, Detail: fmt.Sprintf("%s cannot be changed", p.AttributePath.AttributeName)}
	}
	c := container(res, p.AttributePath)
	if c == nil {
		c = map[string]any{}
		res[strings.ToLower(p.AttributePath.URI())] = c
	}
	if p.ValueExpression != nil {
		return patchFiltered(c, p, op, value)
	}
	return patchPlain(c, strings.ToLower(p.AttributePath.AttributeName), strings.ToLower(p.AttributePath.SubAttributeName()), op, value)
}

// patchPlain applies an operation to attr (or its sub-attribute).
func patchPlain(c map[string]any, attr, sub, op string, value any) error {
	if sub != "" {
		obj, _ := c[attr].(map[string]any)
		if obj == nil {
			obj = map[string]any{}
			c[attr] = obj
		}
		if op == "remove" {
			delete(obj, sub)
		} else {
			obj[sub] = value
		}
		return nil
	}
	switch op {
	case "replace":
		c[attr] = value
	case "add":
		c[attr] = added(c[attr], value)
	case "remove":
		list, isList := c[attr].([]any)
		drop, hasValues := value.([]any)
		if !isList || !hasValues {
			delete(c, attr)
			return nil
		}
		c[attr] = slices.DeleteFunc(list, func(x any) bool { return slices.ContainsFunc(drop, func(d any) bool { return sameValue(x, d) }) })
	}
	return nil
}

// added is value added to cur: a list appended (without duplicates), an
// object merged, anything else replaced.
func added(cur, value any) any {
	switch c := cur.(type) {
	case []any:
		add, ok := value.([]any)
		if !ok {
			add = []any{value}
		}
		for _, x := range add {
			if !slices.ContainsFunc(c, func(y any) bool { return sameValue(x, y) }) {
				c = append(c, x)
			}
		}
		return c
	case map[string]any:
		if obj, ok := value.(map[string]any); ok {
			for k, v := range obj {
				c[k] = v
			}
			return c
		}
	}
	return value
}

// sameValue: two elements of a multi-valued attribute with the same
// "value" are one.
func sameValue(a, b any) bool {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		return fmt.Sprint(am["value"]) == fmt.Sprint(bm["value"])
	}
	return fmt.Sprint(a) == fmt.Sprint(b)
}

// patchFiltered applies an operation to the elements of a multi-valued
// attribute the path's filter selects. An add or replace that selects
// none adds an element when the filter is attr eq "x" (Entra ID's
// emails[type eq "work"].value on a user with no work email).
func patchFiltered(c map[string]any, p filter.Path, op string, value any) error {
	attr, sub := strings.ToLower(p.AttributePath.AttributeName), strings.ToLower(p.SubAttributeName())
	list, _ := c[attr].([]any)
	hit := false
	var kept []any
	for _, x := range list {
		el, ok := x.(map[string]any)
		if !ok || !match(p.ValueExpression, el) {
			kept = append(kept, x)
			continue
		}
		hit = true
		switch {
		case op == "remove" && sub == "":
			continue
		case op == "remove":
			delete(el, sub)
		case sub != "":
			el[sub] = value
		default:
			if obj, ok := value.(map[string]any); ok {
				for k, v := range obj {
					el[k] = v
				}
			}
		}
		kept = append(kept, el)
	}
	if !hit && op != "remove" {
		el, ok := newElement(p, value)
		if !ok {
			return badRequest(typeNoTarget, "no element of %s matches %s", attr, p.ValueExpression)
		}
		kept = append(kept, el)
	}
	c[attr] = kept
	return nil
}

// newElement builds the element a filter of the form attr eq "x"
// describes, with the sub-attribute set to value.
func newElement(p filter.Path, value any) (map[string]any, bool) {
	eq, ok := p.ValueExpression.(*filter.AttributeExpression)
	if !ok || eq.Operator != filter.EQ {
		return nil, false
	}
	el := map[string]any{strings.ToLower(eq.AttributePath.AttributeName): eq.CompareValue}
	if sub := strings.ToLower(p.SubAttributeName()); sub != "" {
		el[sub] = value
	} else if obj, ok := value.(map[string]any); ok {
		for k, v := range obj {
			el[k] = v
		}
	}
	return el, true
}

// patchResource applies the request's PatchOp to a resource as stored:
// read gives its SCIM form, save writes the patched form only if the
// resource still has the version it was read at (errStale otherwise).
// A resource changed meanwhile is read and patched again, up to three
// times; with If-Match the request fails instead.
func patchResource(r *http.Request, kind string, known map[string]bool, read func() (map[string]any, error),
	save func(res map[string]any, tag string) (answer, error)) (answer, error) {
	body, err := readBody(r)
	if err != nil {
		return answer{}, err
	}
	ops, err := patchOps(body)
	if err != nil {
		return answer{}, err
	}
	for range 3 {
		rendered, err := read()
		if err != nil {
			return answer{}, err
		}
		tag := version(rendered)
		if want := ifMatch(r); want != "" && want != tag {
			return answer{}, errPrecondition
		}
		res := asMap(rendered)
		if err := applyPatch(res, ops, known); err != nil {
			return answer{}, err
		}
		a, err := save(res, tag)
		switch {
		case errors.Is(err, errStale) && ifMatch(r) == "":
			continue
		case errors.Is(err, errStale):
			return answer{}, errPrecondition
		case err != nil:
			return answer{}, err
		}
		return a, nil
	}
	return answer{}, &Error{Status: http.StatusConflict, Detail: fmt.Sprintf("the %s kept changing while this PATCH applied; send it again", kind)}
}
