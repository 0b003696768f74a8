package scim

import (
	"errors"
	"net/http"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// userFilterKnown are the User attributes a filter or PATCH path may name.
var userFilterKnown = map[string]bool{
	"id": true, "externalid": true, "username": true, "displayname": true, "name": true, "emails": true, "active": true,
	"meta": true, enterpriseKey: true,
	// RFC 7643 attributes keyfleet accepts and does not keep: a PATCH may
	// name them (they change nothing), a filter finds nothing by them.
	"nickname": true, "profileurl": true, "title": true, "usertype": true, "preferredlanguage": true, "locale": true,
	"timezone": true, "phonenumbers": true, "ims": true, "photos": true, "addresses": true, "entitlements": true,
	"roles": true, "x509certificates": true, "password": true,
}

// errStale: the resource changed between a PATCH's read and its write.
var errStale = errors.New("changed meanwhile")

// userAnswer is a user's representation with its ETag.
func (h *Handler) userAnswer(status int, u core.User) answer {
	m := h.renderUser(u)
	return answer{status: status, body: m, etag: withVersion(m)}
}

// versionCheck refuses to write over a representation whose tag is not
// want (If-Match, or the version a PATCH read); nil when want is "".
func (h *Handler) versionCheck(want string, stale error) func(core.User) error {
	if want == "" {
		return nil
	}
	return func(cur core.User) error {
		if version(h.renderUser(cur)) != want {
			return stale
		}
		return nil
	}
}

func (h *Handler) listUsers(r *http.Request, p core.Principal) (answer, error) {
	offset, count, err := h.paging(r)
	if err != nil {
		return answer{}, err
	}
	matchAll := func(core.User) bool { return true }
	if raw := r.URL.Query().Get("filter"); raw != "" {
		expr, err := parseFilter(raw, userFilterKnown)
		if err != nil {
			return answer{}, err
		}
		if attr, v, ok := simpleEq(expr); ok && (attr == "username" || attr == "externalid" || attr == "id") {
			return h.lookupUser(r, p, attr, v, offset, count)
		}
		matchAll = func(u core.User) bool { return match(expr, asMap(h.renderUser(u))) }
	}
	users, total, err := h.svc.SCIMUsers(withCtx(r), p, matchAll, offset, count)
	if err != nil {
		return answer{}, err
	}
	return h.page(h.renderUsers(users), total, offset, r), nil
}

// lookupUser answers userName eq, externalId eq and id eq by index.
func (h *Handler) lookupUser(r *http.Request, p core.Principal, attr, v string, offset, count int) (answer, error) {
	var u core.User
	var err error
	switch attr {
	case "username":
		u, err = h.svc.SCIMLookup(withCtx(r), p, v, "")
	case "externalid":
		u, err = h.svc.SCIMLookup(withCtx(r), p, "", v)
	default:
		u, err = h.svc.SCIMUser(withCtx(r), p, v)
	}
	if errors.Is(err, core.ErrNotFound) {
		return h.page(nil, 0, offset, r), nil
	}
	if err != nil {
		return answer{}, err
	}
	if offset > 0 || count == 0 {
		return h.page(nil, 1, offset, r), nil
	}
	return h.page(h.renderUsers([]core.User{u}), 1, offset, r), nil
}

func (h *Handler) renderUsers(us []core.User) []map[string]any {
	out := make([]map[string]any, len(us))
	for i, u := range us {
		out[i] = h.renderUser(u)
		withVersion(out[i])
	}
	return out
}

func (h *Handler) getUser(r *http.Request, p core.Principal) (answer, error) {
	u, err := h.svc.SCIMUser(withCtx(r), p, r.PathValue("id"))
	if err != nil {
		return answer{}, err
	}
	a := h.userAnswer(http.StatusOK, u)
	a.body = project(a.body.(map[string]any), r)
	return a, nil
}

// userBody reads a User resource from a request.
func userBody(r *http.Request) (map[string]any, core.DirectoryEntry, error) {
	m, err := readBody(r)
	if err != nil {
		return nil, core.DirectoryEntry{}, err
	}
	if err := checkSchemas(m, schemaUser, schemaEnterprise); err != nil {
		return nil, core.DirectoryEntry{}, err
	}
	e, err := userEntry(m)
	return m, e, err
}

func (h *Handler) createUser(r *http.Request, p core.Principal) (answer, error) {
	_, e, err := userBody(r)
	if err != nil {
		return answer{}, err
	}
	u, err := h.svc.ProvisionSCIMUser(withCtx(r), p, h.src, "", e, nil)
	if err != nil {
		return answer{}, err
	}
	return h.userAnswer(http.StatusCreated, u), nil
}

// replaceUser is PUT: the resource as sent. A body without active leaves
// the user's status as it is.
func (h *Handler) replaceUser(r *http.Request, p core.Principal) (answer, error) {
	m, e, err := userBody(r)
	if err != nil {
		return answer{}, err
	}
	id := r.PathValue("id")
	if _, given := m["active"]; !given {
		cur, err := h.svc.SCIMUser(withCtx(r), p, id)
		if err != nil {
			return answer{}, err
		}
		e.Disabled = cur.Status != api.UserActive
	}
	u, err := h.svc.ProvisionSCIMUser(withCtx(r), p, h.src, id, e, h.versionCheck(ifMatch(r), errPrecondition))
	if err != nil {
		return answer{}, err
	}
	return h.userAnswer(http.StatusOK, u), nil
}

// patchUser applies a PatchOp to the user as stored (patchResource).
func (h *Handler) patchUser(r *http.Request, p core.Principal) (answer, error) {
	id := r.PathValue("id")
	read := func() (map[string]any, error) {
		cur, err := h.svc.SCIMUser(withCtx(r), p, id)
		if err != nil {
			return nil, err
		}
		return h.renderUser(cur), nil
	}
	save := func(res map[string]any, tag string) (answer, error) {
		e, err := userEntry(res)
		if err != nil {
			return answer{}, err
		}
		u, err := h.svc.ProvisionSCIMUser(withCtx(r), p, h.src, id, e, h.versionCheck(tag, errStale))
		if err != nil {
			return answer{}, err
		}
		return h.userAnswer(http.StatusOK, u), nil
	}
	return patchResource(r, "user", userFilterKnown, read, save)
}

// deleteUser disables the user at once and suspends their factors;
// deleting them for good is a two-person request in keyfleet.
func (h *Handler) deleteUser(r *http.Request, p core.Principal) (answer, error) {
	check := func(u core.User) error { return h.versionCheck(ifMatch(r), errPrecondition)(u) }
	if ifMatch(r) == "" {
		check = nil
	}
	if err := h.svc.DeprovisionSCIMUser(withCtx(r), p, h.src, r.PathValue("id"), check); err != nil {
		return answer{}, err
	}
	return answer{status: http.StatusNoContent}, nil
}
