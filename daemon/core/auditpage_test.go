package core_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/seal"
	"github.com/keyfleet/keyfleet/daemon/store"
)

// An audit list by two fields reads the index of one and checks the
// other on at most core.MaxExamined events a page: when the matches lie
// beyond the bound, the first page is empty with a cursor, and following
// the cursors finds every match, in order, once. A list by one field
// needs no check: each event its index names matches.
func TestAnAuditListExaminesABoundedNumberOfEvents(t *testing.T) {
	st, err := store.Open(store.Options{InMemory: true, EncryptionKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sl, _ := seal.New(make([]byte, 32))
	svc, err := core.New(core.Config{Store: st, Sealer: sl})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const n = core.MaxExamined + 300
	for i := 0; i < n; i += 1000 {
		err := st.Update(ctx, func(tx core.Tx) error {
			for j := i; j < min(i+1000, n); j++ {
				action := "user.update"
				if j >= n-3 {
					action = "factor.revoke" // the three matches, beyond the bound
				}
				ev := &audit.Event{Action: action, Actor: api.Actor{ID: "usr_admin"}, Target: api.Target{Type: "user", ID: fmt.Sprint("usr_", j)}}
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
	f := core.AuditFilter{ActorID: "usr_admin", Action: "factor.revoke"}
	recs, next, err := svc.ListAuditPage(ctx, core.System, f, 50)
	if err != nil || len(recs) != 0 || next == 0 {
		t.Fatalf("the first page: %d events, next %d, %v; want none and a cursor", len(recs), next, err)
	}
	var found []uint64
	for next != 0 {
		f.After = next
		recs, next, err = svc.ListAuditPage(ctx, core.System, f, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			found = append(found, r.Seq)
		}
	}
	if fmt.Sprint(found) != fmt.Sprint([]uint64{n - 2, n - 1, n}) {
		t.Fatalf("following the cursors found %v", found)
	}
	one, next, err := svc.ListAuditPage(ctx, core.System, core.AuditFilter{Action: "factor.revoke"}, 50)
	if err != nil || len(one) != 3 || next != 0 {
		t.Fatalf("by action alone: %d events, next %d, %v; want the three at once", len(one), next, err)
	}
	all, err := svc.ListAudit(ctx, core.System, core.AuditFilter{ActorID: "usr_admin", Action: "factor.revoke"}, 10)
	if err != nil || len(all) != 3 {
		t.Fatalf("ListAudit follows the pages: %d events, %v", len(all), err)
	}
}
