package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/keyfleet/keyfleet/daemon/store/storetest"
)

// A full verify checks a long chain in spans on several cores and joins
// them. On PostgreSQL, in four spans of ten records (1-10, 11-20, 21-30,
// 31-40), records removed, swapped or damaged at and next to a join are
// found at the same record, for the same reason, as one walk from the
// first record finds them. (A sealed record moved to another seq does not
// open there: it is reported where it was moved to.)
func TestVerifyInSpansFindsTheFirstBreakAtTheJoins(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		sql    []string
		broken uint64
		reason string
	}{
		{"the last record of the first span deleted", []string{"DELETE FROM audit WHERE seq = 10"}, 10, "missing"},
		{"the first record of the second span deleted", []string{"DELETE FROM audit WHERE seq = 11"}, 11, "missing"},
		{"a whole span deleted", []string{"DELETE FROM audit WHERE seq BETWEEN 11 AND 20"}, 11, "missing"},
		{"two records swapped across the join", []string{
			"UPDATE audit SET seq = -1 WHERE seq = 10", "UPDATE audit SET seq = 10 WHERE seq = 11", "UPDATE audit SET seq = 11 WHERE seq = -1",
		}, 10, "does not open"},
		{"a damaged record inside the second span", []string{"UPDATE audit SET rec = overlay(rec placing '\\x00'::bytea from 40 for 1) WHERE seq = 15"}, 15, "does not open"},
		{"a break in the second span and another in the fourth: the first is reported", []string{
			"DELETE FROM audit WHERE seq = 35", "DELETE FROM audit WHERE seq = 21",
		}, 21, "missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dsn := cluster.Database(t)
			st := openStore(t, dsn)
			for i := range 4 {
				if err := appendEvents(st, fmt.Sprint("tx", i), 10); err != nil {
					t.Fatal(err)
				}
			}
			if h := st.AuditHead().Seq; h != 40 {
				t.Fatalf("head %d, want 40", h)
			}
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			for _, q := range tt.sql {
				if _, err := conn.Exec(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			storetest.SpansFindTheFirstBreak(t, st, tt.broken, tt.reason)
		})
	}
}
