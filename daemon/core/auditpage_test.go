package core_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/store"
)

// An audit list by two fields intersects their indexes: the matches
// come on the first page, however many events of one field alone lie
// before them (before, the list read one index and checked the other on
// at most core.MaxExamined events a page, and came back empty with a
// cursor). A list by one field reads only its page's events.
func TestAnAuditListIntersectsTheIndexesOfItsFields(t *testing.T) {
	svc, st := openService(t, core.Config{})
	ctx := context.Background()
	const n = core.MaxExamined + 300
	for i := 0; i < n; i += 1000 {
		audited(t, st, min(1000, n-i), func(j int) (string, string) {
			if i+j >= n-3 {
				return "usr_admin", "factor.revoke" // the three matches, beyond the bound
			}
			return "usr_admin", "user.update"
		})
	}
	f := core.AuditFilter{ActorID: "usr_admin", Action: "factor.revoke"}
	recs, next, err := svc.ListAuditPage(ctx, core.System, f, 50)
	if err != nil || fmt.Sprint(seqsOf(recs)) != fmt.Sprint([]uint64{n - 2, n - 1, n}) || next != 0 {
		t.Fatalf("the first page: %v, next %d, %v; want the three matches and no cursor", seqsOf(recs), next, err)
	}
	recs, next, err = svc.ListAuditPage(ctx, core.System, f, 2)
	if err != nil || fmt.Sprint(seqsOf(recs)) != fmt.Sprint([]uint64{n - 2, n - 1}) || next != n-1 {
		t.Fatalf("a page of two: %v, next %d, %v; want two and a cursor at the second", seqsOf(recs), next, err)
	}
	recs, next, err = svc.ListAuditPage(ctx, core.System, core.AuditFilter{ActorID: "usr_admin"}, 50)
	if err != nil || len(recs) != 50 || recs[0].Seq != 1 || next != 50 {
		t.Fatalf("by actor alone: %d events from %v, next %d, %v; want 50 from 1 and a cursor at 50", len(recs), seqsOf(recs[:min(1, len(recs))]), next, err)
	}
	all, err := svc.ListAudit(ctx, core.System, core.AuditFilter{ActorID: "usr_admin", Action: "factor.revoke"}, 10)
	if err != nil || len(all) != 3 {
		t.Fatalf("ListAudit follows the pages: %d events, %v", len(all), err)
	}
}

// Two fields whose events alternate, commit by commit, and never meet
// but at both ends: the intersection steps from one index to the other
// at every commit, so a page stops at core.MaxExamined index entries
// with a cursor; following the cursors finds both matches once, oldest
// first through the API's pages and newest first through the
// dashboard's.
func TestAnAuditListReadsABoundedNumberOfIndexEntries(t *testing.T) {
	svc, st := openService(t, core.Config{})
	ctx := context.Background()
	const n = core.MaxExamined + 1000 // commits of each kind
	audited(t, st, 1, func(int) (string, string) { return "usr_a", "factor.revoke" })
	for range n {
		audited(t, st, 1, func(int) (string, string) { return "usr_a", "user.update" })
		audited(t, st, 1, func(int) (string, string) { return "usr_b", "factor.revoke" })
	}
	audited(t, st, 1, func(int) (string, string) { return "usr_a", "factor.revoke" })
	want := fmt.Sprint([]uint64{1, 2*n + 2})

	f := core.AuditFilter{ActorID: "usr_a", Action: "factor.revoke"}
	recs, next, err := svc.ListAuditPage(ctx, core.System, f, 50)
	if err != nil || fmt.Sprint(seqsOf(recs)) != "[1]" || next == 0 || next >= 2*n {
		t.Fatalf("the first page: %v, next %d, %v; want the first match and a cursor", seqsOf(recs), next, err)
	}
	found := seqsOf(recs)
	for pages := 1; next != 0; pages++ {
		if pages > 10 {
			t.Fatalf("%d pages and still a cursor (%d)", pages, next)
		}
		f.After = next
		recs, next, err = svc.ListAuditPage(ctx, core.System, f, 50)
		if err != nil {
			t.Fatal(err)
		}
		found = append(found, seqsOf(recs)...)
	}
	if fmt.Sprint(found) != want {
		t.Fatalf("following the cursors found %v, want %s", found, want)
	}

	q := core.AuditQuery{AuditFilter: core.AuditFilter{ActorID: "usr_a", Action: "factor.revoke"}}
	pg, err := svc.ListAuditNewest(ctx, core.System, q, 50)
	if err != nil || len(pg.Events) != 1 || pg.Events[0].Seq != 2*n+2 || pg.Next == 0 || pg.Next < 3 {
		t.Fatalf("newest first: %d events, next %d, %v; want the last match and a cursor", len(pg.Events), pg.Next, err)
	}
	var back []uint64
	for pages := 1; ; pages++ {
		for _, ev := range pg.Events {
			back = append([]uint64{ev.Seq}, back...)
		}
		if pg.Next == 0 {
			break
		}
		if pages > 10 {
			t.Fatalf("%d pages newest first and still a cursor (%d)", pages, pg.Next)
		}
		q.Before = pg.Next
		if pg, err = svc.ListAuditNewest(ctx, core.System, q, 50); err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(back) != want {
		t.Fatalf("following the cursors newest first found %v, want %s", back, want)
	}
}

// audited commits n events, by the actor and of the action that who gives
// for each.
func audited(t *testing.T, st *store.Store, n int, who func(int) (actor, action string)) {
	t.Helper()
	err := st.Update(context.Background(), func(tx core.Tx) error {
		for j := range n {
			actor, action := who(j)
			ev := &audit.Event{Action: action, Actor: api.Actor{ID: actor}, Target: api.Target{Type: "user", ID: fmt.Sprint("usr_", j)}}
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

func seqsOf(recs []audit.Record) []uint64 {
	out := []uint64{}
	for _, r := range recs {
		out = append(out, r.Seq)
	}
	return out
}
