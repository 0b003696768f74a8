package scim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/core/coretest"
	"github.com/keyfleet/keyfleet/daemon/directory/scim"
	"github.com/keyfleet/keyfleet/daemon/seal"
	"github.com/keyfleet/keyfleet/daemon/store"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// env is keyfleet's core on a real Badger store, two approvers, a SCIM
// client's service account and its token, and the service provider
// behind an HTTP server.
type env struct {
	t       *testing.T
	svc     *core.Service
	st      *store.Store
	people  *coretest.People
	admin   core.Principal
	officer core.Principal
	srv     *httptest.Server
	token   string
}

func newEnv(t *testing.T, account string) *env {
	t.Helper()
	st, err := store.Open(store.Options{InMemory: true, EncryptionKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sl, _ := seal.New(make([]byte, 32))
	svc, err := core.New(core.Config{Store: st, Sealer: sl, Kinds: []sdk.Factor{coretest.Kind{}, coretest.Key{}}})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, svc: svc, st: st, people: coretest.NewPeople(t, svc)}
	e.admin = e.people.Person("root", api.RoleAdmin)
	e.officer = e.people.Person("sec", api.RoleSecurityOfficer)
	e.token = e.scimAccount(account)
	h, err := scim.New(scim.Config{Service: svc, Groups: map[string]scim.GroupMap{
		"Engineering": {Group: "eng"}, "Keyfleet Helpdesk": {Role: api.RoleHelpdesk},
	}})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

// scimAccount makes a service account with the scim role (granted with a
// second person's approval) and returns a token carrying only that role.
func (e *env) scimAccount(name string) string {
	e.t.Helper()
	ctx := context.Background()
	u, a, err := e.svc.CreateUser(ctx, e.admin, api.CreateUser{Username: name, Kind: api.KindService, Roles: []string{api.RoleScim}})
	if err != nil {
		e.t.Fatal(err)
	}
	if a.ID == "" {
		e.t.Fatal("the scim role was granted without approval")
	}
	if _, err := e.people.Approve(e.officer, a.ID, "the identity team's provisioning"); err != nil {
		e.t.Fatal(err)
	}
	_, secret, err := e.svc.CreateToken(ctx, e.admin, api.CreateToken{User: u.ID, Name: "scim", Roles: []string{api.RoleScim}})
	if err != nil {
		e.t.Fatal(err)
	}
	return secret
}

// reply is an HTTP answer with its JSON.
type reply struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (e *env) do(method, path, body string, headers ...string) reply {
	return e.doAs(e.token, method, path, body, headers...)
}

func (e *env) doAs(token, method, path, body string, headers ...string) reply {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+scim.Prefix+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/scim+json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &r.body); err != nil {
			e.t.Fatalf("%s %s answered non-JSON %q", method, path, b)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/scim+json" {
			e.t.Errorf("%s %s answered Content-Type %q, want application/scim+json (RFC 7644 §3.1)", method, path, ct)
		}
	}
	return r
}

// want checks an answer's status and that it has the shape RFC 7644 asks:
// a resource with id, schemas and meta (location, version = ETag); a
// ListResponse; or an Error with the status as a string.
func (e *env) want(r reply, status int, what string) map[string]any {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("%s: status %d, want %d: %s", what, r.status, status, r.raw)
	}
	b := r.body
	schemas, _ := b["schemas"].([]any)
	switch {
	case status == http.StatusNoContent:
		if r.raw != "" {
			e.t.Errorf("%s: 204 with a body %q", what, r.raw)
		}
	case status >= 400:
		if len(schemas) != 1 || schemas[0] != "urn:ietf:params:scim:api:messages:2.0:Error" || b["status"] != fmt.Sprint(status) || b["detail"] == "" {
			e.t.Errorf("%s: not an RFC 7644 §3.12 error: %s", what, r.raw)
		}
	case slices.Contains(schemas, any("urn:ietf:params:scim:api:messages:2.0:ListResponse")):
		if _, ok := b["totalResults"].(float64); !ok || b["Resources"] == nil {
			e.t.Errorf("%s: a ListResponse without totalResults or Resources: %s", what, r.raw)
		}
	default:
		meta, _ := b["meta"].(map[string]any)
		versioned := meta["resourceType"] == "User" || meta["resourceType"] == "Group"
		if (b["id"] == nil && meta["resourceType"] != "ServiceProviderConfig") || meta["location"] == nil || (versioned && meta["version"] != r.header.Get("ETag")) || meta["resourceType"] == nil {
			e.t.Errorf("%s: a resource without id, meta.location or meta.version = ETag (%q): %s", what, r.header.Get("ETag"), r.raw)
		}
		if status == http.StatusCreated && r.header.Get("Location") != meta["location"] {
			e.t.Errorf("%s: Location %q is not meta.location %v", what, r.header.Get("Location"), meta["location"])
		}
	}
	return b
}

