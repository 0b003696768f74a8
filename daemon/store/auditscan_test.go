package store

import (
	"context"
	"fmt"
	"testing"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// Records that a scan hands out stay intact after it: a list of audit
// events keeps them past the iteration (GET /v1/audit), and a record
// whose body shared the iterator's buffer would be overwritten by a
// later one (the answer was corrupt, or another event's).
func TestRecordsKeptFromAScanStayIntact(t *testing.T) {
	st, _ := openAt(t, t.TempDir(), nil)
	defer st.Close()
	for i := 0; i < 3000; i += 500 {
		err := st.Update(context.Background(), func(tx core.Tx) error {
			for j := i; j < i+500; j++ {
				ev := &audit.Event{Action: "user.create", Target: api.Target{Type: "user", ID: fmt.Sprintf("usr_%05d", j), Name: fmt.Sprintf("name-%d", j)}}
				if err := tx.Audit(ev); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var kept []audit.Record
	err := st.AuditScan(context.Background(), 0, func(_ uint64, r audit.Record) (bool, error) {
		kept = append(kept, r)
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var v audit.Verifier
	for _, r := range kept {
		if err := v.Check(r.Seq, r); err != nil {
			t.Fatalf("a record kept from the scan changed after it: %v", err)
		}
	}
	if v.Checked() != 3000 {
		t.Fatalf("%d records kept, want 3000", v.Checked())
	}
}
