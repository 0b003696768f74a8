package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/store/postgres"
)

// smallTablespace mounts a tmpfs of size MiB, makes it a tablespace of
// the private cluster and creates a database in it: its tables fill the
// tmpfs while the cluster's write-ahead log stays on the cluster's own
// disk. It returns the database's DSN and the mount; everything goes
// after the test. Mounting needs root.
func smallTablespace(t *testing.T, size int) (dsn, mnt string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: putting a tablespace on a small tmpfs to fill needs root (run the tests as root to exercise PostgreSQL's full disk)")
	}
	mnt, err := os.MkdirTemp("", "keyfleet-pgfull-")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm,mode=0700", size), "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount -t tmpfs: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run(); os.Remove(mnt) })
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(pgUser.Uid)
	gid, _ := strconv.Atoi(pgUser.Gid)
	if err := os.Chown(mnt, uid, gid); err != nil {
		t.Fatal(err)
	}
	space := "full_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	super(t, "CREATE TABLESPACE "+space+" LOCATION '"+mnt+"'")
	t.Cleanup(func() { super(t, "DROP TABLESPACE IF EXISTS "+space) })
	super(t, "CREATE DATABASE "+space+" TABLESPACE "+space)
	t.Cleanup(func() { super(t, "DROP DATABASE IF EXISTS "+space+" WITH (FORCE)") })
	return cluster.DSN(space), mnt
}

// super runs a statement as the cluster's superuser.
func super(t *testing.T, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, cluster.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// fill grows a file on mnt until leave bytes are free there.
func fill(t *testing.T, mnt string, leave uint64) string {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(mnt, &st); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(mnt, "filler")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if free := st.Bavail * uint64(st.Bsize); free > leave {
		if err := unix.Fallocate(int(f.Fd()), 0, 0, int64(free-leave)); err != nil {
			t.Fatalf("filling the tmpfs: %v", err)
		}
	}
	return path
}

// TestAFullDatabaseDiskIsStorageFullAndWritesResumeWhenSpaceReturns: the
// database's tables live on a small disk that fills while keyfleet
// writes. The write PostgreSQL refuses (SQLSTATE 53100) comes back as
// the store's storage-full error (503 /problems/storage-full in the API,
// not a generic "store unavailable"), the store reports not ready, reads
// go on, nothing acknowledged is lost, and once space returns the next
// write goes through and the store is ready again, with the chain intact.
func TestAFullDatabaseDiskIsStorageFullAndWritesResumeWhenSpaceReturns(t *testing.T) {
	dsn, mnt := smallTablespace(t, 32)
	ctx := context.Background()
	st, err := postgres.Open(ctx, postgres.Options{DSN: dsn, StoreKey: storeKey})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	filler := fill(t, mnt, 256<<10)
	create := func(i int) error {
		return st.Update(ctx, func(tx core.Tx) error {
			u := core.User{ID: fmt.Sprintf("usr_%026d", i), Username: fmt.Sprintf("user-%05d", i), DisplayName: strings.Repeat("n", 300),
				Kind: api.KindPerson, Status: api.UserActive, CreatedAt: t0, UpdatedAt: t0}
			if err := tx.InsertUser(u); err != nil {
				return err
			}
			return tx.Audit(&audit.Event{Time: t0, Actor: api.Actor{ID: "system"}, Action: "user.create", Target: api.Target{Type: "user", ID: u.ID}})
		})
	}
	acked, i := 0, 0
	for ; i < 20000; i++ {
		err = create(i)
		if err != nil {
			break
		}
		acked++
	}
	var full *postgres.StorageFullError
	if !errors.As(err, &full) || !errors.Is(err, core.ErrStorageFull) || !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("after %d users on a full disk, a write failed with %v (%T), want the storage-full error", acked, err, err)
	}
	t.Logf("%d users acknowledged, then: %v", acked, err)
	if rerr := st.Ready(); !errors.Is(rerr, core.ErrStorageFull) {
		t.Fatalf("the store is ready on a full disk: %v", rerr)
	}
	if err := st.View(ctx, func(tx core.ReadTx) error { _, err := tx.UserByName("user-00000"); return err }); err != nil {
		t.Fatalf("a read on a full disk: %v", err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := create(i); err != nil {
		t.Fatalf("a write once space returned: %v", err)
	}
	if err := st.Ready(); err != nil {
		t.Fatalf("the store is not ready once a write went through: %v", err)
	}
	for k := range acked + 1 {
		if err := st.View(ctx, func(tx core.ReadTx) error { _, err := tx.UserByName(fmt.Sprintf("user-%05d", k)); return err }); err != nil {
			t.Fatalf("acknowledged user %d: %v", k, err)
		}
	}
	rep, err := core.VerifyStore(ctx, st)
	if err != nil || rep.Break != nil || rep.Checked != uint64(acked+1) {
		t.Fatalf("the chain after the full disk: %+v %v (want %d events)", rep, err, acked+1)
	}
}