func (e *env) user(name string) core.User {
	e.t.Helper()
	u, err := e.svc.GetUser(context.Background(), e.admin, name)
	if err != nil {
		e.t.Fatalf("user %s: %v", name, err)
	}
	return u
}

func total(b map[string]any) int { n, _ := b["totalResults"].(float64); return int(n) }

func pending(t *testing.T, e *env) []core.Approval {
	as, _, err := e.svc.ListApprovals(context.Background(), e.admin, api.ApprovalPending, core.PageReq{})
	if err != nil {
		t.Fatal(err)
	}
	return as
}

// The requests Entra ID's provisioning service sends, in the order its
// documentation's validator sends them.
func TestEntraIDProvisionsUpdatesDisablesAndDeletesAUser(t *testing.T) {
	e := newEnv(t, "entra")
	const upn = "Test_User_dfeef4c5@contoso.com"
	e.want(e.do("GET", "/Users?filter="+urlq(`userName eq "`+upn+`"`), ""), 200, "find before create")
	created := e.want(e.do("POST", "/Users", `{
		"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
		"externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
		"userName": "`+upn+`",
		"active": true,
		"emails": [{"primary": true, "type": "work", "value": "Test_User_11bb6097@contoso.com"}],
		"meta": {"resourceType": "User"},
		"name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
		"roles": [],
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "1234", "department": "Research"}
	}`), 201, "create")
	id := created["id"].(string)
	if created["userName"] != strings.ToLower(upn) || created["active"] != true {
		t.Fatalf("created: %v", created)
	}
	u := e.user(strings.ToLower(upn))
	if u.ID != id || u.Email != "Test_User_11bb6097@contoso.com" || u.DisplayName != "givenName familyName" || u.API().Source != "scim:entra" {
		t.Fatalf("in keyfleet: %+v", u)
	}
	found := e.want(e.do("GET", "/Users?filter="+urlq(`userName eq "`+strings.ToUpper(upn)+`"`), ""), 200, "find after create (any case)")
	if total(found) != 1 {
		t.Fatalf("userName filter found %d", total(found))
	}
	e.want(e.do("GET", "/Users/"+id, ""), 200, "get")
	patched := e.want(e.do("PATCH", "/Users/"+id, `{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
		{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@contoso.com"},
		{"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
		{"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": [{"$ref": null, "value": "mgr-1"}]},
		{"op": "Add", "path": "title", "value": "Engineer"}
	]}`), 200, "patch profile")
	if e.user(u.Username).Email != "updatedEmail@contoso.com" || patched["name"].(map[string]any)["familyName"] != "updatedFamilyName" {
		t.Fatalf("after patch: %v", patched)
	}
	f := e.people.GiveKey(id)
	e.want(e.do("PATCH", "/Users/"+id, `{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations": [{"op": "Replace", "path": "active", "value": "False"}]}`), 200, "disable")
	if st := e.user(u.Username).Status; st != api.UserDisabled {
		t.Fatalf("active=false left the user %s", st)
	}
	if got, _ := e.svc.GetFactor(context.Background(), e.admin, f.ID); got.State != api.FactorSuspended {
		t.Fatalf("active=false left the factor %s", got.State)
	}
	e.want(e.do("DELETE", "/Users/"+id, ""), 204, "delete")
	e.want(e.do("GET", "/Users/"+id, ""), 404, "get after delete")
	if got := e.user(u.Username); got.Status != api.UserDisabled || got.ID != id {
		t.Fatalf("deleting through SCIM must leave a disabled user for the two-person deletion: %+v", got)
	}
	if len(pending(t, e)) != 0 {
		t.Fatal("taking access away asked for approval")
	}
}

