// Package pgtest runs a private PostgreSQL cluster for tests: initdb in a
// temporary folder, owned by the unprivileged postgres user when the tests
// run as root, started on a free loopback port, polled until it accepts
// connections, and stopped by its own pg_ctl when the tests end (one left
// running by a test binary that was killed is stopped by the next Start,
// which finds its test process gone). One cluster serves a whole test binary (start it from TestMain); each test
// gets a database of its own.
//
// A missing PostgreSQL fails the tests, naming the Debian package to
// install (scripts/deps.sh installs it); it never skips.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BinDir is where Debian's postgresql package puts the server programs.
const BinDir = "/usr/lib/postgresql/15/bin"

// ErrMissing: PostgreSQL's programs are not installed.
var ErrMissing = errors.New("PostgreSQL 15 is not installed: apt-get install postgresql (scripts/deps.sh test installs it)")

// OptionsEnv names an environment variable whose value is added to the
// server's command line, for profiling: for example
// "-c shared_preload_libraries=pg_stat_statements".
const OptionsEnv = "KEYFLEET_PGTEST_OPTIONS"

// Cluster is a running private cluster.
type Cluster struct {
	dir  string
	port int
	run  []string // how to run its programs (runuser as postgres when root)
	keep bool     // Stop leaves the folder (Keep)

	mu sync.Mutex
	n  int
}

// Start makes and starts a cluster in a new temporary folder.
func Start() (*Cluster, error) {
	if _, err := os.Stat(filepath.Join(BinDir, "initdb")); err != nil {
		return nil, ErrMissing
	}
	reapOrphans()
	dir, err := os.MkdirTemp("", "keyfleet-pg-")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c := &Cluster{dir: dir}
	if os.Geteuid() == 0 {
		if err := c.asPostgres(); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if err := c.initdb(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := c.start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

// ownerFile names, in a cluster's folder, the test process it serves.
const ownerFile = "owner.pid"

// reapOrphans stops and removes the clusters whose test process is gone
// (killed by a timeout or Ctrl-C before its Stop ran), so that they do
// not run on. A folder without an owner, or whose owner lives, is left.
func reapOrphans() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "keyfleet-pg-*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		c := &Cluster{dir: dir}
		if os.Geteuid() == 0 {
			c.run = []string{"runuser", "-u", "postgres", "--"}
		}
		if _, err := os.Stat(filepath.Join(c.data(), "postmaster.pid")); err == nil {
			c.cmd("pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "stop").Run()
		}
		os.RemoveAll(dir)
	}
}

// processAlive reports whether a process with pid exists.
func processAlive(pid int) bool {
	_, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid)))
	return err == nil
}

// Keep starts the cluster kept in dir, making it there the first time:
// for benchmarks whose data takes minutes to build. Stop stops it and
// leaves dir; the next Keep starts it again with its databases.
func Keep(dir string) (*Cluster, error) {
	if _, err := os.Stat(filepath.Join(BinDir, "initdb")); err != nil {
		return nil, ErrMissing
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	// The postgres user must be able to reach the folder.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !os.IsExist(err) {
		return nil, err
	}
	c := &Cluster{dir: dir, keep: true}
	if os.Geteuid() == 0 {
		if err := c.asPostgres(); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(c.data(), "PG_VERSION")); err != nil {
		if err := c.initdb(); err != nil {
			return nil, err
		}
	}
	return c, c.start()
}

// HasDatabase reports whether the cluster holds database db.
func (c *Cluster) HasDatabase(db string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return false, err
	}
	defer conn.Close(ctx)
	var ok bool
	err = conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", db).Scan(&ok)
	return ok, err
}

// CreateDatabase creates database db.
func (c *Cluster) CreateDatabase(db string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize())
	return err
}

// DropDatabase drops database db if it exists.
func (c *Cluster) DropDatabase(db string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize())
	return err
}

