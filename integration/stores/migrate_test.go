package stores

import (
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/integration/kftest"
)

// TestMigrateStoreMovesABadgerStoreToPostgreSQLAndTheDaemonServesIt: a
// Badger store with users, a TOTP factor (its plugin state), a service
// token, a pending approval and their audit chain is stopped, copied with
// keyfleetd migrate-store, and served from PostgreSQL: everything is
// there, the chain is the same one, the token verifies, the factor still
// refuses a code it accepted before the move, and new writes continue
// the chain.
func TestMigrateStoreMovesABadgerStoreToPostgreSQLAndTheDaemonServesIt(t *testing.T) {
	dir := newData(t)
	d := kftest.Serve(t, keyfleetd(), "badger", dir)
	admin := kftest.AdminToken(t, dir)
	d.MustCall(201, admin, "POST", "/v1/users", api.CreateUser{Username: "alice", Email: "alice@example.org", DisplayName: "Alice Liddell"}, nil)
	d.MustCall(201, admin, "POST", "/v1/users", api.CreateUser{Username: "bob", Email: "bob@example.org"}, nil)
	d.MustCall(201, admin, "POST", "/v1/users", api.CreateUser{Username: "login-app", Kind: api.KindService}, nil)
	var tok api.CreatedToken
	d.MustCall(201, admin, "POST", "/v1/tokens", api.CreateToken{User: "login-app", Name: "sso"}, &tok)
	alice := enrolTOTP(t, d, admin, "alice")
	used := alice.code(0)
	if !verify(t, d, tok.Secret, alice, used) {
		t.Fatal("alice's current code was refused on Badger")
	}
	var acc api.Accepted
	d.MustCall(202, admin, "POST", "/v1/users/bob/disable", api.StateChange{Reason: "left the company"}, &acc)
	if err := d.Stop(); err != nil {
		t.Fatalf("stopping keyfleetd: %v\n%s", err, d.Log())
	}

	dsn := cluster.Database(t)
	out := kftest.Run(t, keyfleetd(), "migrate-store", "--data", dir, "--to", dsn)
	m := regexp.MustCompile(`copied (\d+) records and (\d+) audit events; chain verified up to (\d+) \(([0-9a-f]{64})\)`).FindStringSubmatch(out)
	if m == nil || m[2] != m[3] {
		t.Fatalf("migrate-store said:\n%s", out)
	}
	head, _ := strconv.ParseUint(m[3], 10, 64)
	if !strings.Contains(out, "store.backend: postgres") {
		t.Fatalf("migrate-store does not say what to do next:\n%s", out)
	}
	if !hasMeta(t, dsn, "seal_check") {
		t.Fatal("migrate-store did not copy the sealing key's check value: a keyfleetd with another sealing key would not be refused")
	}
	// A second copy into the same database is refused.
	if b, err := exec.Command(keyfleetd(), "migrate-store", "--data", dir, "--to", dsn).CombinedOutput(); err == nil || !strings.Contains(string(b), "already holds a keyfleet store") {
		t.Fatalf("a second migrate-store into the same database: %v\n%s", err, b)
	}

	kftest.EditConfig(t, dir, map[string]string{"store.backend": "postgres", "store.postgres.dsn": strconv.Quote(dsn)})
	p := kftest.Serve(t, keyfleetd(), "postgres", dir)
	if ev := eventAt(t, p, admin, head); ev.Hash != m[4] {
		t.Fatalf("event %d on PostgreSQL has hash %s, migrate-store verified %s", head, ev.Hash, m[4])
	}
	var u api.User
	p.MustCall(200, admin, "GET", "/v1/users/alice", nil, &u)
	if u.Email != "alice@example.org" || u.DisplayName != "Alice Liddell" {
		t.Fatalf("alice after the move: %+v", u)
	}
	var fs struct{ Items []api.Factor }
	p.MustCall(200, admin, "GET", "/v1/factors?user=alice", nil, &fs)
	if len(fs.Items) != 1 || fs.Items[0].ID != alice.factor || fs.Items[0].State != api.FactorActive {
		t.Fatalf("alice's factors after the move: %+v", fs.Items)
	}
	var a api.Approval
	p.MustCall(200, admin, "GET", "/v1/approvals/"+acc.Approval.ID, nil, &a)
	if a.State != api.ApprovalPending || a.Action != api.ActionUserDisable {
		t.Fatalf("the pending approval after the move: %+v", a)
	}
	// The plugin's state moved with the factor: the code accepted on
	// Badger is a replay now; the next one is accepted with the same
	// service token.
	if verify(t, p, tok.Secret, alice, used) {
		t.Fatal("a code accepted before the move was accepted again after it")
	}
	if !verify(t, p, tok.Secret, alice, alice.code(1)) {
		t.Fatal("alice's next code was refused on PostgreSQL")
	}
	p.MustCall(201, admin, "POST", "/v1/users", api.CreateUser{Username: "carol"}, nil)
	v := verifyAudit(t, p, admin)
	if v.HeadSeq <= head || v.Checked != v.HeadSeq {
		t.Fatalf("audit verify after new writes on PostgreSQL: %+v (the copy ended at %d)", v, head)
	}
}

// hasMeta reports whether the database at dsn holds meta value k.
func hasMeta(t *testing.T, dsn, k string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM meta WHERE k = $1)", k).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}
