package integration

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	dt "github.com/keyfleet/keyfleet/daemon/directory/directorytest"
)

// keyfleetd configured with an LDAP directory (a real slapd, StartTLS with
// a private CA) and SCIM: the CLI shows what a sync would do, runs it,
// and shows the status; the periodic sync picks up a change by itself.
func TestKeyfleetdSyncsTheDirectoryItIsConfiguredWith(t *testing.T) {
	ldap := dt.Start(t, dt.Organisation(0, false))
	dir := initData(t)
	cfg := fmt.Sprintf(`directory:
  ldap:
    name: corp
    url: %s
    start_tls: true
    ca_file: %s
    bind_dn: %s
    bind_password_file: %s
    user_base: %s
    group_base: %s
    attributes:
      disabled: employeeType
    groups:
      %q: eng
    roles:
      %q: admin
    interval: 1m
  scim:
    enabled: true
    groups:
      Engineering: {group: eng}
`, ldap.URL, ldap.CAFile, dt.ReaderDN, ldap.PasswordFile, dt.People, dt.Groups, dt.GroupDN("eng"), dt.GroupDN("admins"))
	if err := os.WriteFile(filepath.Join(dir, "keyfleetd.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d := start(t, dir)
	root := newCLI(t)
	root.login(d, filepath.Join(dir, "admin.token"))

	// The periodic sync runs at start-up.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(root.must("directory", "status"), "5 created") {
		if time.Now().After(deadline) {
			t.Fatalf("the first periodic sync did not run:\n%s\n%s", root.must("directory", "status"), d.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	out := root.must("users", "show", "carol", "-o", "json")
	if !strings.Contains(out, `"source": "corp"`) || !strings.Contains(out, `"eng"`) {
		t.Fatalf("carol (in eng through two nested groups): %s", out)
	}
	if out := root.must("approvals", "list"); !strings.Contains(out, "dave") {
		t.Fatalf("the admin role dave's group gives does not wait for approval:\n%s", out)
	}

	ldap.Modify(t, "dn: "+dt.PersonDN("bob")+"\nchangetype: modify\nadd: employeeType\nemployeeType: disabled\n")
	dry := root.must("directory", "sync", "--dry-run")
	if !strings.Contains(dry, "Dry run") || !strings.Contains(dry, "disabled") || !strings.Contains(dry, "bob") {
		t.Fatalf("dry run:\n%s", dry)
	}
	if out := root.must("users", "show", "bob", "-o", "json"); !strings.Contains(out, `"status": "active"`) {
		t.Fatalf("the dry run disabled bob: %s", out)
	}
	if out := root.must("directory", "sync"); !strings.Contains(out, "1 disabled") {
		t.Fatalf("sync:\n%s", out)
	}
	status := root.must("directory", "status")
	if !strings.Contains(status, "corp") || !strings.Contains(status, "4/5") {
		t.Fatalf("status:\n%s", status)
	}
	code, _, errb := root.run("directory", "sync", "--source", "other")
	if code == 0 || !strings.Contains(errb, "not configured") {
		t.Fatalf("a sync of an unknown source: exit %d %s", code, errb)
	}

	// SCIM is served beside the API, and wants its own kind of token.
	var e struct{ Schemas []string }
	if st := d.call(adminToken(t, dir), "GET", "/scim/v2/Users", nil, &e); st != http.StatusForbidden || len(e.Schemas) != 1 || e.Schemas[0] != "urn:ietf:params:scim:api:messages:2.0:Error" {
		t.Fatalf("an admin token at /scim/v2: %d %v", st, e)
	}
	// SCIM's requests are observed as the API's are: an id, no caching, a
	// log line and the request metrics; the syncs are on /metrics too.
	resp, _ := d.raw("", "GET", "/scim/v2/Groups", nil)
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("X-Request-Id") == "" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("SCIM without a token: %d, headers %v", resp.StatusCode, resp.Header)
	}
	_, m := d.raw("", "GET", "/metrics", nil)
	for _, want := range []string{
		`keyfleet_http_requests_total{code="403",method="GET",route="/scim/v2/Users"} 1`,
		`keyfleet_http_requests_total{code="401",method="GET",route="/scim/v2/Groups"} 1`,
		`keyfleet_directory_syncs_total{mode="full",outcome="ok",source="corp"}`,
		`keyfleet_directory_changes_total{change="disabled",source="corp"} 1`,
		`keyfleet_directory_last_sync_failed{source="corp"} 0`,
	} {
		if !bytes.Contains(m, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if !strings.Contains(d.log(), `"path":"/scim/v2/Groups","status":401`) {
		t.Errorf("no log line for the SCIM request:\n%s", d.log())
	}
	if strings.Contains(d.log(), adminToken(t, dir)) {
		t.Error("the token sent to /scim/v2 is in keyfleetd's log")
	}
	var ov api.DirectoryOverview
	if st := d.call(adminToken(t, dir), "GET", "/v1/directory/status", nil, &ov); st != 200 || len(ov.Sources) != 1 || ov.Sources[0].NextSyncAt == nil {
		t.Fatalf("status over the API: %d %+v", st, ov)
	}
}
