package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/core/coretest"
	"github.com/keyfleet/keyfleet/daemon/seal"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

// smallFS mounts a file system of size MiB under the test's folder, a
// tmpfs or an ext4 image on a loop device, and unmounts it after. Mounting
// needs root: without it the test is skipped, saying so.
func smallFS(t *testing.T, kind string, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: mounting a small file system to fill needs root (run the tests as root to exercise a full disk)")
	}
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	args := []string{"-t", "tmpfs", "-o", fmt.Sprintf("size=%dm", size), "tmpfs", dir}
	if kind == "ext4" {
		img := filepath.Join(t.TempDir(), "ext4.img")
		if err := os.WriteFile(img, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Truncate(img, int64(size)<<20)
		mkfs, err := exec.LookPath("mkfs.ext4")
		if err != nil {
			t.Fatal("mkfs.ext4 is missing: install the Debian package e2fsprogs (scripts/deps.sh)")
		}
		if out, err := exec.Command(mkfs, "-q", "-F", img).CombinedOutput(); err != nil {
			t.Fatalf("mkfs.ext4: %v\n%s", err, out)
		}
		args = []string{"-o", "loop", img, dir}
	}
	if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
		t.Fatalf("mount %v: %v\n%s", args, err, out)
	}
	t.Cleanup(func() {
		// Lazily: a read-only Badger never unmaps the logs it replayed
		// (docs/operations.md), so a test that opened one keeps them
		// mapped until it exits.
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", dir, err, out)
		}
	})
	return dir
}

// settle waits until the free space on dir's file system stops changing
// (Badger's flushes and compactions are done).
func settle(t *testing.T, dir string) {
	t.Helper()
	last, _ := freeSpace(dir)
	same := 0
	waitFor(t, "the store's disk settles", func() bool {
		free, _ := freeSpace(dir)
		if free == last {
			same++
		} else {
			last, same = free, 0
		}
		return same >= 60 // 300 ms without a change
	})
}

// topUp grows the filler until only leave bytes are free.
func topUp(t *testing.T, path string, leave uint64) {
	t.Helper()
	free, _ := freeSpace(filepath.Dir(path))
	st, err := os.Stat(path)
	if err != nil || free <= leave {
		t.Fatalf("topping up the filler: %v (free %d)", err, free)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, st.Size(), int64(free-leave)); err != nil {
		t.Fatal(err)
	}
}

// filler takes all but leave bytes of dir's file system.
func filler(t *testing.T, dir string, leave uint64) string {
	t.Helper()
	free, err := freeSpace(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "filler") // on the same file system, beside the store
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if free > leave {
		if err := unix.Fallocate(int(f.Fd()), 0, 0, int64(free-leave)); err != nil {
			t.Fatalf("filling the disk: %v", err)
		}
	}
	return path
}

func openSmall(t *testing.T, dir string, reserve int64) (*Store, *core.Service) {
	t.Helper()
	st, err := Open(Options{Dir: dir, EncryptionKey: testKey, MemTableSize: 2 << 20, Reserve: reserve, SpaceCheckEvery: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() }) // before the file system is unmounted
	return st, serviceFor(t, st)
}

