package cluster_test

import (
	"context"
	"crypto/rand"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/keyfleet/keyfleet/daemon/store/postgres"
	"github.com/keyfleet/keyfleet/internal/pgtest"
)

// The tests run against a private PostgreSQL (internal/pgtest); each gets
// a database of its own, migrated by opening a store on it, whose pool
// and sealing play the part of a keyfleetd's.

var cl *pgtest.Cluster

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &cl)) }

// node is what one keyfleetd has: a store on the shared database.
type node struct {
	st  *postgres.Store
	dsn string
}

// newDatabase makes a database and the store key every node on it uses.
func newDatabase(t *testing.T) (dsn string, key []byte) {
	t.Helper()
	key = make([]byte, 32)
	rand.Read(key)
	return cl.Database(t), key
}

// open starts a node on dsn: its own pool, as another keyfleetd has.
func open(t *testing.T, dsn string, key []byte) *node {
	t.Helper()
	st, err := postgres.Open(context.Background(), postgres.Options{DSN: dsn, StoreKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &node{st: st, dsn: dsn}
}

// admin runs one statement on dsn outside any node.
func admin(t *testing.T, dsn, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
