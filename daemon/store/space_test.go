package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// lockedBuffer is a log sink tests read while the store writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func TestWritesStopBelowTheReserveAndResumeATenthAboveIt(t *testing.T) {
	var free atomic.Uint64
	free.Store(200 << 20)
	var logs lockedBuffer
	st, err := Open(Options{Dir: t.TempDir(), EncryptionKey: testKey, MemTableSize: 1 << 20, Reserve: 100 << 20,
		SpaceCheckEvery: time.Hour, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		statfs: func(string) (uint64, error) { return free.Load(), nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := serviceFor(t, st)
	ctx := context.Background()
	create := func(name string) error {
		_, _, err := svc.CreateUser(ctx, admin, api.CreateUser{Username: name})
		return err
	}
	if err := create("before"); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		free    uint64
		refused bool
	}{
		{99 << 20, true},   // below the reserve
		{105 << 20, true},  // above it, but not by a tenth: no flapping
		{111 << 20, false}, // a tenth above: resume
		{101 << 20, false}, // above the reserve: go on
	} {
		free.Store(step.free)
		st.checkSpace()
		err := create(fmt.Sprintf("at-%d", step.free>>20))
		if got := errors.Is(err, core.ErrStorageFull); got != step.refused || (!step.refused && err != nil) {
			t.Fatalf("with %s free a write answered %v", mib(step.free), err)
		}
		if step.refused {
			var sf *StorageFullError
			if !errors.As(st.Ready(), &sf) || sf.Free != step.free || sf.Reserve != 100<<20 {
				t.Fatalf("Ready says %v", st.Ready())
			}
			if _, err := svc.GetUser(ctx, admin, "before"); err != nil {
				t.Fatalf("a read while full: %v", err)
			}
		}
	}
	if n := strings.Count(logs.String(), "level=ERROR msg=\"STORAGE FULL"); n != 1 {
		t.Errorf("the full disk was logged at ERROR %d times, want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "storage space returned") {
		t.Error("the return of space was not logged")
	}
	mustVerify(t, st, 0)
}

// allocated is how many bytes of a file have blocks on disk.
func allocated(t *testing.T, path string) (size, blocks int64) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Size, st.Blocks * 512
}

func TestTheWriteAheadLogIsAllocatedBeforeBadgerWritesToIt(t *testing.T) {
	dir := t.TempDir()
	const mt = 1 << 20
	st, err := Open(Options{Dir: dir, EncryptionKey: testKey, MemTableSize: mt, Reserve: 1})
	if err != nil {
		t.Fatal(err)
	}
	svc := serviceFor(t, st)
	check := func(when string) {
		t.Helper()
		fids, _ := memFids(dir)
		active, next := memPath(dir, fids[len(fids)-2]), memPath(dir, fids[len(fids)-1])
		if size, blocks := allocated(t, active); size != 2*mt || blocks < size {
			t.Errorf("%s: the log Badger writes to has %d of %d bytes allocated", when, blocks, size)
		}
		if size, blocks := allocated(t, next); size != 0 || blocks < 2*mt {
			t.Errorf("%s: the next log is %d bytes with %d allocated, want empty with %d allocated", when, size, blocks, 2*mt)
		}
	}
	check("after open")
	fids, _ := memFids(dir)
	first := fids[len(fids)-1]
	for i := 0; ; i++ { // until Badger takes the log made ahead into use
		createUsers(t, svc, "rot"+string(rune('a'+i%26)), 100)
		st.checkSpace()
		if fids, _ = memFids(dir); fids[len(fids)-2] >= first {
			break
		}
	}
	check("after the memtable rotated")
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	fids, _ = memFids(dir)
	for _, fid := range fids {
		if size, _ := allocated(t, memPath(dir, fid)); size == 0 {
			t.Errorf("an empty log %d is left after Close (Badger's own tools refuse it)", fid)
		}
	}
}

func TestWhenTheNextLogCannotBeMadeWritesStop(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(Options{Dir: dir, EncryptionKey: testKey, MemTableSize: 1 << 20, Reserve: 1, SpaceCheckEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fids, _ := memFids(dir)
	next := memPath(dir, fids[len(fids)-1])
	os.Remove(next)
	if err := os.Mkdir(next, 0o700); err != nil { // stands in for a disk that refuses the file
		t.Fatal(err)
	}
	st.prep.next = ""
	st.checkSpace()
	var sf *StorageFullError
	if !errors.As(st.Ready(), &sf) || sf.Cause == "" {
		t.Fatalf("Ready says %v; want writes stopped naming the cause", st.Ready())
	}
	os.Remove(next)
	st.checkSpace()
	if err := st.Ready(); err != nil {
		t.Fatalf("once the log could be made, Ready still says %v", err)
	}
}
