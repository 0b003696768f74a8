package store

import (
	"context"
	"fmt"
	"testing"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/store/storetest"
)

// BenchmarkVerifyStoredChain measures `keyfleet audit verify`'s work:
// reading every record from the encrypted store and checking each link.
func BenchmarkVerifyStoredChain(b *testing.B) {
	const n = 100_000
	st := auditedStore(b, n, nil)
	b.ResetTimer()
	for range b.N {
		v, err := core.VerifyStore(context.Background(), st)
		if err != nil || v.Break != nil || v.Checked != n {
			b.Fatalf("verify: %+v %v", v, err)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
}

// auditedStore is a store holding n audit events of auditEvent
// (appendAudit). Closed when b ends.
func auditedStore(b *testing.B, n int, edit func(i int, ev *audit.Event)) *Store {
	return auditedStoreWith(b, Options{}, n, edit)
}

// auditedStoreWith is auditedStore with other options (its folder and
// key are set here).
func auditedStoreWith(b *testing.B, o Options, n int, edit func(i int, ev *audit.Event)) *Store {
	o.Dir, o.EncryptionKey = b.TempDir(), testKey
	st, err := Open(o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	appendAudit(b, st, n, edit)
	return st
}

// appendAudit appends n audit events of auditEvent to st directly, in
// transactions of 1,000 (what the tests and benchmarks look at is reading
// them back), each changed by edit when it is set.
func appendAudit(tb testing.TB, st *Store, n int, edit func(i int, ev *audit.Event)) {
	tb.Helper()
	for i := 0; i < n; i += 1000 {
		err := st.Update(context.Background(), func(tx core.Tx) error {
			for j := range min(1000, n-i) {
				ev := auditEvent(fmt.Sprintf("user-%d", i+j))
				if edit != nil {
					edit(i+j, ev)
				}
				if err := tx.Audit(ev); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
}

func auditEvent(name string) *audit.Event {
	return &audit.Event{Action: "user.create", Actor: api.Actor{ID: "usr_06h1wtrjbrmm3y0s3n6ttprat4", Name: "admin", Auth: "token"},
		Target: api.Target{Type: "user", ID: "usr_06h1wtsz9352y90rhjvs5gebz4", Name: name},
		After:  map[string]any{"status": "active", "roles": []string{"user"}}, RequestID: "0123456789abcdef01234567", Source: "127.0.0.1:50000"}
}

// BenchmarkNewestByActor measures the dashboard's newest events of one
// actor who has many (a directory sync's, an administrator's): reading
// its index forward from the start and keeping the newest, as the
// dashboard did, against reading it newest first (AuditByBefore). The
// actor's 196,000 events of 200,000 come in commits of 1,000 (as a sync or
// an import writes them), among a few of someone else's.
func BenchmarkNewestByActor(b *testing.B) {
	const n, want = 200_000, 5_000
	st := auditedStore(b, n, func(i int, ev *audit.Event) {
		if i%50 == 0 {
			ev.Actor.ID = "usr_someone_else"
		}
	})
	actor := auditEvent("").Actor.ID
	head := st.AuditHead().Seq
	read := func(b *testing.B, newest func(tx core.ReadTx) ([]uint64, error)) {
		for range b.N {
			err := st.View(context.Background(), func(tx core.ReadTx) error {
				seqs, err := newest(tx)
				if err == nil && len(seqs) != want {
					err = fmt.Errorf("%d seqs", len(seqs))
				}
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("forward", func(b *testing.B) {
		read(b, func(tx core.ReadTx) ([]uint64, error) {
			var seqs []uint64
			for after := uint64(0); ; {
				page, err := storetest.AuditBy(tx, core.AuditActor, actor, after, core.MaxPageSize)
				if err != nil {
					return nil, err
				}
				seqs = append(seqs, page...)
				if len(seqs) > 2*want {
					seqs = append(seqs[:0], seqs[len(seqs)-want:]...)
				}
				if len(page) < core.MaxPageSize {
					return seqs[len(seqs)-want:], nil
				}
				after = page[len(page)-1]
			}
		})
	})
	b.Run("newest-first", func(b *testing.B) {
		read(b, func(tx core.ReadTx) ([]uint64, error) {
			return storetest.AuditByBefore(tx, core.AuditActor, actor, head+1, want)
		})
	})
}

// BenchmarkAuditRecordRandom measures point reads that miss the block
// cache: one audit record by seq, at random, of 200,000 in a store whose
// block cache (8 MiB) holds a small part of them. It is what a larger
// table block (blockSize) costs a read: more to decrypt per miss.
func BenchmarkAuditRecordRandom(b *testing.B) {
	const n = 200_000
	st := auditedStoreWith(b, Options{BlockCacheMB: 8}, n, nil)
	seq := uint64(1)
	b.ResetTimer()
	for range b.N {
		seq = (seq*6364136223846793005 + 1442695040888963407) % n // a fixed pseudo-random walk
		err := st.View(context.Background(), func(tx core.ReadTx) error {
			_, err := tx.AuditRecord(seq + 1)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
