package scim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// A resource travels as a map with lower-cased keys (SCIM attribute names
// are case-insensitive, RFC 7643 §2.1): requests are read into one,
// PATCH operates on one, and it is checked against the schema and turned
// into what keyfleet keeps.

// enterpriseKey is the enterprise extension's key in a lower-cased map.
var enterpriseKey = strings.ToLower(schemaEnterprise)

// Link attributes kept for a SCIM client (core.ExternalLink.Attributes).
const (
	keepFormatted  = "name.formatted"
	keepGiven      = "name.givenName"
	keepFamily     = "name.familyName"
	keepEmployee   = "employeeNumber"
	keepDepartment = "department"
	keepManager    = "manager"
)

// userKnown are RFC 7643 §4.1's User attributes (and the common ones):
// keyfleet keeps userName, name, displayName, emails, active and
// externalId, and ignores the rest. Anything else is an unknown attribute.
var userKnown = map[string]bool{
	"schemas": true, "id": true, "externalid": true, "meta": true, "username": true, "name": true, "displayname": true,
	"nickname": true, "profileurl": true, "title": true, "usertype": true, "preferredlanguage": true, "locale": true,
	"timezone": true, "active": true, "password": true, "emails": true, "phonenumbers": true, "ims": true, "photos": true,
	"addresses": true, "groups": true, "entitlements": true, "roles": true, "x509certificates": true, enterpriseKey: true,
}

var enterpriseKnown = map[string]bool{
	"employeenumber": true, "costcenter": true, "organization": true, "division": true, "department": true, "manager": true,
}

// lowerKeys returns v with every object key lower-cased.
func lowerKeys(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[strings.ToLower(k)] = lowerKeys(val)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = lowerKeys(val)
		}
		return out
	}
	return v
}

// decodeResource reads a request body into a lower-cased map.
func decodeResource(body []byte) (map[string]any, error) {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, badRequest(typeInvalidSyntax, "the body is not JSON: %v", err)
	}
	m, ok := lowerKeys(v).(map[string]any)
	if !ok {
		return nil, badRequest(typeInvalidSyntax, "the body must be a JSON object")
	}
	return m, nil
}

// checkSchemas checks a resource names the core schema it must and no
// schema keyfleet does not know.
func checkSchemas(m map[string]any, core string, allowed ...string) error {
	list, ok := m["schemas"].([]any)
	if !ok || len(list) == 0 {
		return badRequest(typeInvalidSyntax, "schemas is required: send [%q]", core)
	}
	found := false
	for _, s := range list {
		name, _ := s.(string)
		switch {
		case strings.EqualFold(name, core):
			found = true
		case !containsFold(allowed, name):
			return badRequest(typeInvalidSyntax, "schema %q is not one keyfleet offers here; GET /Schemas lists them", name)
		}
	}
	if !found {
		return badRequest(typeInvalidSyntax, "schemas must include %q", core)
	}
	return nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// userEntry checks a User resource against the schema and returns what
// keyfleet keeps of it.
func userEntry(m map[string]any) (core.DirectoryEntry, error) {
	for k := range m {
		if !userKnown[k] {
			return core.DirectoryEntry{}, badRequest(typeInvalidSyntax, "%q is not a User attribute (RFC 7643 §4.1); GET /Schemas lists what keyfleet keeps", k)
		}
	}
	var e core.DirectoryEntry
	var err error
	if e.Username, err = stringAt(m, "username"); err != nil {
		return e, err
	}
	if e.Username == "" {
		return e, badRequest(typeInvalidValue, "userName is required")
	}
	e.Username = strings.ToLower(e.Username)
	if e.ExternalID, err = stringAt(m, "externalid"); err != nil {
		return e, err
	}
	active, err := boolAt(m, "active", true)
	if err != nil {
		return e, err
	}
	e.Disabled = !active
	if e.Email, err = primaryEmail(m); err != nil {
		return e, err
	}
	if e.Attributes, err = keptAttributes(m); err != nil {
		return e, err
	}
	if e.DisplayName, err = stringAt(m, "displayname"); err != nil {
		return e, err
	}
	if e.DisplayName == "" {
		e.DisplayName = displayFrom(e.Attributes)
	}
	return e, nil
}

func displayFrom(a map[string]string) string {
	if a[keepFormatted] != "" {
		return a[keepFormatted]
	}
	return strings.TrimSpace(a[keepGiven] + " " + a[keepFamily])
}

// stringAt reads an optional string attribute.
func stringAt(m map[string]any, key string) (string, error) {
	switch v := m[key].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	}
	return "", badRequest(typeInvalidValue, "%s must be a string", key)
}

