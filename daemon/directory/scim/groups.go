package scim

import (
	"net/http"
	"strings"

	"github.com/keyfleet/keyfleet/daemon/core"
)

// groupKnown are the Group attributes (RFC 7643 §4.2).
var groupKnown = map[string]bool{"schemas": true, "id": true, "externalid": true, "meta": true, "displayname": true, "members": true}

// maxMembers bounds a group's members.
const maxMembers = 100000

// groupDoc checks a Group resource and returns what keyfleet keeps.
func groupDoc(m map[string]any) (core.DirectoryGroup, error) {
	for k := range m {
		if !groupKnown[k] {
			return core.DirectoryGroup{}, badRequest(typeInvalidSyntax, "%q is not a Group attribute (RFC 7643 §4.2)", k)
		}
	}
	var g core.DirectoryGroup
	var err error
	if g.DisplayName, err = stringAt(m, "displayname"); err != nil {
		return g, err
	}
	if g.ExternalID, err = stringAt(m, "externalid"); err != nil {
		return g, err
	}
	list, ok := m["members"].([]any)
	if m["members"] != nil && !ok {
		return g, badRequest(typeInvalidValue, "members must be a list of {\"value\": user id}")
	}
	if len(list) > maxMembers {
		return g, badRequest(typeInvalidValue, "%d members; the limit is %d", len(list), maxMembers)
	}
	for _, x := range list {
		id, err := memberID(x)
		if err != nil {
			return g, err
		}
		g.Members = append(g.Members, id)
	}
	return g, nil
}

// memberID reads one member: a User's id.
func memberID(x any) (string, error) {
	el, ok := x.(map[string]any)
	if !ok {
		return "", badRequest(typeInvalidValue, "a member must be {\"value\": user id}")
	}
	for k := range el {
		if k != "value" && k != "display" && k != "$ref" && k != "type" {
			return "", badRequest(typeInvalidSyntax, "%q is not a member attribute", k)
		}
	}
	if t, _ := el["type"].(string); t != "" && !strings.EqualFold(t, "User") {
		return "", badRequest(typeInvalidValue, "keyfleet groups hold users, not %s members", t)
	}
	id, _ := el["value"].(string)
	if id == "" {
		return "", badRequest(typeInvalidValue, "a member needs a value: the user's id")
	}
	return id, nil
}

// renderGroup is a group's SCIM representation.
func (h *Handler) renderGroup(g core.DirectoryGroup) map[string]any {
	members := make([]any, len(g.Members))
	for i, id := range g.Members {
		members[i] = map[string]any{"value": id, "$ref": h.base + "/Users/" + id, "type": "User"}
	}
	m := map[string]any{"schemas": []string{schemaGroup}, "id": g.ID, "displayName": g.DisplayName, "members": members,
		"meta": map[string]any{"resourceType": "Group", "created": g.CreatedAt, "lastModified": g.UpdatedAt, "location": h.base + "/Groups/" + g.ID}}
	if g.ExternalID != "" {
		m["externalId"] = g.ExternalID
	}
	return m
}

func (h *Handler) groupAnswer(status int, g core.DirectoryGroup) answer {
	m := h.renderGroup(g)
	return answer{status: status, body: m, etag: withVersion(m)}
}

func (h *Handler) groupCheck(want string, stale error) func(core.DirectoryGroup) error {
	if want == "" {
		return nil
	}
	return func(cur core.DirectoryGroup) error {
		if version(h.renderGroup(cur)) != want {
			return stale
		}
		return nil
	}
}

func (h *Handler) listGroups(r *http.Request, p core.Principal) (answer, error) {
	offset, count, err := h.paging(r)
	if err != nil {
		return answer{}, err
	}
	matchAll := func(core.DirectoryGroup) bool { return true }
	if raw := r.URL.Query().Get("filter"); raw != "" {
		expr, err := parseFilter(raw, groupKnown)
		if err != nil {
			return answer{}, err
		}
		matchAll = func(g core.DirectoryGroup) bool { return match(expr, asMap(h.renderGroup(g))) }
	}
	groups, total, err := h.svc.SCIMGroups(withCtx(r), p, matchAll, offset, count)
	if err != nil {
		return answer{}, err
	}
	out := make([]map[string]any, len(groups))
	for i, g := range groups {
		out[i] = h.renderGroup(g)
		withVersion(out[i])
	}
	return h.page(out, total, offset, r), nil
}

func (h *Handler) getGroup(r *http.Request, p core.Principal) (answer, error) {
	g, err := h.svc.SCIMGroup(withCtx(r), p, r.PathValue("id"))
	if err != nil {
		return answer{}, err
	}
	a := h.groupAnswer(http.StatusOK, g)
	a.body = project(a.body.(map[string]any), r)
	return a, nil
}

func groupBody(r *http.Request) (core.DirectoryGroup, error) {
	m, err := readBody(r)
	if err != nil {
		return core.DirectoryGroup{}, err
	}
	if err := checkSchemas(m, schemaGroup); err != nil {
		return core.DirectoryGroup{}, err
	}
	return groupDoc(m)
}

func (h *Handler) createGroup(r *http.Request, p core.Principal) (answer, error) {
	g, err := groupBody(r)
	if err != nil {
		return answer{}, err
	}
	g, err = h.svc.SaveSCIMGroup(withCtx(r), p, h.src, g, nil)
	if err != nil {
		return answer{}, err
	}
	return h.groupAnswer(http.StatusCreated, g), nil
}

func (h *Handler) replaceGroup(r *http.Request, p core.Principal) (answer, error) {
	g, err := groupBody(r)
	if err != nil {
		return answer{}, err
	}
	g.ID = r.PathValue("id")
	g, err = h.svc.SaveSCIMGroup(withCtx(r), p, h.src, g, h.groupCheck(ifMatch(r), errPrecondition))
	if err != nil {
		return answer{}, err
	}
	return h.groupAnswer(http.StatusOK, g), nil
}

// patchGroup applies a PatchOp (members added and removed, a new
// displayName) to the group as stored (patchResource).
func (h *Handler) patchGroup(r *http.Request, p core.Principal) (answer, error) {
	id := r.PathValue("id")
	read := func() (map[string]any, error) {
		cur, err := h.svc.SCIMGroup(withCtx(r), p, id)
		if err != nil {
			return nil, err
		}
		return h.renderGroup(cur), nil
	}
	save := func(res map[string]any, tag string) (answer, error) {
		g, err := groupDoc(res)
		if err != nil {
			return answer{}, err
		}
		g.ID = id
		g, err = h.svc.SaveSCIMGroup(withCtx(r), p, h.src, g, h.groupCheck(tag, errStale))
		if err != nil {
			return answer{}, err
		}
		return h.groupAnswer(http.StatusOK, g), nil
	}
	return patchResource(r, "group", groupKnown, read, save)
}

func (h *Handler) deleteGroup(r *http.Request, p core.Principal) (answer, error) {
	if err := h.svc.DeleteSCIMGroup(withCtx(r), p, h.src, r.PathValue("id"), h.groupCheck(ifMatch(r), errPrecondition)); err != nil {
		return answer{}, err
	}
	return answer{status: http.StatusNoContent}, nil
}
