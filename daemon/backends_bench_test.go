package daemon_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyfleet/keyfleet/daemon"
	"github.com/keyfleet/keyfleet/internal/pgtest"
)

// The benchmarks run each figure on both store backends side by side:
// Badger in the data folder, and PostgreSQL in a private cluster (started
// the first time a benchmark needs it, stopped when the test binary ends;
// its own fsync on, as in production).

const (
	badger   = daemon.BackendBadger
	postgres = daemon.BackendPostgres
)

var backends = []string{badger, postgres}

var pg struct {
	once sync.Once
	c    *pgtest.Cluster
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pg.c != nil {
		if err := pg.c.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}

// pgCluster starts the private PostgreSQL once per test binary.
func pgCluster(b testing.TB) *pgtest.Cluster {
	b.Helper()
	pg.once.Do(func() { pg.c, pg.err = pgtest.Start() })
	if pg.err != nil {
		b.Fatal(pg.err)
	}
	return pg.c
}

// onBackend returns cfg with its store on backend: a new database for
// PostgreSQL (the DSN), or nothing to change for Badger.
func onBackend(b testing.TB, cfg daemon.Config, backend, dsn string) daemon.Config {
	if backend == postgres {
		cfg.Store.Backend = postgres
		cfg.Store.Postgres.DSN = dsn
	}
	return cfg
}

// newDSN is a new, empty database ("" for Badger).
func newDSN(b testing.TB, backend string) string {
	if backend != postgres {
		return ""
	}
	return pgCluster(b).Database(b)
}

// nodes are one or more keyfleetd serving the same store (PostgreSQL
// only for more than one), each in this process on its own port.
type nodes struct {
	urls    []string
	servers []*daemon.Server
	hc      *http.Client
}

// url spreads calls over the keyfleetd round robin.
func (n *nodes) url(i int64) string { return n.urls[int(i)%len(n.urls)] }

// serveNodes starts count keyfleetd on dir with cfg.
func serveNodes(b testing.TB, dir string, cfg daemon.Config, o daemon.Options, count int) *nodes {
	b.Helper()
	n := &nodes{}
	for range count {
		srv, url, hc, stop, err := serveServer(dir, cfg, o)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(stop)
		n.urls, n.servers, n.hc = append(n.urls, url), append(n.servers, srv), hc
	}
	return n
}

// initOn makes a data folder whose store is on backend, as keyfleetd
// init does, and returns it with its config and the admin token.
func initOn(b testing.TB, backend string) (string, daemon.Config, string) {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "data")
	dsn := newDSN(b, backend)
	if _, err := daemon.Init(context.Background(), daemon.InitOptions{Dir: dir, PostgresDSN: dsn}); err != nil {
		b.Fatal(err)
	}
	tok, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		b.Fatal(err)
	}
	return dir, onBackend(b, daemon.Config{DataDir: dir}, backend, dsn), strings.TrimSpace(string(tok))
}

// copyData copies a data folder made by init (and its checkpoint file
// beside it) to a new folder, on backend: for PostgreSQL, the store is
// copied into a new database with keyfleetd migrate-store's code, and
// the copy's folder keeps the keys, the TLS pair and the tokens.
func copyData(b testing.TB, from, backend string) (string, daemon.Config) {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "data")
	if out, err := exec.Command("cp", "-a", from, dir).CombinedOutput(); err != nil {
		b.Fatalf("copying %s: %v %s", from, err, out)
	}
	if _, err := os.Stat(from + ".checkpoint"); err == nil {
		if out, err := exec.Command("cp", "-a", from+".checkpoint", dir+".checkpoint").CombinedOutput(); err != nil {
			b.Fatalf("copying the checkpoint: %v %s", err, out)
		}
	}
	cfg := daemon.Config{DataDir: dir}
	if backend != postgres {
		return dir, cfg
	}
	dsn := newDSN(b, backend)
	if _, err := daemon.CopyStore(context.Background(), cfg, os.Getenv, "", dsn); err != nil {
		b.Fatalf("copying the store into PostgreSQL: %v", err)
	}
	return dir, onBackend(b, cfg, backend, dsn)
}

