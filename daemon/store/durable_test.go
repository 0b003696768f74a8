package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// gatedFlush wraps the store's sync so a test can hold it and count it.
type gatedFlush struct {
	real  func() error
	gate  chan struct{} // receives once per flush while held; nil: open
	calls atomic.Int64
	fail  atomic.Bool
}

func (g *gatedFlush) flush() error {
	g.calls.Add(1)
	if g.gate != nil {
		<-g.gate
	}
	if g.fail.Load() {
		return errors.New("injected: the disk refused the sync")
	}
	return g.real()
}

func gate(st *Store) *gatedFlush {
	g := &gatedFlush{real: st.sync.flush}
	st.sync.flush = g.flush
	return g
}

func TestAWriteIsAcknowledgedAndAuditedOnlyOnceOnDisk(t *testing.T) {
	st, svc := openAt(t, t.TempDir(), nil)
	defer st.Close()
	g := gate(st)
	g.gate = make(chan struct{})
	before := st.AuditHead()
	done := make(chan error, 1)
	go func() {
		_, _, err := svc.CreateUser(context.Background(), admin, api.CreateUser{Username: "waiting"})
		done <- err
	}()
	// The commit is in Badger's log; its sync is held.
	for g.calls.Load() == 0 {
		select {
		case err := <-done:
			t.Fatalf("the write returned (%v) before its sync ran", err)
		case <-time.After(time.Millisecond):
		}
	}
	if st.AuditHead() != before {
		t.Error("the audit head moved before the sync")
	}
	var seen int
	st.AuditScan(context.Background(), 0, func(uint64, audit.Record) (bool, error) { seen++; return true, nil })
	if seen != int(before.Seq) {
		t.Errorf("audit readers see %d events before the sync, want %d", seen, before.Seq)
	}
	select {
	case err := <-done:
		t.Fatalf("the write returned (%v) while its sync was held", err)
	case <-time.After(20 * time.Millisecond):
	}
	g.gate <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st.AuditHead().Seq != before.Seq+1 {
		t.Errorf("head %d after the sync, want %d", st.AuditHead().Seq, before.Seq+1)
	}
	mustVerify(t, st, 0)
}

func TestConcurrentWritersShareSyncs(t *testing.T) {
	st, svc := openAt(t, t.TempDir(), nil)
	defer st.Close()
	g := gate(st)
	g.gate = make(chan struct{})
	const writers = 32
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := svc.CreateUser(context.Background(), admin, api.CreateUser{Username: fmt.Sprintf("g%d", i)})
			errs <- err
		}()
	}
	// Hold the first sync until every writer has committed and waits.
	for st.sync.committed.Load() < writers {
		time.Sleep(time.Millisecond)
	}
	close(g.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := g.calls.Load(); n > 2 {
		t.Errorf("%d writers took %d syncs; waiting writers must share one", writers, n)
	}
	if st.AuditHead().Seq != writers {
		t.Errorf("head %d, want %d", st.AuditHead().Seq, writers)
	}
	mustVerify(t, st, 0)
}

func TestAFailedSyncStopsWrites(t *testing.T) {
	st, svc := openAt(t, t.TempDir(), nil)
	defer st.Close()
	g := gate(st)
	g.fail.Store(true)
	ctx := context.Background()
	if _, _, err := svc.CreateUser(ctx, admin, api.CreateUser{Username: "lost"}); !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("a write whose sync failed: err = %v, want ErrUnavailable", err)
	}
	g.fail.Store(false)
	if _, _, err := svc.CreateUser(ctx, admin, api.CreateUser{Username: "after"}); !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("a write after a failed sync: err = %v, want ErrUnavailable until restart", err)
	}
	if st.Ready() == nil {
		t.Error("the store reports ready after a failed sync")
	}
	if st.AuditHead().Seq != 0 {
		t.Errorf("an event whose sync failed is visible to audit readers (head %d)", st.AuditHead().Seq)
	}
}

func TestASyncFindsAMemtableLogMadeRightAfterTheLastListing(t *testing.T) {
	dir := t.TempDir()
	touch := func(name string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	touch("000001.mem")
	dbSyncs := 0
	w := &walSync{dir: dir, dbSync: func() error { dbSyncs++; return nil }}
	if err := w.sync(); err != nil || len(w.wals) != 1 {
		t.Fatalf("first sync: %v, logs %v", err, w.wals)
	}
	// A memtable rotates within the same file system clock tick.
	touch("000002.mem")
	if err := w.sync(); err != nil || len(w.wals) != 2 {
		t.Fatalf("after a rotation: %v, logs %v; the retired log must be synced too", err, w.wals)
	}
	os.Remove(filepath.Join(dir, "000001.mem")) // flushed to a table
	if err := w.sync(); err != nil || len(w.wals) != 1 || dbSyncs != 3 {
		t.Fatalf("after the flush: %v, logs %v, %d DB syncs", err, w.wals, dbSyncs)
	}
}

func TestClosingDuringASyncWaitsForItAndFailsLaterWrites(t *testing.T) {
	st, svc := openAt(t, t.TempDir(), nil)
	g := gate(st)
	g.gate = make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, _, err := svc.CreateUser(context.Background(), admin, api.CreateUser{Username: "inflight"})
		done <- err
	}()
	for g.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	closed := make(chan error, 1)
	go func() { closed <- st.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a sync was running", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(g.gate)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the write whose sync finished: %v", err)
	}
	if _, _, err := svc.CreateUser(context.Background(), admin, api.CreateUser{Username: "late"}); !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("a write after Close: %v", err)
	}
}

func TestAPanickingTransactionDoesNotHoldUpSyncs(t *testing.T) {
	st, svc := openAt(t, t.TempDir(), nil)
	defer st.Close()
	func() {
		defer func() { recover() }()
		st.Update(context.Background(), func(core.Tx) error { panic("a bug in a transaction") })
	}()
	if n := st.sync.inflight.Load(); n != 0 {
		t.Fatalf("%d writers still counted in a transaction after a panic", n)
	}
	if _, _, err := svc.CreateUser(context.Background(), admin, api.CreateUser{Username: "after"}); err != nil {
		t.Fatal(err)
	}
}

func TestASyncSyncsTheRetiredLogWhenBadgerTakesTheLogMadeAheadIntoUse(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("000001.mem", "entries")
	write("000002.mem", "") // made ahead, empty
	w := &walSync{dir: dir, dbSync: func() error { return nil }}
	if err := w.sync(); err != nil || len(w.inUse) != 1 {
		t.Fatalf("with a log made ahead: %v, in use %v; the empty one needs no sync", err, w.inUse)
	}
	// Badger rotates into the log made ahead: no new folder entry.
	write("000002.mem", "entries")
	if err := w.sync(); err != nil || len(w.inUse) != 2 {
		t.Fatalf("after the rotation: %v, in use %v; the retired log must be synced too", err, w.inUse)
	}
}
