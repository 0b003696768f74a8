package scim

// Schema URNs (RFC 7643 §8.7, RFC 7644 §3).
const (
	schemaUser         = "urn:ietf:params:scim:schemas:core:2.0:User"
	schemaGroup        = "urn:ietf:params:scim:schemas:core:2.0:Group"
	schemaEnterprise   = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	schemaList         = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	schemaPatch        = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	schemaError        = "urn:ietf:params:scim:api:messages:2.0:Error"
	schemaSPC          = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	schemaResourceType = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	schemaSchema       = "urn:ietf:params:scim:schemas:core:2.0:Schema"
)

// attr describes one attribute in a Schema resource (RFC 7643 §7).
type attr struct {
	Name          string `json:"name"`
	Type          string `json:"type"`
	MultiValued   bool   `json:"multiValued"`
	Description   string `json:"description,omitempty"`
	Required      bool   `json:"required"`
	CaseExact     bool   `json:"caseExact"`
	Mutability    string `json:"mutability"`
	Returned      string `json:"returned"`
	Uniqueness    string `json:"uniqueness"`
	SubAttributes []attr `json:"subAttributes,omitempty"`
}

func str(name, desc string) attr {
	return attr{Name: name, Type: "string", Description: desc, Mutability: "readWrite", Returned: "default", Uniqueness: "none"}
}

func (a attr) required() attr        { a.Required = true; return a }
func (a attr) multi() attr           { a.MultiValued = true; return a }
func (a attr) typed(t string) attr   { a.Type = t; return a }
func (a attr) unique() attr          { a.Uniqueness = "server"; return a }
func (a attr) mutable(m string) attr { a.Mutability = m; return a }
func (a attr) sub(s ...attr) attr    { a.Type, a.SubAttributes = "complex", s; return a }

// userAttrs are the User attributes keyfleet keeps. The other attributes
// of RFC 7643's User schema (title, phoneNumbers, addresses, …) are
// accepted and not kept: keyfleet needs none of them.
var userAttrs = []attr{
	str("userName", "keyfleet's username, lower-cased: 1-64 of a-z 0-9 . _ @ -").required().unique(),
	str("name", "").sub(str("formatted", ""), str("givenName", ""), str("familyName", "")),
	str("displayName", ""),
	str("emails", "the first (or primary) is keyfleet's email").multi().sub(str("value", ""), str("type", ""), str("primary", "").typed("boolean")),
	str("active", "false disables the user at once and suspends their factors").typed("boolean"),
}

var enterpriseAttrs = []attr{
	str("employeeNumber", ""), str("department", ""),
	str("manager", "").sub(str("value", "")),
}

var groupAttrs = []attr{
	str("displayName", "what the group gives its members is configured by this name (docs/directory.md)").required(),
	str("members", "").multi().sub(str("value", "a User id").mutable("immutable"), str("display", "").mutable("readOnly"),
		str("type", "").mutable("immutable")),
}

func schemaResource(base, id, name, desc string, attrs []attr) map[string]any {
	return map[string]any{"schemas": []string{schemaSchema}, "id": id, "name": name, "description": desc, "attributes": attrs,
		"meta": map[string]string{"resourceType": "Schema", "location": base + "/Schemas/" + id}}
}

func (h *Handler) schemas() []map[string]any {
	return []map[string]any{
		schemaResource(h.base, schemaUser, "User", "A person keyfleet manages the factors of", userAttrs),
		schemaResource(h.base, schemaEnterprise, "EnterpriseUser", "Enterprise user attributes keyfleet keeps", enterpriseAttrs),
		schemaResource(h.base, schemaGroup, "Group", "A group whose members get a keyfleet group or role", groupAttrs),
	}
}

func (h *Handler) resourceTypes() []map[string]any {
	return []map[string]any{
		{"schemas": []string{schemaResourceType}, "id": "User", "name": "User", "endpoint": "/Users", "schema": schemaUser,
			"schemaExtensions": []map[string]any{{"schema": schemaEnterprise, "required": false}},
			"meta":             map[string]string{"resourceType": "ResourceType", "location": h.base + "/ResourceTypes/User"}},
		{"schemas": []string{schemaResourceType}, "id": "Group", "name": "Group", "endpoint": "/Groups", "schema": schemaGroup,
			"meta": map[string]string{"resourceType": "ResourceType", "location": h.base + "/ResourceTypes/Group"}},
	}
}

func (h *Handler) serviceProviderConfig() map[string]any {
	no := map[string]bool{"supported": false}
	return map[string]any{
		"schemas":          []string{schemaSPC},
		"documentationUri": "https://github.com/keyfleet/keyfleet/blob/main/docs/directory.md",
		"patch":            map[string]bool{"supported": true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": true, "maxResults": h.maxResults},
		"changePassword":   no,
		"sort":             no,
		"etag":             map[string]bool{"supported": true},
		"authenticationSchemes": []map[string]any{{
			"type": "oauthbearertoken", "name": "Bearer token",
			"description": "A keyfleet API token of a service account, carrying the scim role and nothing else", "primary": true,
		}},
		"meta": map[string]string{"resourceType": "ServiceProviderConfig", "location": h.base + "/ServiceProviderConfig"},
	}
}