func serviceFor(t *testing.T, st *Store) *core.Service {
	t.Helper()
	sl, _ := seal.New(bytes.Repeat([]byte{0x17}, 32))
	svc, err := core.New(core.Config{Store: st, Sealer: sl, Kinds: []sdk.Factor{coretest.Kind{}}})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// writeUntilFull creates users from several writers until the store
// refuses for lack of space; it returns the acknowledged usernames.
func writeUntilFull(t *testing.T, svc *core.Service, prefix string) []string {
	t.Helper()
	var (
		mu    sync.Mutex
		acked []string
		full  atomic.Bool
		wg    sync.WaitGroup
		other error
	)
	pad := strings.Repeat("x", 120)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !full.Load(); i++ {
				name := fmt.Sprintf("%s%d-%d", prefix, w, i)
				_, _, err := svc.CreateUser(context.Background(), admin, api.CreateUser{Username: name, DisplayName: pad, Email: name + "@" + pad[:60] + ".example.org"})
				switch {
				case err == nil:
					mu.Lock()
					acked = append(acked, name)
					mu.Unlock()
				case errors.Is(err, core.ErrStorageFull):
					full.Store(true)
				default:
					mu.Lock()
					other = err
					mu.Unlock()
					full.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	if other != nil {
		t.Fatalf("a write failed otherwise than for lack of space: %v", other)
	}
	return acked
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAFullDiskStopsWritesKeepsReadsAndResumesWhenSpaceReturns(t *testing.T) {
	for _, kind := range []string{"tmpfs", "ext4"} {
		t.Run(kind, func(t *testing.T) { fullDiskUnderLoad(t, kind) })
	}
}

func fullDiskUnderLoad(t *testing.T, kind string) {
	mnt := smallFS(t, kind, 64)
	dir := filepath.Join(mnt, "store")
	const reserve = 12 << 20
	st, svc := openSmall(t, dir, reserve)
	fill := filler(t, mnt, reserve+6<<20)

	start := time.Now()
	acked := writeUntilFull(t, svc, "u")
	t.Logf("%d writes acknowledged in %s before the store refused", len(acked), time.Since(start).Round(time.Millisecond))
	// A compaction may give some space back once writes stop: keep the
	// disk full while the rest is looked at.
	settle(t, mnt)
	topUp(t, fill, reserve/2)
	waitFor(t, "the store sees the disk full", func() bool { return st.Ready() != nil })
	err := st.Ready()
	var sf *StorageFullError
	if !errors.As(err, &sf) || !errors.Is(err, core.ErrStorageFull) || !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("Ready says %v, want a storage-full refusal", err)
	}
	if _, _, err := svc.CreateUser(context.Background(), admin, api.CreateUser{Username: "refused"}); !errors.Is(err, core.ErrStorageFull) {
		t.Fatalf("a write while full answered %v", err)
	}
	if _, err := svc.GetUser(context.Background(), admin, acked[len(acked)-1]); err != nil {
		t.Fatalf("a read while full failed: %v", err)
	}
	mustVerify(t, st, 0)

	os.Remove(fill)
	back := time.Now()
	waitFor(t, "writes resume", func() bool { return st.Ready() == nil })
	t.Logf("writes resumed %s after space returned", time.Since(back).Round(time.Millisecond))
	if _, _, err := svc.CreateUser(context.Background(), admin, api.CreateUser{Username: "after"}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, svc = openSmall(t, dir, reserve)
	for _, name := range append(acked, "after") {
		if _, err := svc.GetUser(context.Background(), admin, name); err != nil {
			t.Fatalf("acknowledged user %s is gone: %v", name, err)
		}
	}
	mustVerify(t, st, 0)
}

func TestAStoreOpenedShortOfSpaceServesReadsAndReopensForWritesByItself(t *testing.T) {
	mnt := smallFS(t, "tmpfs", 64)
	dir := filepath.Join(mnt, "store")
	const reserve = 12 << 20
	st, svc := openSmall(t, dir, reserve)
	createUsers(t, svc, "r", 300)
	head := st.AuditHead()
	crashed := filepath.Join(mnt, "crashed")
	if out, err := exec.Command("cp", "-a", dir, crashed).CombinedOutput(); err != nil { // as a crash leaves it
		t.Fatalf("cp: %v\n%s", err, out)
	}
	st.Close()
	os.Remove(filepath.Join(crashed, "LOCK"))
	fill := filler(t, mnt, reserve/2)

	st, svc = openSmall(t, crashed, reserve)
	if s := st.SpaceStats(); !s.ReadOnly || !s.Full {
		t.Fatalf("a store opened below its reserve is not read-only: %+v", s)
	}
	if _, err := svc.GetUser(context.Background(), admin, "r299"); err != nil {
		t.Fatalf("a read from the read-only store failed: %v", err)
	}
	if st.AuditHead() != head {
		t.Fatalf("the read-only store's head is %v, want %v", st.AuditHead(), head)
	}
	mustVerify(t, st, 0)
	if _, _, err := svc.CreateUser(context.Background(), admin, api.CreateUser{Username: "refused"}); !errors.Is(err, core.ErrStorageFull) {
		t.Fatalf("a write to the read-only store answered %v", err)
	}
	os.Remove(fill)
	back := time.Now()
	waitFor(t, "the store reopens for writing", func() bool { return st.Ready() == nil })
	t.Logf("the store reopened for writing %s after space returned", time.Since(back).Round(time.Millisecond))
	if _, _, err := svc.CreateUser(context.Background(), admin, api.CreateUser{Username: "after"}); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, st, 0)
}
