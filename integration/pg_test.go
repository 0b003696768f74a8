package integration

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyfleet/keyfleet/internal/pgtest"
)

// pg is the private PostgreSQL cluster, started by the first test that
// needs it and stopped by TestMain.
var pg struct {
	once sync.Once
	c    *pgtest.Cluster
	err  error
}

// pgDatabase is a new database of the private cluster, for t.
func pgDatabase(t *testing.T) string {
	t.Helper()
	pg.once.Do(func() { pg.c, pg.err = pgtest.Start() })
	if pg.err != nil {
		t.Fatal(pg.err)
	}
	return pg.c.Database(t)
}

func stopPG() {
	if pg.c != nil {
		if err := pg.c.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
}

// pgExec runs one statement on the database at dsn.
func pgExec(t *testing.T, dsn, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// pgValue reads one text value from the database at dsn ("" for none).
func pgValue(t *testing.T, dsn, sql string, args ...any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, sql, args...).Scan(&v); err != nil && err != pgx.ErrNoRows {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}
