package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/core/coretest"
	"github.com/keyfleet/keyfleet/daemon/seal"
	"github.com/keyfleet/keyfleet/daemon/store/storetest"
	"github.com/keyfleet/keyfleet/plugins/sdk"
)

var testKey = bytes.Repeat([]byte{0x42}, 32)

func openAt(t *testing.T, dir string, hook func() error) (*Store, *core.Service) {
	t.Helper()
	st, err := Open(Options{Dir: dir, EncryptionKey: testKey, beforeCommit: hook})
	if err != nil {
		t.Fatal(err)
	}
	sl, _ := seal.New(bytes.Repeat([]byte{0x17}, 32))
	svc, err := core.New(core.Config{Store: st, Sealer: sl, Kinds: []sdk.Factor{coretest.Kind{}}})
	if err != nil {
		t.Fatal(err)
	}
	return st, svc
}

var admin = core.System

func enrolSeed(t *testing.T, svc *core.Service, user, seed, serial string) core.Factor {
	t.Helper()
	ctx := context.Background()
	e, _, err := svc.CreateEnrolment(ctx, admin, api.CreateEnrolment{User: user, Kind: "test"})
	if err != nil {
		t.Fatal(err)
	}
	payload := coretest.EnrolPayload(e.Challenge, seed, serial)
	f, err := svc.CompleteEnrolment(ctx, admin, e.ID, api.CompleteEnrolment{Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func filesContaining(t *testing.T, dir string, needle []byte) []string {
	t.Helper()
	var hits []string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, needle) {
			hits = append(hits, path)
		}
		return nil
	})
	return hits
}

func decryptedDump(t *testing.T, dir string) []byte {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(dir).WithEncryptionKey(testKey).WithIndexCacheSize(1 << 20).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var dump bytes.Buffer
	db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			dump.Write(it.Item().Key())
			v, _ := it.Item().ValueCopy(nil)
			dump.Write(v)
		}
		return nil
	})
	return dump.Bytes()
}

