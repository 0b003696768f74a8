package postgres_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/keyfleet/keyfleet/daemon/store/postgres"
)

// TestTheFirstCheckValueWrittenIsTheOneEveryKeyfleetdReads: two keyfleetd
// starting at once on a database without a check value each record their
// own; the database keeps the first, and both read that one back (so the
// one with another key is refused by its own check, not silently
// accepted).
func TestTheFirstCheckValueWrittenIsTheOneEveryKeyfleetdReads(t *testing.T) {
	ctx := context.Background()
	dsn := cluster.Database(t)
	a, err := postgres.Open(ctx, postgres.Options{DSN: dsn, StoreKey: storeKey})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := postgres.Open(ctx, postgres.Options{DSN: dsn, StoreKey: storeKey})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, ok, err := a.SealCheck(ctx); ok || err != nil {
		t.Fatalf("a new database has a check value (%v, %v)", ok, err)
	}
	for _, w := range []struct {
		st *postgres.Store
		v  []byte
	}{{a, []byte("first")}, {b, []byte("second")}} {
		if err := w.st.PutSealCheck(ctx, w.v); err != nil {
			t.Fatal(err)
		}
	}
	for _, st := range []*postgres.Store{a, b} {
		v, ok, err := st.SealCheck(ctx)
		if err != nil || !ok || !bytes.Equal(v, []byte("first")) {
			t.Fatalf("read back %q %v %v, want the first value written", v, ok, err)
		}
	}
}
