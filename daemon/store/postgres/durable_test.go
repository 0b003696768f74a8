package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestNothingIsAcknowledgedBeforeItIsDurable: the operator asks for a
// synchronous standby that is not there (synchronous_standby_names), so
// no commit made with the session's synchronous_commit can be confirmed.
// Eight writers' audited transactions, sharing commits or not, commit
// (the head's lock must not wait for the disk), but none is acknowledged
// while the barriers after them wait for the standby; once the operator
// drops the requirement, every one is acknowledged, and stored.
func TestNothingIsAcknowledgedBeforeItIsDurable(t *testing.T) {
	dsn := cluster.Database(t)
	st := openStore(t, dsn)
	if err := appendEvents(st, "warm", 1); err != nil { // the tail is known: commits are pipelined
		t.Fatal(err)
	}
	super(t, "ALTER SYSTEM SET synchronous_standby_names = 'nobody'")
	super(t, "SELECT pg_reload_conf()")
	released := false
	release := func() {
		if !released {
			released = true
			super(t, "ALTER SYSTEM RESET synchronous_standby_names")
			super(t, "SELECT pg_reload_conf()")
		}
	}
	t.Cleanup(release)
	// A probe commits again and again until its commit waits for the
	// standby: from then on, every commit with synchronous_commit on does.
	probe, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	probed := make(chan struct{})
	stopProbe, stop := context.WithCancel(context.Background())
	go func() {
		defer close(probed)
		for stopProbe.Err() == nil {
			if _, err := probe.Exec(stopProbe, "SELECT pg_logical_emit_message(true, 'probe', '')"); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { stop(); release(); <-probed; probe.Close(context.Background()) })
	waitFor(t, dsn, "a commit to wait for the standby", func(c *pgx.Conn) bool {
		var waiting int
		c.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'").Scan(&waiting)
		return waiting > 0
	})

	const writers = 8
	var acked sync.Map
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			name := fmt.Sprintf("x%d", w)
			if err := appendEvents(st, name, 1); err != nil {
				t.Errorf("%s: %v", name, err)
				return
			}
			acked.Store(name, true)
		})
	}
	// Writers' transactions are committed (visible), and the barriers
	// after them wait for the standby with the probe.
	waitFor(t, dsn, "commits, and a barrier waiting for the standby", func(c *pgx.Conn) bool {
		var events, waiting int
		c.QueryRow(context.Background(), "SELECT count(*) FROM audit WHERE action LIKE 'x%'").Scan(&events)
		c.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'").Scan(&waiting)
		if testing.Verbose() {
			var acts string
			c.QueryRow(context.Background(), "SELECT string_agg(coalesce(wait_event, '-') || ':' || left(query, 40), ' | ') FROM pg_stat_activity WHERE datname = current_database()").Scan(&acts)
			t.Logf("%d events, %d waiting: %s", events, waiting, acts)
		}
		return events > 0 && waiting > 1
	})
	acked.Range(func(k, _ any) bool {
		t.Errorf("%s was acknowledged while its commit waited for the standby", k)
		return true
	})
	stop()
	release()
	wg.Wait()
	for w := range writers {
		if _, ok := acked.Load(fmt.Sprintf("x%d", w)); !ok {
			t.Errorf("x%d was not acknowledged once the standby was no longer required", w)
		}
	}
	checkChain(t, st, map[string]bool{}, 1)
	if head := st.AuditHead().Seq; head != writers+1 {
		t.Fatalf("the chain has %d events, want %d", head, writers+1)
	}
}

// waitFor polls the database at dsn until ok holds (a minute at most).
func waitFor(t *testing.T, dsn, what string, ok func(*pgx.Conn) bool) {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if ok(c) {
			return
		}
	}
	t.Fatalf("waited a minute for %s", what)
}
