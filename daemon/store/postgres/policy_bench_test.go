package postgres_test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/store/postgres"
	"github.com/keyfleet/keyfleet/daemon/store/storetest"
	"github.com/keyfleet/keyfleet/internal/pgtest"
)

// BenchmarkBulkPolicy is storetest.BulkPolicy on PostgreSQL (the private
// cluster, fsync on). With KEYFLEET_BENCH_KEEP the database is kept in a
// cluster there and built only once (a million users take minutes).
func BenchmarkBulkPolicy(b *testing.B) {
	for _, n := range storetest.BenchSizes() {
		st, svc, c := benchStore(b, n)
		start := c.CPU()
		storetest.BulkPolicy(b, n, st, svc, func() time.Duration { return c.CPU().Since(start) })
	}
}

// benchStore opens a store holding n users (storetest.BenchUser) under
// storetest.BenchPolicy.
func benchStore(b *testing.B, n int) (*postgres.Store, *core.Service, *pgtest.Cluster) {
	b.Helper()
	c, dsn, built := benchDatabase(b, n)
	st, err := postgres.Open(context.Background(), postgres.Options{DSN: dsn, StoreKey: storeKey})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	svc, err := storetest.BenchService(st, storeKey, !built)
	if err != nil {
		b.Fatal(err)
	}
	if built {
		return st, svc, c
	}
	start := time.Now()
	err = st.LoadForBench(context.Background(), n, func(tx core.Tx, i int) error {
		u, factors, applied := storetest.BenchUser(i)
		if err := tx.InsertUser(u); err != nil {
			return err
		}
		for _, f := range factors {
			if err := tx.PutFactor(f); err != nil {
				return err
			}
		}
		return tx.PutFirstApplied(u.ID, applied)
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, sql := range []string{"ANALYZE", "INSERT INTO meta (k, v) VALUES ('bench_users', '" + strconv.Itoa(n) + "')"} {
		if _, err := st.Pool().Exec(context.Background(), sql); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("wrote %d users in %s", n, time.Since(start).Round(time.Millisecond))
	return st, svc, c
}

// benchDatabase is a new database of the test cluster, or with
// KEYFLEET_BENCH_KEEP the kept one, and whether it holds the n users.
func benchDatabase(b *testing.B, n int) (*pgtest.Cluster, string, bool) {
	keep := storetest.BenchKeep()
	if keep == "" {
		return cluster, cluster.Database(b), false
	}
	kc, err := pgtest.Keep(filepath.Join(keep, "pg"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { kc.Stop() })
	db := "policy_" + strconv.Itoa(n)
	if ok, err := kc.HasDatabase(db); err != nil {
		b.Fatal(err)
	} else if ok {
		var v string
		st, err := postgres.Open(context.Background(), postgres.Options{DSN: kc.DSN(db), StoreKey: storeKey})
		if err == nil {
			err = st.Pool().QueryRow(context.Background(), "SELECT v FROM meta WHERE k = 'bench_users'").Scan(&v)
			st.Close()
		}
		if err == nil && v == strconv.Itoa(n) {
			return kc, kc.DSN(db), true
		}
		b.Logf("the kept database %s is incomplete (%v): building it again", db, err)
	}
	if err := kc.DropDatabase(db); err != nil {
		b.Fatal(err)
	}
	if err := kc.CreateDatabase(db); err != nil {
		b.Fatal(err)
	}
	return kc, kc.DSN(db), false
}
