package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/daemon/core"
)

func TestAPlainUserCannotTellWhichUsernamesExist(t *testing.T) {
	f := newFixture(t)
	other, _, _ := f.victim()
	u, err := f.svc.GetUser(context.Background(), core.System, other)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/users/%s", "/v1/users/%s/mfa-status",
		"/v1/factors?user=%s", "/v1/devices?user=%s", "/v1/enrolments?user=%s", "/v1/tokens?user=%s"} {
		t.Run(path, func(t *testing.T) {
			existing, eb := f.do(usr, "GET", fmt.Sprintf(path, u.Username), "")
			byID, ib := f.do(usr, "GET", fmt.Sprintf(path, u.ID), "")
			missing, mb := f.do(usr, "GET", fmt.Sprintf(path, "nobody-by-this-name"), "")
			missingID, mib := f.do(usr, "GET", fmt.Sprintf(path, "usr_00000000000000000000000000"), "")
			pe, pi, pm, pmi := problemOf(t, eb), problemOf(t, ib), problemOf(t, mb), problemOf(t, mib)
			if existing != http.StatusForbidden || byID != existing || missing != existing || missingID != existing ||
				pe.Detail != pm.Detail || pi.Detail != pmi.Detail || pe.Type != pm.Type {
				t.Fatalf("a plain user told an existing user from a missing one:\n existing %d %s\n by id %d %s\n missing %d %s\n missing id %d %s",
					existing, eb, byID, ib, missing, mb, missingID, mib)
			}
			if status, body := f.do(usr, "GET", fmt.Sprintf(path, "as-user"), ""); status != http.StatusOK {
				t.Fatalf("reading oneself: %d %s", status, body)
			}
			if status, _ := f.do(admin, "GET", fmt.Sprintf(path, "nobody-by-this-name"), ""); status != http.StatusNotFound {
				t.Fatalf("a role that may read users is told %d for a missing name, want 404", status)
			}
		})
	}
}

func TestDuplicateAndCaseVariantKeysAreRefusedAndChangeNothing(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name, path, body, typ, names string
	}{
		{"a key given twice, the second raising the role", "/v1/users",
			`{"username":"dup-1","roles":["user"],"roles":["admin"]}`, "/problems/duplicate-key", `"roles"`},
		{"a key given twice with the same value", "/v1/users",
			`{"username":"dup-2","username":"dup-2"}`, "/problems/duplicate-key", `"username"`},
		{"a case variant beside the real key", "/v1/users",
			`{"username":"dup-3","roles":["user"],"Roles":["admin"]}`, "/problems/unknown-field", `"Roles"`},
		{"a case variant alone", "/v1/users",
			`{"USERNAME":"dup-4"}`, "/problems/unknown-field", `did you mean "username"`},
		{"a duplicate inside an array of objects", "/v1/users/import",
			`{"users":[{"username":"dup-5","roles":["user"],"roles":["admin"]}]}`, "/problems/duplicate-key", `"users[].roles"`},
		{"a case variant inside an array of objects", "/v1/users/import",
			`{"users":[{"username":"dup-6","Roles":["admin"]}]}`, "/problems/unknown-field", `"users[].Roles"`},
		{"a stray closing brace after the object", "/v1/users",
			`{"username":"dup-7"}}`, "/problems/invalid-json", "after its JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := f.do(admin, "POST", tc.path, tc.body)
			p := problemOf(t, body)
			if status != http.StatusBadRequest || p.Type != tc.typ || !strings.Contains(p.Detail, tc.names) {
				t.Fatalf("%d %s, want 400 %s naming %s", status, body, tc.typ, tc.names)
			}
		})
	}
	for i := 1; i <= 7; i++ {
		if status, _ := f.do(admin, "GET", fmt.Sprintf("/v1/users/dup-%d", i), ""); status != http.StatusNotFound {
			t.Errorf("dup-%d was created by a refused body", i)
		}
	}
	if status, body := f.do(admin, "POST", "/v1/users", `{"username":"exact-keys","roles":["user"],"groups":["eng"]}`); status != http.StatusCreated {
		t.Fatalf("a body with exact, single keys was refused: %d %s", status, body)
	}
	if status, body := f.do(admin, "POST", "/v1/users/import", `{"users":[{"username":"imp-a"},{"username":"imp-b"}]}`); status != http.StatusOK {
		t.Fatalf("the same key in two objects of an array was refused: %d %s", status, body)
	}
}

func TestAnAuditCursorPastTheHeadIsRefusedOnBothRoutes(t *testing.T) {
	f := newFixture(t)
	head := f.st.AuditHead().Seq
	for _, after := range []string{"18446744073709551615", fmt.Sprint(head + 1)} {
		for _, path := range []string{"/v1/audit?after=", "/v1/audit/export?after=", "/v1/audit?target=x&after="} {
			status, body := f.do(aud, "GET", path+after, "")
			p := problemOf(t, body)
			if status != http.StatusBadRequest || p.Type != "/problems/bad-request" || !strings.Contains(p.Detail, fmt.Sprintf("seq %d", head)) {
				t.Fatalf("GET %s%s: %d %s, want 400 naming the head", path, after, status, body)
			}
		}
	}
	status, body := f.do(aud, "GET", fmt.Sprintf("/v1/audit?after=%d", head), "")
	if status != http.StatusOK || strings.TrimSpace(string(body)) != `{"items":[]}` {
		t.Fatalf("a cursor at the head: %d %s, want an empty page", status, body)
	}
	status, body = f.do(aud, "GET", fmt.Sprintf("/v1/audit/export?after=%d", head), "")
	if status != http.StatusOK || len(body) != 0 {
		t.Fatalf("an export from the head: %d %q, want nothing", status, body)
	}
	if logs := f.logs.String(); strings.Contains(logs, "corrupt") || strings.Contains(logs, `"level":"ERROR"`) {
		t.Fatalf("a cursor past the head was logged as a fault: %s", logs)
	}
}