func TestEntraIDGroupsGiveGroupsAtOnceAndRolesAfterApproval(t *testing.T) {
	e := newEnv(t, "entra")
	id := e.want(e.do("POST", "/Users", `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ada@contoso.com", "active": true}`), 201, "create user")["id"].(string)
	g := e.want(e.do("POST", "/Groups", `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
		"displayName": "Engineering", "meta": {"resourceType": "Group"}}`), 201, "create group")
	gid := g["id"].(string)
	e.want(e.do("GET", "/Groups/"+gid+"?excludedAttributes=members", ""), 200, "get group")
	list := e.want(e.do("GET", "/Groups?excludedAttributes=members&filter="+urlq(`displayName eq "Engineering"`), ""), 200, "find group")
	if total(list) != 1 || list["Resources"].([]any)[0].(map[string]any)["members"] != nil {
		t.Fatalf("group filter: %v", list)
	}
	e.want(e.do("PATCH", "/Groups/"+gid, `{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations": [{"op": "Add", "path": "members", "value": [{"$ref": null, "value": "`+id+`"}]}]}`), 200, "add member")
	if !slices.Contains(e.user("ada@contoso.com").Groups, "eng") {
		t.Fatalf("a member of Engineering is in %v", e.user("ada@contoso.com").Groups)
	}
	e.want(e.do("PATCH", "/Groups/"+gid, `{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations": [{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "`+id+`"}]}]}`), 200, "remove member")
	if slices.Contains(e.user("ada@contoso.com").Groups, "eng") {
		t.Fatal("leaving Engineering kept eng")
	}

	hd := e.want(e.do("POST", "/Groups", `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Keyfleet Helpdesk",
		"members": [{"value": "`+id+`"}]}`), 201, "create a group that gives a role")
	if slices.Contains(e.user("ada@contoso.com").Roles, api.RoleHelpdesk) {
		t.Fatal("the SCIM client granted helpdesk at once")
	}
	as := pending(t, e)
	if len(as) != 1 || as[0].Params["grant_roles"] != api.RoleHelpdesk || as[0].RequestedBy.Name != "entra" {
		t.Fatalf("pending: %+v", as)
	}
	if _, err := e.people.Approve(e.officer, as[0].ID, "ada joins the helpdesk"); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(e.user("ada@contoso.com").Roles, api.RoleHelpdesk) {
		t.Fatal("the approved grant did not happen")
	}
	e.want(e.do("DELETE", "/Groups/"+hd["id"].(string), ""), 204, "delete group")
	if slices.Contains(e.user("ada@contoso.com").Roles, api.RoleHelpdesk) {
		t.Fatal("deleting the group kept the role")
	}
	e.want(e.do("PATCH", "/Groups/"+gid, `{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations": [{"op": "Replace", "path": "displayName", "value": "Engineering Renamed"}]}`), 200, "rename group")
	e.want(e.do("DELETE", "/Groups/"+gid, ""), 204, "delete group")
	e.want(e.do("GET", "/Groups/"+gid, ""), 404, "get deleted group")
}

