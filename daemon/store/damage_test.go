package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// crashCopy copies an open store's folder as a crash would leave it: the
// logs hold what was written to them, nothing was flushed at close.
func crashCopy(t *testing.T, dir string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "crashed")
	if out, err := exec.Command("cp", "-a", dir, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	os.Remove(filepath.Join(dst, "LOCK"))
	return dst
}

// createUsers creates n users from 8 writers (they share syncs).
func createUsers(t *testing.T, svc *core.Service, prefix string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				if _, _, err := svc.CreateUser(context.Background(), admin, api.CreateUser{Username: fmt.Sprintf("%s%d", prefix, i),
					DisplayName: strings.Repeat("d", 100)}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// newestLog is the store's newest write-ahead log that holds entries,
// and how many bytes of it are used.
func newestLog(t *testing.T, dir string) (string, int) {
	t.Helper()
	fids, err := memFids(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(fids) - 1; i >= 0; i-- {
		p := memPath(dir, fids[i])
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if n := lastNonZero(b) + 1; n > 4096 {
			return p, n
		}
	}
	t.Fatal("no write-ahead log holds entries")
	return "", 0
}

func flip(t *testing.T, path string, at, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, int64(at)); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] ^= 0xa5
	}
	if _, err := f.WriteAt(b, int64(at)); err != nil {
		t.Fatal(err)
	}
}

func openOpts(dir string) Options {
	return Options{Dir: dir, EncryptionKey: testKey, MemTableSize: 2 << 20, Reserve: 1}
}

func TestBytesFlippedInTheNewestLogAreRefusedNamingTheFileUntilTheLossIsAccepted(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(openOpts(dir))
	if err != nil {
		t.Fatal(err)
	}
	svc := serviceFor(t, st)
	createUsers(t, svc, "w", 600)
	head := st.AuditHead()
	crashed := crashCopy(t, dir)
	st.Close()

	log, used := newestLog(t, crashed)
	flip(t, log, used/2, 32)
	_, err = Open(openOpts(crashed))
	var de *DamageError
	if !errors.As(err, &de) || !errors.Is(err, ErrDamaged) {
		t.Fatalf("opening a store with a damaged log answered %v", err)
	}
	d := de.Damages[0]
	if d.File != log || d.Kind != "write-ahead log" || !d.HasSeq || d.LastIntactSeq >= head.Seq || d.SeqAfter != head.Seq {
		t.Fatalf("the damage reported is %+v; want %s, intact up to below %d and entries after it up to %d", d, log, head.Seq, head.Seq)
	}
	for _, want := range []string{filepath.Base(log), fmt.Sprintf("seq %d", d.LastIntactSeq), "recover --accept-loss", "backup"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not say %q:\n%v", want, err)
		}
	}

	quarantine := filepath.Join(t.TempDir(), "quarantine")
	accepted, err := AcceptLoss(openOpts(crashed), quarantine)
	if err != nil || accepted == nil || len(accepted.Damages) != 1 {
		t.Fatalf("AcceptLoss: %v, %+v", err, accepted)
	}
	if _, err := os.Stat(filepath.Join(quarantine, filepath.Base(log))); err != nil {
		t.Errorf("no copy of the damaged log was kept: %v", err)
	}
	st2, err := Open(openOpts(crashed))
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if before, after, err := st2.RepairHead(); err != nil || before != after {
		t.Errorf("cutting a log's tail left the head to repair: %v %v %v", before, after, err)
	}
	if got := st2.AuditHead().Seq; got != d.LastIntactSeq {
		t.Errorf("after accepting the loss the head is %d, want the last intact %d", got, d.LastIntactSeq)
	}
	mustVerify(t, st2, 0)
}

func TestADamagedOrTruncatedTableIsRefusedNamingTheFileNotACrash(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string, size int)
		reason string
	}{
		{"bytes flipped in a block", func(t *testing.T, p string, size int) { flip(t, p, size/3, 32) }, "checksum"}, // a mismatch, or a checksum length that cannot be, as the flip lands
		{"bytes flipped in the index", func(t *testing.T, p string, size int) { flip(t, p, size-200, 16) }, "index"},
		{"the file cut in half", func(t *testing.T, p string, size int) { os.Truncate(p, int64(size/2)) }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			st, err := Open(openOpts(dir))
			if err != nil {
				t.Fatal(err)
			}
			createUsers(t, serviceFor(t, st), "t", 600)
			st.Close()
			if k := tableKinds(t, dir); k[tableCompression] == 0 {
				t.Fatalf("no table is compressed as the store writes them: %v", k)
			}
			path, size := largestTable(t, dir)
			tc.damage(t, path, size)
			_, err = Open(openOpts(dir))
			var de *DamageError
			if !errors.As(err, &de) || de.Damages[0].File != path || de.Damages[0].Kind != "table" {
				t.Fatalf("opening a store with a damaged table answered %v", err)
			}
			if !strings.Contains(err.Error(), filepath.Base(path)) || !strings.Contains(de.Damages[0].Reason, tc.reason) {
				t.Errorf("the refusal does not name the file and say %q:\n%v", tc.reason, err)
			}
			if _, err := AcceptLoss(openOpts(dir), filepath.Join(t.TempDir(), "q")); err != nil {
				t.Fatal(err)
			}
			st2, err := Open(openOpts(dir))
			if err != nil {
				t.Fatalf("the store does not open after the loss was accepted: %v", err)
			}
			defer st2.Close()
			if _, _, err := st2.RepairHead(); err != nil {
				t.Fatal(err)
			}
			if err := st2.Ready(); err != nil {
				t.Fatal(err)
			}
			if _, _, err := serviceFor(t, st2).CreateUser(context.Background(), admin, api.CreateUser{Username: "after-loss"}); err != nil {
				t.Fatalf("a write after the loss was accepted: %v", err)
			}
		})
	}
}

func largestTable(t *testing.T, dir string) (string, int) {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	var best string
	var size int64
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil && st.Size() > size {
			best, size = m, st.Size()
		}
	}
	if best == "" {
		t.Fatal("the store has no table")
	}
	return best, int(size)
}