// quiet is the options every benchmark's keyfleetd runs with: request
// logging on, its output discarded.
func quiet(o daemon.Options) daemon.Options {
	o.LogOut = io.Discard
	return o
}

// cpuMeter measures the CPU time a benchmark costs: this process's (the
// keyfleetd and the clients, which share it) and the private PostgreSQL
// server's. On a loaded machine the rate depends on what else runs; the
// CPU time per operation much less, and the number of cores divided by
// it is what the rate would be on free cores.
type cpuMeter struct {
	self time.Duration
	pg   pgtest.CPU
}

func startCPU() cpuMeter { return cpuMeter{selfCPU(), postgresCPU()} }

// report adds cpu-us/op and, when PostgreSQL ran, pg-cpu-us/op (the time
// of server processes that ended during the run is not counted).
func (m cpuMeter) report(b *testing.B, ops int) {
	self := selfCPU() - m.self
	b.ReportMetric(float64(self.Microseconds())/float64(ops), "cpu-us/op")
	if pg := postgresCPU().Since(m.pg); pg > 0 {
		b.ReportMetric(float64(pg.Microseconds())/float64(ops), "pg-cpu-us/op")
	}
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func postgresCPU() pgtest.CPU {
	if pg.c == nil {
		return nil
	}
	return pg.c.CPU()
}

// pgStatsEnv names a file that gets, after a benchmark on PostgreSQL, the
// statements PostgreSQL ran during its measured part, from
// pg_stat_statements: calls and time per operation, busiest first. The
// server must load the module: run with
// KEYFLEET_PGTEST_OPTIONS="-c shared_preload_libraries=pg_stat_statements
// -c pg_stat_statements.track_planning=on" (planning times are 0 without
// the second).
const pgStatsEnv = "KEYFLEET_BENCH_PGSTATS"

type pgStats struct{ dsn, path string }

// startPGStats resets the statistics of the database at dsn when
// KEYFLEET_BENCH_PGSTATS is set (and dsn is not empty).
func startPGStats(b *testing.B, dsn string) pgStats {
	path := os.Getenv(pgStatsEnv)
	if path == "" || dsn == "" {
		return pgStats{}
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"); err != nil {
		b.Fatalf("%v (start PostgreSQL with %s=\"-c shared_preload_libraries=pg_stat_statements\")", err, pgtest.OptionsEnv)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_stat_statements_reset()"); err != nil {
		b.Fatal(err)
	}
	return pgStats{dsn, path}
}

// write appends the statements run since startPGStats to the file.
func (s pgStats) write(b *testing.B, ops int) {
	if s.path == "" {
		return
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT calls, total_exec_time, total_plan_time, rows, query FROM pg_stat_statements
		WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY total_exec_time + total_plan_time DESC`)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	out, err := os.OpenFile(s.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	fmt.Fprintf(out, "== %s (%d operations)\ncalls/op  exec-us/op  plan-us/op  rows/call  query\n", b.Name(), ops)
	var calls, all, plans float64
	for rows.Next() {
		var n, nrows int64
		var ms, plan float64
		var q string
		if err := rows.Scan(&n, &ms, &plan, &nrows, &q); err != nil {
			b.Fatal(err)
		}
		calls, all, plans = calls+float64(n), all+ms, plans+plan
		fmt.Fprintf(out, "%8.2f  %10.1f  %10.1f  %9.2f  %s\n", float64(n)/float64(ops), ms*1000/float64(ops), plan*1000/float64(ops), float64(nrows)/float64(n), strings.Join(strings.Fields(q), " "))
	}
	fmt.Fprintf(out, "%8.2f  %10.1f  %10.1f  (all)\n\n", calls/float64(ops), all*1000/float64(ops), plans*1000/float64(ops))
}
