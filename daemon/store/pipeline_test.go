package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// Audited writers that collide: every one reads and rewrites the same
// user, so most commits conflict and retry while others are being
// written. A conflict must leave no link in the chain, and a commit that
// Badger took must keep its place.
func TestConflictingAuditedWritersLeaveNoGapInTheChain(t *testing.T) {
	st, svc := openAt(t, t.TempDir(), nil)
	defer st.Close()
	u, _, err := svc.CreateUser(context.Background(), admin, api.CreateUser{Username: "counted"})
	if err != nil {
		t.Fatal(err)
	}
	start := st.AuditHead().Seq
	const workers, each = 16, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				errs <- retryConflicts(func() error {
					return st.Update(context.Background(), func(tx core.Tx) error {
						cur, err := tx.User(u.ID)
						if err != nil {
							return err
						}
						cur.Failures++
						if err := tx.PutUser(cur); err != nil {
							return err
						}
						return tx.Audit(&audit.Event{Action: "user.update", Target: api.Target{Type: "user", ID: u.ID},
							Extra: map[string]string{"writer": fmt.Sprintf("%d-%d", w, i), "failures": fmt.Sprint(cur.Failures)}})
					})
				})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var got core.User
	st.View(context.Background(), func(tx core.ReadTx) error { got, err = tx.User(u.ID); return err })
	if got.Failures != workers*each {
		t.Fatalf("the user was counted %d times, want %d: a conflicting commit was lost or applied twice", got.Failures, workers*each)
	}
	if head := st.AuditHead().Seq; head != start+workers*each {
		t.Fatalf("head is %d, want %d", head, start+workers*each)
	}
	mustVerify(t, st, 0)
	// The chain holds the updates in the order they were applied: each
	// event's count is one more than the one before.
	want := 1
	st.AuditScan(context.Background(), start, func(_ uint64, r audit.Record) (bool, error) {
		ev, err := r.Event()
		if err != nil {
			return false, err
		}
		if ev.Extra["failures"] != fmt.Sprint(want) {
			t.Fatalf("event %d records count %s, want %d: the chain order is not the commit order", r.Seq, ev.Extra["failures"], want)
		}
		want++
		return true, nil
	})
}

// retryConflicts retries fn while the store gives up on a write that
// kept colliding (16 writers on one record exceed its retry budget).
func retryConflicts(fn func() error) error {
	for {
		if err := fn(); !errors.Is(err, core.ErrConflict) {
			return err
		}
	}
}

// The chain lock is held while a commit takes its place, not while it is
// written: a writer held between the two does not hold up the next one.
func TestAnAuditedWriteIsWaitedForOutsideTheChainLock(t *testing.T) {
	held, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	st, err := Open(Options{Dir: t.TempDir(), EncryptionKey: testKey, afterTaken: func() {
		if first.CompareAndSwap(false, true) {
			close(held)
			<-release
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	write := func(name string) error {
		return st.Update(context.Background(), func(tx core.Tx) error {
			return tx.Audit(&audit.Event{Action: "test.write", Target: api.Target{Type: "test", ID: name}})
		})
	}
	firstDone := make(chan error, 1)
	go func() { firstDone <- write("first") }()
	<-held
	if err := write("second"); err != nil { // would wait forever if the first held the lock
		t.Fatal(err)
	}
	close(release)
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	if st.AuditHead().Seq != 2 {
		t.Fatalf("head %d, want 2", st.AuditHead().Seq)
	}
	mustVerify(t, st, 0)
}