// The requests Okta sends (its SCIM 2.0 guide): userName lookups with
// startIndex and count, a create with a password (never kept), PUT,
// PATCH replace without a path, and group pushes.
func TestOktaProvisionsReplacesDeactivatesAndPushesGroups(t *testing.T) {
	e := newEnv(t, "okta")
	e.want(e.do("GET", "/Users?filter="+urlq(`userName eq "test.user@okta.local"`)+"&startIndex=1&count=100", ""), 200, "lookup")
	u := e.want(e.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"test.user@okta.local",
		"name":{"givenName":"Test","familyName":"User"},"emails":[{"primary":true,"value":"test.user@okta.local","type":"work"}],
		"displayName":"Test User","locale":"en-US","externalId":"00ujl29u0le5T6Aj10h7","groups":[],"password":"1mz050nq","active":true}`), 201, "create")
	id := u["id"].(string)
	if strings.Contains(e.do("GET", "/Users/"+id, "").raw, "1mz050nq") {
		t.Fatal("the password came back")
	}
	e.want(e.do("PUT", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"`+id+`","userName":"test.user@okta.local",
		"name":{"givenName":"Another","familyName":"User"},"emails":[{"primary":true,"value":"test.user@okta.local","type":"work"}],
		"displayName":"Another User","externalId":"00ujl29u0le5T6Aj10h7","active":true}`), 200, "replace")
	if e.user("test.user@okta.local").DisplayName != "Another User" {
		t.Fatal("PUT did not replace the display name")
	}
	f := e.people.GiveKey(id)
	e.want(e.do("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`), 200, "deactivate")
	if e.user("test.user@okta.local").Status != api.UserDisabled {
		t.Fatal("deactivation left the user active")
	}
	e.want(e.do("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":true}}]}`), 200, "reactivate")
	if got, _ := e.svc.GetFactor(context.Background(), e.admin, f.ID); e.user("test.user@okta.local").Status != api.UserActive || got.State != api.FactorActive {
		t.Fatalf("reactivation: user %s, factor %s", e.user("test.user@okta.local").Status, got.State)
	}

	g := e.want(e.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Test SCIMv2","members":[]}`), 201, "push group")
	gid := g["id"].(string)
	e.want(e.do("PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"id":"`+gid+`","displayName":"Engineering"}}]}`), 200, "rename group")
	e.want(e.do("PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"`+id+`","display":"test.user@okta.local"}]}]}`), 200, "add member")
	if !slices.Contains(e.user("test.user@okta.local").Groups, "eng") {
		t.Fatal("a member of a group renamed to Engineering is not in eng")
	}
	e.want(e.do("PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members[value eq \"`+id+`\"]"}]}`), 200, "remove member")
	if slices.Contains(e.user("test.user@okta.local").Groups, "eng") {
		t.Fatal("the removed member kept eng")
	}
	list := e.want(e.do("GET", "/Users?startIndex=1&count=1", ""), 200, "page")
	if total(list) != 1 || list["itemsPerPage"] != 1.0 || list["startIndex"] != 1.0 {
		t.Fatalf("page: %v", list)
	}
	e.want(e.do("DELETE", "/Groups/"+gid, ""), 204, "delete group")
}

func TestDiscoveryEndpointsDescribeWhatIsServed(t *testing.T) {
	e := newEnv(t, "okta")
	spc := e.want(e.do("GET", "/ServiceProviderConfig", ""), 200, "service provider config")
	if spc["patch"].(map[string]any)["supported"] != true || spc["etag"].(map[string]any)["supported"] != true || spc["bulk"].(map[string]any)["supported"] != false {
		t.Fatalf("ServiceProviderConfig: %v", spc)
	}
	rts := e.want(e.do("GET", "/ResourceTypes", ""), 200, "resource types")
	if total(rts) != 2 {
		t.Fatalf("resource types: %v", rts)
	}
	e.want(e.do("GET", "/ResourceTypes/User", ""), 200, "User resource type")
	schemas := e.want(e.do("GET", "/Schemas", ""), 200, "schemas")
	if total(schemas) != 3 || !strings.Contains(e.do("GET", "/Schemas", "").raw, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User") {
		t.Fatalf("schemas: %v", schemas)
	}
	e.want(e.do("GET", "/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group", ""), 200, "Group schema")
	e.want(e.do("GET", "/Nothing", ""), 404, "unknown endpoint")
}

func urlq(s string) string {
	r := strings.NewReplacer(" ", "%20", `"`, "%22", "[", "%5B", "]", "%5D", "&", "%26", "+", "%2B", "#", "%23")
	return r.Replace(s)
}

// Bad input is answered with a SCIM error and changes nothing.
func TestBadInputIsRefusedWithSCIMErrorsAndChangesNothing(t *testing.T) {
	e := newEnv(t, "okta")
	id := e.want(e.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bea"}`), 201, "create bea")["id"].(string)
	before := e.st.AuditHead()
	huge := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"x","displayName":"` + strings.Repeat("a", 3<<20) + `"}`
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		scimType                 string
	}{
		{"an unknown attribute", "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"eve","favouriteColour":"red"}`, 400, "invalidSyntax"},
		{"an unknown enterprise attribute", "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"eve","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"salary":"1"}}`, 400, "invalidSyntax"},
		{"the Group schema on a User", "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"userName":"eve"}`, 400, "invalidSyntax"},
		{"no schemas", "POST", "/Users", `{"userName":"eve"}`, 400, "invalidSyntax"},
		{"a schema keyfleet does not have", "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:example:evil"],"userName":"eve"}`, 400, "invalidSyntax"},
		{"not JSON", "POST", "/Users", `{"schemas":`, 400, "invalidSyntax"},
		{"a username keyfleet cannot take", "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"eve smith"}`, 400, "invalidValue"},
		{"active that is not a boolean", "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"eve","active":"maybe"}`, 400, "invalidValue"},
		{"a body over the limit", "POST", "/Users", huge, 413, "tooMany"},
		{"a filter that does not parse", "GET", "/Users?filter=" + urlq(`userName eq "a" or`), "", 400, "invalidFilter"},
		{"a filter on an attribute keyfleet lacks", "GET", "/Users?filter=" + urlq(`salary gt 5`), "", 400, "invalidFilter"},
		{"a filter over the length limit", "GET", "/Users?filter=" + urlq(`userName eq "`+strings.Repeat("a", 2000)+`"`), "", 400, "invalidFilter"},
		{"a PATCH path keyfleet lacks", "PATCH", "/Users/" + id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"salary","value":"1"}]}`, 400, "invalidPath"},
		{"a PATCH that changes the id", "PATCH", "/Users/" + id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"id","value":"usr_x"}]}`, 400, "mutability"},
		{"a PATCH op that does not exist", "PATCH", "/Users/" + id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"merge","path":"displayName","value":"x"}]}`, 400, "invalidSyntax"},
		{"a PATCH remove without a path", "PATCH", "/Users/" + id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove"}]}`, 400, "noTarget"},
		{"a PATCH without the PatchOp schema", "PATCH", "/Users/" + id, `{"Operations":[{"op":"replace","path":"displayName","value":"x"}]}`, 400, "invalidSyntax"},
		{"a stale If-Match", "PATCH", "/Users/" + id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"x"}]}`, 412, "invalidVers"},
		{"a group member that is not one of the client's users", "POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Engineering","members":[{"value":"` + e.admin.UserID + `"}]}`, 400, "invalidValue"},
		{"a group without a name", "POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"]}`, 400, "invalidValue"},
		{"a group of groups", "POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"x","members":[{"value":"grp_1","type":"Group"}]}`, 400, "invalidValue"},
		{"a user of another client", "GET", "/Users/" + e.admin.UserID, "", 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ee := *e
			ee.t = t
			var headers []string
			if tc.status == 412 {
				headers = []string{"If-Match", `W/"stale"`}
			}
			r := ee.do(tc.method, tc.path, tc.body, headers...)
			ee.want(r, tc.status, tc.name)
			if tc.scimType != "" && r.body["scimType"] != tc.scimType {
				t.Errorf("scimType %v, want %s", r.body["scimType"], tc.scimType)
			}
		})
	}
	if after := e.st.AuditHead(); after != before {
		t.Fatalf("refused requests changed the store: audit %d → %d", before.Seq, after.Seq)
	}
	if e.user("bea").DisplayName != "" {
		t.Fatal("bea changed")
	}
}

