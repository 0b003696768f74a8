package web

import (
	"net/http"
	"slices"
	"strings"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// Managing users from the dashboard: create, edit (name, email, groups,
// roles), disable (a request a second person approves) and enable. Every
// call goes through core, so a role beyond user is granted only through
// a user.access request (docs/security.md, "Granting privilege is
// two-person"), and a group a policy rule matches on is left the same way.

// splitList reads a comma- or line-separated list from a form field.
func splitList(s string) []string {
	out := []string{}
	for _, v := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		if v = strings.TrimSpace(v); v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// formRoles reads the ticked roles of a form ("role" checkboxes).
func formRoles(rq *request) []string {
	if err := rq.r.ParseForm(); err != nil {
		return nil
	}
	out := []string{}
	for _, r := range rq.r.PostForm["role"] {
		if slices.Contains(api.AllRoles, r) && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// createUser makes a person or a service account. Roles beyond user (or
// service) wait for a second person; the page says so and links the
// request.
func (h *handler) createUser(rq *request) error {
	kind := rq.r.PostFormValue("kind")
	if kind != api.KindService {
		kind = api.KindPerson
	}
	in := api.CreateUser{Username: strings.TrimSpace(rq.r.PostFormValue("username")), DisplayName: rq.r.PostFormValue("display_name"),
		Email: rq.r.PostFormValue("email"), Kind: kind, Groups: splitList(rq.r.PostFormValue("groups")), Roles: formRoles(rq)}
	u, a, err := h.svc.CreateUser(rq.ctx, rq.p, in)
	if err != nil {
		return err
	}
	msg := u.Username + " is created."
	if a.ID != "" {
		msg += " The roles " + a.Params["grant_roles"] + " wait for a second person (" + requestLink(a) + ")."
	}
	return rq.backToUser(u.ID, msg)
}

// requestLink names a request for a flash message.
func requestLink(a core.Approval) string { return "request " + a.ID + " on the approvals page" }

// editUser changes a user's name, email, groups and roles. What needs a
// second person (a role granted, a stricter group left, approvers thinned
// out) waits as a request; the rest changes at once.
func (h *handler) editUser(rq *request) error {
	name, email := rq.r.PostFormValue("display_name"), rq.r.PostFormValue("email")
	groups, roles := splitList(rq.r.PostFormValue("groups")), formRoles(rq)
	in := api.UpdateUser{DisplayName: &name, Email: &email, Groups: &groups}
	if rq.r.PostFormValue("roles_shown") != "" {
		in.Roles = &roles
	}
	u, a, err := h.svc.UpdateUser(rq.ctx, rq.p, rq.r.PathValue("id"), in)
	if err != nil {
		return err
	}
	msg := "Saved."
	if a.ID != "" {
		msg = "Saved what may change at once. " + accessWords(a) + " waits for a second person (" + requestLink(a) + ")."
	}
	return rq.backToUser(u.ID, msg)
}

// accessWords says what a user.access request will do, in words.
func accessWords(a core.Approval) string {
	var parts []string
	if g := a.Params["grant_roles"]; g != "" {
		parts = append(parts, "granting "+g)
	}
	if r := a.Params["remove_roles"]; r != "" {
		parts = append(parts, "removing "+r)
	}
	if g := a.Params["remove_groups"]; g != "" {
		parts = append(parts, "leaving "+g)
	}
	if len(parts) == 0 {
		return "The change"
	}
	s := strings.Join(parts, ", ")
	return strings.ToUpper(s[:1]) + s[1:]
}

// requestDisable asks for a user to be disabled; a second person approves.
func (h *handler) requestDisable(rq *request) error {
	a, err := h.svc.RequestUserAction(rq.ctx, rq.p, rq.r.PathValue("id"), api.ActionUserDisable, rq.r.PostFormValue("reason"))
	if err != nil {
		return err
	}
	return rq.backToUser(a.TargetID, "Disabling "+a.TargetName+" is requested ("+requestLink(a)+"). They keep working until a second person approves.")
}

// enableUser makes a disabled user active again (at once: it gives back
// only what they had).
func (h *handler) enableUser(rq *request) error {
	u, err := h.svc.EnableUser(rq.ctx, rq.p, rq.r.PathValue("id"))
	if err != nil {
		return err
	}
	return rq.backToUser(u.ID, u.Username+" is enabled again.")
}

// newUserPage is the form for a new user.
func (h *handler) newUserPage(rq *request) error {
	if !rq.p.Allowed(core.CreateUsers) {
		return &pageError{Status: http.StatusForbidden, Msg: "Only administrators create users. Ask one, or import users with the command line."}
	}
	h.render(rq, http.StatusOK, "user_new", "New user", roleChoices(nil))
	return nil
}

// roleChoice is one role checkbox on a user form.
type roleChoice struct {
	Role, Words string
	Held        bool
}

var roleWords = map[string]string{
	api.RoleUser:            "user: their own factors",
	api.RoleAdmin:           "admin: everything (granting it needs another admin)",
	api.RoleSecurityOfficer: "security officer: policy and approvals",
	api.RoleHelpdesk:        "helpdesk: recovery, suspend, reset requests",
	api.RoleEnroller:        "enroller: provisioning keys at the IT desk",
	api.RoleAuditor:         "auditor: read-only, audit log",
	api.RoleService:         "service: applications (service accounts only)",
	api.RoleScim:            "scim: a directory's provisioning client (service accounts only)",
	api.RoleLoginHost:       "login host: a PAM host or login surface; records sign-ins, issues first-login passes (service accounts only)",
}

func roleChoices(held []string) []roleChoice {
	out := make([]roleChoice, 0, len(api.AllRoles))
	for _, r := range api.AllRoles {
		words := roleWords[r]
		if words == "" {
			words = r
		}
		out = append(out, roleChoice{Role: r, Words: words, Held: slices.Contains(held, r)})
	}
	return out
}
