package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/store/postgres"
	"github.com/keyfleet/keyfleet/daemon/store/storetest"
)

// A database written before schema version 4 has audit events without
// their actor and action columns: the first open on version 4 fills
// them, once, so that audit lists by actor and action find old events
// too.
func TestEventsWrittenBeforeTheActorAndActionIndexesAreFoundByThem(t *testing.T) {
	ctx := context.Background()
	dsn := cluster.Database(t)
	open := func() *postgres.Store {
		st, err := postgres.Open(ctx, postgres.Options{DSN: dsn, StoreKey: storeKey})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := open()
	err := st.Update(ctx, func(tx core.Tx) error {
		for i := range 5 {
			ev := &audit.Event{Action: "factor.revoke", Actor: api.Actor{ID: "usr_old"}, Target: api.Target{Type: "factor", ID: fmt.Sprint("fac_", i)}}
			if err := tx.Audit(ev); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	// As schema versions before 4 left them.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, sql := range []string{"UPDATE audit SET actor = '', action = ''", "DELETE FROM meta WHERE k = 'audit_index_filled'"} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	st = open()
	defer st.Close()
	err = st.View(ctx, func(tx core.ReadTx) error {
		for _, q := range []struct {
			field core.AuditField
			value string
		}{{core.AuditActor, "usr_old"}, {core.AuditAction, "factor.revoke"}} {
			seqs, err := storetest.AuditBy(tx, q.field, q.value, 0, 10)
			if err != nil || len(seqs) != 5 {
				t.Errorf("events by %s %s: %v, %v; want all 5", q.field, q.value, seqs, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var filled string
	if err := conn.QueryRow(ctx, "SELECT v FROM meta WHERE k = 'audit_index_filled'").Scan(&filled); err != nil {
		t.Fatalf("the fill was not recorded, so every start would look again: %v", err)
	}
}