// asPostgres hands the folder to the postgres user: the server refuses
// to run as root.
func (c *Cluster) asPostgres() error {
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("%w (no postgres user: %v)", ErrMissing, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(c.dir, uid, gid); err != nil {
		return err
	}
	c.run = []string{"runuser", "-u", "postgres", "--"}
	return nil
}

func (c *Cluster) cmd(name string, args ...string) *exec.Cmd {
	argv := append(append(append([]string{}, c.run...), filepath.Join(BinDir, name)), args...)
	return exec.Command(argv[0], argv[1:]...)
}

func (c *Cluster) initdb() error {
	out, err := c.cmd("initdb", "-D", c.data(), "-A", "trust", "-U", "keyfleet", "--no-sync", "-E", "UTF8").CombinedOutput()
	if err != nil {
		return fmt.Errorf("initdb: %v: %s", err, out)
	}
	return nil
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

func (c *Cluster) start() error {
	for range 5 {
		port, err := freePort()
		if err != nil {
			return err
		}
		c.port = port
		opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200 -c shared_buffers=64MB", port, c.dir)
		if more := os.Getenv(OptionsEnv); more != "" {
			opts += " " + more
		}
		out, err := c.cmd("pg_ctl", "-D", c.data(), "-o", opts, "-l", filepath.Join(c.dir, "log"), "-w", "-t", "60", "start").CombinedOutput()
		if err == nil {
			return c.waitReady()
		}
		log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		if !strings.Contains(string(log), "in use") {
			return fmt.Errorf("pg_ctl start: %v: %s\n%s", err, out, log)
		}
	}
	return errors.New("pg_ctl start: no free port after 5 tries")
}

// waitReady polls until the server accepts a connection.
func (c *Cluster) waitReady() error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, c.DSN("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("PostgreSQL did not accept connections: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// PostmasterPID is the process id of the cluster's server; its backends
// are its children.
func (c *Cluster) PostmasterPID() (int, error) {
	b, err := os.ReadFile(filepath.Join(c.data(), "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(line))
}

// CPU is what the cluster's processes (the server and its children) have
// spent on CPU so far, by process, for benchmarks that count the
// server's work as well as their own. A process that ends takes its time
// with it.
type CPU map[int]time.Duration

// CPU reads the time on CPU (schedstat) of each of the cluster's
// processes; none when it does not run.
func (c *Cluster) CPU() CPU {
	out := CPU{}
	pm, err := c.PostmasterPID()
	if err != nil {
		return out
	}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …, and the comm may hold spaces.
		f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:]))
		if len(f) < 2 || (pid != pm && f[1] != strconv.Itoa(pm)) {
			continue
		}
		ss, err := os.ReadFile(filepath.Join("/proc", d.Name(), "schedstat"))
		if err != nil {
			continue
		}
		if f := strings.Fields(string(ss)); len(f) > 0 {
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			out[pid] = time.Duration(ns)
		}
	}
	return out
}

// Since is the CPU time spent since start by the processes running now.
func (now CPU) Since(start CPU) time.Duration {
	var d time.Duration
	for pid, t := range now {
		d += t - start[pid]
	}
	return d
}

// Port is the cluster's loopback port.
func (c *Cluster) Port() int { return c.port }

// DSN is the connection string of database db.
func (c *Cluster) DSN(db string) string {
	return fmt.Sprintf("postgres://keyfleet@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// NewDatabase creates an empty database and returns its name.
func (c *Cluster) NewDatabase() (string, error) {
	c.mu.Lock()
	c.n++
	n := c.n
	c.mu.Unlock()
	b := make([]byte, 4)
	rand.Read(b)
	name := fmt.Sprintf("kf_%d_%s", n, hex.EncodeToString(b))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+name)
	return name, err
}

// Database creates a database for t and returns its DSN.
func (c *Cluster) Database(t testing.TB) string {
	t.Helper()
	name, err := c.NewDatabase()
	if err != nil {
		t.Fatalf("creating a database: %v", err)
	}
	return c.DSN(name)
}

// Dump runs pg_dump on database db (plain SQL, data included).
func (c *Cluster) Dump(db string) ([]byte, error) {
	out, err := exec.Command("pg_dump", "-h", "127.0.0.1", "-p", strconv.Itoa(c.port), "-U", "keyfleet", db).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("pg_dump: %v: %s", err, ee.Stderr)
		}
		return nil, fmt.Errorf("pg_dump (apt-get install postgresql-client): %w", err)
	}
	return out, nil
}

// Stop stops the server and removes its folder (a kept one is stopped
// cleanly and left).
func (c *Cluster) Stop() error {
	if c.keep {
		out, err := c.cmd("pg_ctl", "-D", c.data(), "-m", "fast", "-w", "stop").CombinedOutput()
		if err != nil {
			return fmt.Errorf("pg_ctl stop: %v: %s", err, out)
		}
		return nil
	}
	out, err := c.cmd("pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "stop").CombinedOutput()
	os.RemoveAll(c.dir)
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %v: %s", err, out)
	}
	return nil
}

// Main starts a cluster, runs the tests and stops it: call it from
// TestMain. *cl is set while the tests run. A cluster that cannot start
// fails the binary with the reason.
func Main(m *testing.M, cl **Cluster) int {
	c, err := Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: starting PostgreSQL: %v\n", err)
		return 1
	}
	*cl = c
	code := m.Run()
	if err := c.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
	}
	return code
}