// boolAt reads an optional boolean, also as "True"/"False" (Entra ID
// sends strings in PATCH values).
func boolAt(m map[string]any, key string, def bool) (bool, error) {
	switch v := m[key].(type) {
	case nil:
		return def, nil
	case bool:
		return v, nil
	case string:
		switch strings.ToLower(v) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, badRequest(typeInvalidValue, "%s must be true or false", key)
}

// primaryEmail is the primary email, else the work one, else the first.
func primaryEmail(m map[string]any) (string, error) {
	list, ok := m["emails"].([]any)
	if m["emails"] != nil && !ok {
		return "", badRequest(typeInvalidValue, "emails must be a list of {value, type, primary}")
	}
	best, rank := "", 0
	for _, x := range list {
		em, ok := x.(map[string]any)
		if !ok {
			return "", badRequest(typeInvalidValue, "emails must be a list of {value, type, primary}")
		}
		v, err := stringAt(em, "value")
		if err != nil {
			return "", err
		}
		primary, _ := boolAt(em, "primary", false)
		typ, _ := em["type"].(string)
		r := 1
		if strings.EqualFold(typ, "work") {
			r = 2
		}
		if primary {
			r = 3
		}
		if r > rank && v != "" {
			best, rank = v, r
		}
	}
	return best, nil
}

// keptAttributes reads the name parts and the enterprise attributes
// keyfleet keeps.
func keptAttributes(m map[string]any) (map[string]string, error) {
	out := map[string]string{}
	if name, ok := m["name"].(map[string]any); ok {
		for key, keep := range map[string]string{"formatted": keepFormatted, "givenname": keepGiven, "familyname": keepFamily} {
			v, err := stringAt(name, key)
			if err != nil {
				return nil, err
			}
			if v != "" {
				out[keep] = v
			}
		}
	} else if m["name"] != nil {
		return nil, badRequest(typeInvalidValue, "name must be an object {formatted, givenName, familyName}")
	}
	if err := enterpriseAttributes(m, out); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func enterpriseAttributes(m map[string]any, out map[string]string) error {
	ent, ok := m[enterpriseKey].(map[string]any)
	if m[enterpriseKey] != nil && !ok {
		return badRequest(typeInvalidValue, "%s must be an object", schemaEnterprise)
	}
	for k := range ent {
		if !enterpriseKnown[k] {
			return badRequest(typeInvalidSyntax, "%q is not an enterprise User attribute (RFC 7643 §4.3)", k)
		}
	}
	for key, keep := range map[string]string{"employeenumber": keepEmployee, "department": keepDepartment} {
		v, err := stringAt(ent, key)
		if err != nil {
			return err
		}
		if v != "" {
			out[keep] = v
		}
	}
	mgr := ent["manager"]
	if list, ok := mgr.([]any); ok && len(list) <= 1 { // Entra ID sends [{"value": …}]
		mgr = nil
		if len(list) == 1 {
			mgr = list[0]
		}
	}
	switch mgr := mgr.(type) {
	case nil:
	case string: // some clients send the id alone
		if mgr != "" {
			out[keepManager] = mgr
		}
	case map[string]any:
		if v, _ := mgr["value"].(string); v != "" {
			out[keepManager] = v
		}
	default:
		return badRequest(typeInvalidValue, "manager must be {\"value\": id}")
	}
	return nil
}

// renderUser is a user's SCIM representation (without meta.version,
// which is its hash).
func (h *Handler) renderUser(u core.User) map[string]any {
	attrs := u.External.Attributes
	m := map[string]any{"schemas": []string{schemaUser}, "id": u.ID, "userName": u.Username, "active": u.Status == api.UserActive}
	if u.External.ID != "" {
		m["externalId"] = u.External.ID
	}
	if u.DisplayName != "" {
		m["displayName"] = u.DisplayName
	}
	name := map[string]any{}
	for key, keep := range map[string]string{"formatted": keepFormatted, "givenName": keepGiven, "familyName": keepFamily} {
		if attrs[keep] != "" {
			name[key] = attrs[keep]
		}
	}
	if len(name) > 0 {
		m["name"] = name
	}
	if u.Email != "" {
		m["emails"] = []any{map[string]any{"value": u.Email, "type": "work", "primary": true}}
	}
	ent := map[string]any{}
	for key, keep := range map[string]string{"employeeNumber": keepEmployee, "department": keepDepartment} {
		if attrs[keep] != "" {
			ent[key] = attrs[keep]
		}
	}
	if attrs[keepManager] != "" {
		ent["manager"] = map[string]any{"value": attrs[keepManager]}
	}
	if len(ent) > 0 {
		m[schemaEnterprise] = ent
		m["schemas"] = []string{schemaUser, schemaEnterprise}
	}
	m["meta"] = map[string]any{"resourceType": "User", "created": u.CreatedAt, "lastModified": u.UpdatedAt,
		"location": h.base + "/Users/" + u.ID}
	return m
}

// version is a representation's ETag: a weak tag of its hash.
func version(m map[string]any) string {
	meta, _ := m["meta"].(map[string]any)
	saved := meta["version"]
	delete(meta, "version")
	b, _ := json.Marshal(m)
	if saved != nil {
		meta["version"] = saved
	}
	sum := sha256.Sum256(b)
	return fmt.Sprintf(`W/"%s"`, hex.EncodeToString(sum[:8]))
}

// withVersion sets meta.version and returns the tag.
func withVersion(m map[string]any) string {
	v := version(m)
	m["meta"].(map[string]any)["version"] = v
	return v
}
