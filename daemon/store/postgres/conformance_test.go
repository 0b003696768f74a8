package postgres_test

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/keyfleet/keyfleet/daemon/store/postgres"
	"github.com/keyfleet/keyfleet/daemon/store/storetest"
	"github.com/keyfleet/keyfleet/internal/pgtest"
)

var (
	cluster  *pgtest.Cluster
	storeKey = bytes.Repeat([]byte{0x42}, 32)
)

// pg is the PostgreSQL store as the conformance suite opens it: a new
// database of the private cluster.
var pg = storetest.Backend{
	New: func(t testing.TB) string { return cluster.Database(t) },
	Open: func(dsn string) (storetest.Store, error) {
		return postgres.Open(context.Background(), postgres.Options{DSN: dsn, StoreKey: storeKey})
	},
}

func TestConformance(t *testing.T) { storetest.Run(t, pg) }

func TestMain(m *testing.M) {
	if os.Getenv("KEYFLEET_STORETEST_CHILD") != "" {
		storetest.Child(pg) // the cluster is the parent's
	}
	os.Exit(pgtest.Main(m, &cluster))
}