func TestNothingSensitiveIsReadableOnDisk(t *testing.T) {
	dir := t.TempDir()
	st, svc := openAt(t, dir, nil)
	ctx := context.Background()
	const username, email, seed = "canary-username-q7", "canary-mail-q7@example.org", "CANARYSEEDQ7JBSWY3DPEHPK3PXP"
	if _, _, err := svc.CreateUser(ctx, admin, api.CreateUser{Username: username, Email: email, DisplayName: "Canary Display Q7"}); err != nil {
		t.Fatal(err)
	}
	enrolSeed(t, svc, username, seed, "31415926")
	// A service account's token: the admin may make it without a key.
	if _, _, err := svc.CreateUser(ctx, admin, api.CreateUser{Username: username + "-svc", Kind: api.KindService}); err != nil {
		t.Fatal(err)
	}
	_, token, err := svc.CreateToken(ctx, admin, api.CreateToken{User: username + "-svc", Name: "canary"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	for _, needle := range []string{username, email, "Canary Display Q7", seed, token, "31415926"} {
		if hits := filesContaining(t, dir, []byte(needle)); len(hits) > 0 {
			t.Errorf("%q is readable in %v", needle, hits)
		}
	}
	dump := decryptedDump(t, dir)
	if !bytes.Contains(dump, []byte(username)) {
		t.Fatal("the decrypted dump does not show the username: the test is not looking at the data")
	}
	for _, secret := range []string{seed, token} {
		if bytes.Contains(dump, []byte(secret)) {
			t.Errorf("even decrypted, the store shows a secret (%d bytes)", len(secret))
		}
	}
}

func TestAFailureBeforeCommitLeavesNeitherChangeNorAuditEvent(t *testing.T) {
	var inject bool
	st, svc := openAt(t, t.TempDir(), func() error {
		if inject {
			return errors.New("injected fault")
		}
		return nil
	})
	defer st.Close()
	ctx := context.Background()
	if _, _, err := svc.CreateUser(ctx, admin, api.CreateUser{Username: "before"}); err != nil {
		t.Fatal(err)
	}
	head := st.AuditHead()
	inject = true
	if _, _, err := svc.CreateUser(ctx, admin, api.CreateUser{Username: "ghost"}); err == nil {
		t.Fatal("the injected fault did not surface")
	}
	inject = false
	if st.AuditHead() != head {
		t.Fatal("the failed transaction moved the audit head")
	}
	if _, err := svc.GetUser(ctx, admin, "ghost"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("the failed transaction left its change: %v", err)
	}
	if recs, _ := svc.ListAudit(ctx, admin, core.AuditFilter{After: head.Seq}, 10); len(recs) != 0 {
		t.Fatalf("the failed transaction left %d audit events", len(recs))
	}
	if _, _, err := svc.CreateUser(ctx, admin, api.CreateUser{Username: "after"}); err != nil {
		t.Fatal(err)
	}
	if st.AuditHead().Seq != head.Seq+1 {
		t.Fatalf("next event is %d, want %d: the failure left a gap", st.AuditHead().Seq, head.Seq+1)
	}
	mustVerify(t, st, 0)
}

// mustVerify checks the chain and returns the break seq (0 if intact).
func mustVerify(t *testing.T, st *Store, wantBreak uint64) *audit.BreakError {
	t.Helper()
	v, err := core.VerifyStore(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	var got uint64
	if v.Break != nil {
		got = v.Break.Seq
	}
	if got != wantBreak {
		t.Fatalf("verify broke at %d (%v), want %d", got, v.Break, wantBreak)
	}
	return v.Break
}

// rawRecord is audit record seq as stored, for the tests that tamper
// with it behind the store's back (setRecord, deleteRecord, rechain).
func rawRecord(st *Store, seq uint64) []byte {
	var v []byte
	st.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(auditKey(seq))
		if err == nil {
			v, err = item.ValueCopy(nil)
		}
		return err
	})
	return v
}

func setRecord(st *Store, seq uint64, v []byte) {
	st.db.Update(func(txn *badger.Txn) error { return txn.Set(auditKey(seq), v) })
}

func deleteRecord(st *Store, seq uint64) {
	st.db.Update(func(txn *badger.Txn) error { return txn.Delete(auditKey(seq)) })
}

// rechain rewrites record seq with its body changed by edit and a hash
// that fits it, after prev: a forger who can write the store.
func rechain(st *Store, seq uint64, prev [audit.HashSize]byte, edit func(ev *audit.Event)) {
	r, _ := audit.Unmarshal(rawRecord(st, seq))
	var ev audit.Event
	json.Unmarshal(r.Body, &ev)
	edit(&ev)
	c := audit.Chain{Head: audit.Head{Seq: seq - 1, Hash: prev}}
	nr, _ := c.Next(&ev)
	setRecord(st, seq, nr.Marshal())
}

// usersCreated creates users user-0 … user-(n-1), one audit event each.
func usersCreated(t *testing.T, svc *core.Service, n int) {
	t.Helper()
	for i := range n {
		if _, _, err := svc.CreateUser(context.Background(), admin, api.CreateUser{Username: fmt.Sprintf("user-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestVerifyFindsTheFirstTamperedRecord(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(st *Store)
		broken uint64
		reason string
	}{
		{"an edited event body breaks at that event", func(st *Store) {
			v := rawRecord(st, 4)
			setRecord(st, 4, bytes.Replace(v, []byte("user-3"), []byte("user-X"), 1))
		}, 4, "edited"},
		{"a deleted event breaks where it was", func(st *Store) { deleteRecord(st, 5) }, 5, "missing"},
		{"two swapped events break at the first", func(st *Store) {
			a, b := rawRecord(st, 3), rawRecord(st, 6)
			setRecord(st, 3, b)
			setRecord(st, 6, a)
		}, 3, "moved"},
		{"an event rewritten with a fresh hash breaks at the next", func(st *Store) {
			r, _ := audit.Unmarshal(rawRecord(st, 4))
			rechain(st, 4, r.Prev, func(ev *audit.Event) { ev.Target.Name = "user-X" })
		}, 5, "previous-hash"},
		{"events cut off the end are caught by the head", func(st *Store) { deleteRecord(st, 8) }, 8, "head"},
		{"a truncated record breaks at that record", func(st *Store) { setRecord(st, 2, []byte{1, 2, 3}) }, 2, "shorter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, svc := openAt(t, t.TempDir(), nil)
			defer st.Close()
			usersCreated(t, svc, 8)
			mustVerify(t, st, 0)
			tt.tamper(st)
			be := mustVerify(t, st, tt.broken)
			if !bytes.Contains([]byte(be.Reason), []byte(tt.reason)) {
				t.Fatalf("reason %q does not say %q", be.Reason, tt.reason)
			}
		})
	}
}

func TestConcurrentWritersKeepOneUnbrokenChain(t *testing.T) {
	st, svc := openAt(t, t.TempDir(), nil)
	defer st.Close()
	const workers, each = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				_, _, err := svc.CreateUser(context.Background(), admin, api.CreateUser{Username: fmt.Sprintf("w%d-u%d", w, i)})
				errs <- err
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
	if got := st.AuditHead().Seq; got != workers*each {
		t.Fatalf("head is %d, want %d", got, workers*each)
	}
	mustVerify(t, st, 0)
}

func TestReopeningKeepsTheChainHead(t *testing.T) {
	dir := t.TempDir()
	st, svc := openAt(t, dir, nil)
	svc.CreateUser(context.Background(), admin, api.CreateUser{Username: "kept"})
	head := st.AuditHead()
	st.Close()
	st2, _ := openAt(t, dir, nil)
	defer st2.Close()
	if st2.AuditHead() != head {
		t.Fatalf("head after reopen = %v, want %v", st2.AuditHead(), head)
	}
	if _, err := Open(Options{Dir: t.TempDir(), EncryptionKey: []byte("short")}); err == nil {
		t.Fatal("a short key was accepted")
	}
}

func TestAScanAfterTheLastSequenceNumberFindsNothing(t *testing.T) {
	st, svc := openAt(t, t.TempDir(), nil)
	defer st.Close()
	u, _, err := svc.CreateUser(context.Background(), admin, api.CreateUser{Username: "scanned"})
	if err != nil {
		t.Fatal(err)
	}
	head := st.AuditHead().Seq
	for _, after := range []uint64{head, head + 1, math.MaxUint64 - 1, math.MaxUint64} {
		var seen []uint64
		err := st.AuditScan(context.Background(), after, func(seq uint64, _ audit.Record) (bool, error) {
			seen = append(seen, seq)
			return true, nil
		})
		if err != nil || len(seen) != 0 {
			t.Errorf("AuditScan after %d: %v %v, want nothing (the head is %d)", after, seen, err, head)
		}
		st.View(context.Background(), func(tx core.ReadTx) error {
			if seqs, err := storetest.AuditBy(tx, core.AuditTarget, u.ID, after, 10); err != nil || len(seqs) != 0 {
				t.Errorf("AuditBy target after %d: %v %v, want nothing", after, seqs, err)
			}
			return nil
		})
	}
	var n int
	st.AuditScan(context.Background(), head-1, func(uint64, audit.Record) (bool, error) { n++; return true, nil })
	if n != 1 {
		t.Fatalf("AuditScan after head-1 found %d records, want the last one", n)
	}
}

// A full verify checks a long chain in spans on several cores, each span
// taking its first record's previous-hash as given until the spans are
// joined. On the store itself, in four spans of ten records (1-10,
// 11-20, 21-30, 31-40), a break at or next to a join is found at the
// same record, for the same reason, as one walk from the first record
// finds it. A record rewritten with a fresh hash at the end of the first
// span, or a forged first record of the second, is seen only where the
// spans are joined.
func TestVerifyInSpansFindsTheFirstBreakAtTheJoins(t *testing.T) {
	rewritten := func(ev *audit.Event) { ev.Reason = "rewritten" }
	tests := []struct {
		name   string
		tamper func(st *Store)
		broken uint64
		reason string
	}{
		{"the last record of the first span rewritten with a fresh hash breaks at the second span's first", func(st *Store) {
			r, _ := audit.Unmarshal(rawRecord(st, 10))
			rechain(st, 10, r.Prev, rewritten)
		}, 11, "previous-hash"},
		{"the second span's first record forged after another hash", func(st *Store) { rechain(st, 11, [audit.HashSize]byte{7}, rewritten) }, 11, "previous-hash"},
		{"the second span's first record rewritten with a fresh hash breaks inside it", func(st *Store) {
			r, _ := audit.Unmarshal(rawRecord(st, 11))
			rechain(st, 11, r.Prev, rewritten)
		}, 12, "previous-hash"},
		{"an edited record inside the second span", func(st *Store) {
			setRecord(st, 15, bytes.Replace(rawRecord(st, 15), []byte("user-14"), []byte("user-XX"), 1))
		}, 15, "edited"},
		{"the last record of the first span deleted", func(st *Store) { deleteRecord(st, 10) }, 10, "missing"},
		{"the first record of the second span deleted", func(st *Store) { deleteRecord(st, 11) }, 11, "missing"},
		{"a whole span deleted", func(st *Store) {
			for seq := uint64(11); seq <= 20; seq++ {
				deleteRecord(st, seq)
			}
		}, 11, "missing"},
		{"two records swapped across the join", func(st *Store) {
			a, b := rawRecord(st, 10), rawRecord(st, 11)
			setRecord(st, 10, b)
			setRecord(st, 11, a)
		}, 10, "moved"},
		{"a break in the second span and another in the fourth: the first is reported", func(st *Store) {
			setRecord(st, 35, bytes.Replace(rawRecord(st, 35), []byte("user-34"), []byte("user-XX"), 1))
			deleteRecord(st, 21)
		}, 21, "missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, svc := openAt(t, t.TempDir(), nil)
			defer st.Close()
			usersCreated(t, svc, 40)
			if h := st.AuditHead().Seq; h != 40 {
				t.Fatalf("head %d, want 40 (one event per user)", h)
			}
			tt.tamper(st)
			storetest.SpansFindTheFirstBreak(t, st, tt.broken, tt.reason)
		})
	}
}

// A full verify stops when its request is cancelled, in every span, and
// says so: an error, not a broken chain.
func TestVerifyStopsWhenCancelled(t *testing.T) {
	st, _ := openAt(t, t.TempDir(), nil)
	defer st.Close()
	appendAudit(t, st, 8000, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, parts := range []int{1, 4} {
		rep, err := core.VerifyStoreInSpans(ctx, st, parts)
		if !errors.Is(err, context.Canceled) || rep.Break != nil {
			t.Fatalf("%d spans, cancelled: %+v %v, want context.Canceled", parts, rep, err)
		}
	}
}
