package core_test

import (
	"context"
	"errors"
	"testing"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

func TestImportChecksEveryRowThenCreatesAndUpdatesInOneGo(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.principal(e.admin, "old", api.RoleUser)
	rows := []api.CreateUser{
		{Username: "new1", Email: "new1@example.org", Groups: []string{"eng"}},
		{Username: "old", DisplayName: "Old Timer", Groups: []string{"sales"}},
		{Username: "new2"},
	}
	head := e.st.AuditHead()
	res, err := e.svc.ImportUsers(ctx, e.admin, api.ImportUsers{Users: rows, DryRun: true})
	if err != nil || res.Created != 2 || res.Updated != 1 || e.st.AuditHead() != head {
		t.Fatalf("dry run: %+v %v (audit moved: %v)", res, err, e.st.AuditHead() != head)
	}
	if _, err := e.svc.GetUser(ctx, e.admin, "new1"); !errors.Is(err, core.ErrNotFound) {
		t.Fatal("the dry run created a user")
	}
	bad := append(rows, api.CreateUser{Username: "Bad Name"}, api.CreateUser{Username: "new1"})
	_, err = e.svc.ImportUsers(ctx, e.admin, api.ImportUsers{Users: bad})
	var ie *core.ImportError
	if !errors.As(err, &ie) || len(ie.Rows) != 2 || ie.Rows[0].Row != 4 || ie.Rows[1].Row != 5 || e.st.AuditHead() != head {
		t.Fatalf("bad rows: %v", err)
	}
	if res, err = e.svc.ImportUsers(ctx, e.admin, api.ImportUsers{Users: rows}); err != nil || res.Created != 2 || res.Updated != 1 {
		t.Fatalf("import: %+v %v", res, err)
	}
	if u, _ := e.svc.GetUser(ctx, e.admin, "old"); u.DisplayName != "Old Timer" || u.Groups[0] != "sales" {
		t.Fatalf("the existing user was not updated: %+v", u)
	}
	if res, _ = e.svc.ImportUsers(ctx, e.admin, api.ImportUsers{Users: rows}); res.Unchanged != 3 {
		t.Fatalf("a second identical import: %+v", res)
	}
	if _, err := e.svc.ImportUsers(ctx, e.help, api.ImportUsers{Users: rows}); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("helpdesk importing gave %v", err)
	}
	e.verifyChain()
}
