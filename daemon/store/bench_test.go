package store

import (
	"context"
	"fmt"
	"testing"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// BenchmarkVerifyStoredChain measures `keyfleet audit verify`'s work:
// reading every record from the encrypted store and checking each link.
func BenchmarkVerifyStoredChain(b *testing.B) {
	const n = 100_000
	st, err := Open(Options{Dir: b.TempDir(), EncryptionKey: testKey})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	// Append directly in large transactions: the benchmark is about
	// reading the chain back, not about writing it.
	for i := 0; i < n; i += 1000 {
		err := st.Update(context.Background(), func(tx core.Tx) error {
			for j := range 1000 {
				ev := auditEvent(fmt.Sprintf("user-%d", i+j))
				if err := tx.Audit(ev); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		v, err := core.VerifyStore(context.Background(), st)
		if err != nil || v.Break != nil || v.Checked != n {
			b.Fatalf("verify: %+v %v", v, err)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
}

func auditEvent(name string) *audit.Event {
	return &audit.Event{Action: "user.create", Actor: api.Actor{ID: "usr_06h1wtrjbrmm3y0s3n6ttprat4", Name: "admin", Auth: "token"},
		Target: api.Target{Type: "user", ID: "usr_06h1wtsz9352y90rhjvs5gebz4", Name: name},
		After:  map[string]any{"status": "active", "roles": []string{"user"}}, RequestID: "0123456789abcdef01234567", Source: "127.0.0.1:50000"}
}