// A filter only ever narrows the client's own users: a user made by hand
// (the admin) cannot be found, read, changed or taken over through SCIM.
func TestASCIMClientCannotReachUsersItDidNotProvision(t *testing.T) {
	e := newEnv(t, "okta")
	e.want(e.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"own"}`), 201, "own user")
	for _, f := range []string{`userName eq "root"`, `userName pr`, `userName eq "x" or userName pr`, `id eq "` + e.admin.UserID + `"`,
		`userName eq "root\" or userName pr or userName eq \""`} {
		list := e.want(e.do("GET", "/Users?filter="+urlq(f), ""), 200, f)
		if strings.Contains(fmt.Sprint(list["Resources"]), "root") {
			t.Fatalf("%s found the hand-made admin: %v", f, list)
		}
	}
	r := e.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"root","active":false}`)
	e.want(r, 409, "taking over the admin by userName")
	if r.body["scimType"] != "uniqueness" || e.user("root").Status != api.UserActive || e.user("root").External != nil {
		t.Fatalf("the admin was touched: %v %+v", r.body, e.user("root"))
	}
	e.want(e.do("DELETE", "/Users/"+e.admin.UserID, ""), 404, "deleting the admin")
	e.want(e.do("PATCH", "/Users/"+e.admin.UserID, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}`), 404, "disabling the admin")
	other := e.scimAccount("entra")
	e.want(e.doAs(other, "GET", "/Users/"+e.user("own").ID, ""), 404, "another client's user")
}

func TestOnlyATokenCarryingTheScimRoleAloneIsServed(t *testing.T) {
	e := newEnv(t, "okta")
	r := e.doAs("", "GET", "/Users", "")
	e.want(r, 401, "no token")
	if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("401 without WWW-Authenticate: %v", r.header)
	}
	e.want(e.doAs("kf_not-a-token", "GET", "/Users", ""), 401, "a bad token")
	ctx := context.Background()
	_, adminToken, err := e.svc.CreateToken(ctx, e.admin, api.CreateToken{User: e.user("okta").ID, Name: "service", Roles: []string{api.RoleService}})
	if err != nil {
		t.Fatal(err)
	}
	e.want(e.doAs(adminToken, "GET", "/Users", ""), 403, "a service token without scim")
	_, both, err := e.svc.CreateToken(ctx, e.admin, api.CreateToken{User: e.user("okta").ID, Name: "both"})
	if err != nil {
		t.Fatal(err)
	}
	e.want(e.doAs(both, "GET", "/Users", ""), 403, "a token carrying scim and service")
	if _, _, err := e.svc.CreateUser(ctx, e.admin, api.CreateUser{Username: "mallory", Roles: []string{api.RoleScim}}); err == nil {
		t.Fatal("a person was given the scim role")
	}
}

func TestIfMatchGuardsAgainstLostUpdates(t *testing.T) {
	e := newEnv(t, "okta")
	r := e.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"cid"}`)
	id, tag := e.want(r, 201, "create")["id"].(string), r.header.Get("ETag")
	e.want(e.do("PUT", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"cid","displayName":"One"}`, "If-Match", tag), 200, "first writer")
	e.want(e.do("PUT", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"cid","displayName":"Two"}`, "If-Match", tag), 412, "second writer with the old tag")
	if e.user("cid").DisplayName != "One" {
		t.Fatal("the stale write won")
	}
	e.want(e.do("DELETE", "/Users/"+id, "", "If-Match", tag), 412, "delete with the old tag")
}

func TestABigGroupIsReplacedInOneRequest(t *testing.T) {
	e := newEnv(t, "okta")
	var members []string
	for i := range 300 {
		r := e.do("POST", "/Users", fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"u%03d"}`, i))
		members = append(members, fmt.Sprintf(`{"value":%q}`, e.want(r, 201, "create")["id"]))
	}
	body := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Engineering","members":[` + strings.Join(members, ",") + `]}`
	g := e.want(e.do("POST", "/Groups", body), 201, "big group")
	if len(g["members"].([]any)) != 300 || !slices.Contains(e.user("u299").Groups, "eng") {
		t.Fatalf("big group: %d members", len(g["members"].([]any)))
	}
	var buf bytes.Buffer
	buf.WriteString(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"members","value":[` + members[0] + `]}]}`)
	e.want(e.do("PATCH", "/Groups/"+g["id"].(string), buf.String()), 200, "replace members")
	if slices.Contains(e.user("u299").Groups, "eng") || !slices.Contains(e.user("u000").Groups, "eng") {
		t.Fatal("replacing the members did not reach keyfleet's groups")
	}
}
