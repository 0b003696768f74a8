package core

import (
	"context"
	"slices"
	"time"

	"github.com/keyfleet/keyfleet/daemon/audit"
)

// AuditQuery selects audit events for a page read newest first.
type AuditQuery struct {
	AuditFilter // After is ignored: a page goes back from Before
	// Before: only events with seq < Before; 0 means from the newest.
	Before uint64
	// Since: only events at or after it; the read stops there, as events
	// are in time order. Zero: no limit.
	Since time.Time
	// Until: only events before it. Zero: no limit.
	Until time.Time
	// Match, when set, must also accept the event (a severity, a user
	// named as actor or target).
	Match func(audit.Event) bool
}

func (q AuditQuery) match(ev audit.Event) bool {
	return q.AuditFilter.match(ev) && (q.Until.IsZero() || ev.Time.Before(q.Until)) &&
		(q.Since.IsZero() || !ev.Time.Before(q.Since)) && (q.Match == nil || q.Match(ev))
}

// AuditPage is one page of events, newest first.
type AuditPage struct {
	Events []audit.Event
	// Next is the Before of the next, older page; 0 when the page reached
	// the start of the log (or Since).
	Next uint64
	// Scanned is how many events the read looked at.
	Scanned int
}

// auditWindow is how many events one backward step reads, and
// maxAuditScan how many one page may read before it stops and lets the
// caller go on from Next: a filter that matches nothing does not read a
// long log in one request.
const (
	auditWindow  = 1000
	maxAuditScan = 50_000
)

// ListAuditNewest returns up to limit events matching q, newest first.
// A TargetID, an ActorID or an Action is read through the indexes,
// intersected (AuditMatch); anything else goes back through the log a
// window at a time. Errors: *ForbiddenError.
func (s *Service) ListAuditNewest(ctx context.Context, p Principal, q AuditQuery, limit int) (AuditPage, error) {
	if err := p.authorize(ReadAudit, ""); err != nil {
		return AuditPage{}, err
	}
	limit = PageReq{Limit: limit}.Clamp().Limit
	head := s.store.AuditHead().Seq
	if q.Before == 0 || q.Before > head+1 {
		q.Before = head + 1
	}
	if q.TargetID != "" || q.ActorID != "" || q.Action != "" {
		return s.auditIndexedNewest(ctx, q, limit)
	}
	var out AuditPage
	hi := q.Before // exclusive
	for hi > 1 && out.Scanned < maxAuditScan {
		lo := uint64(0)
		if hi > auditWindow+1 {
			lo = hi - 1 - auditWindow
		}
		found, stop, err := s.auditWindow(ctx, q, lo, hi, &out.Scanned)
		if err != nil {
			return AuditPage{}, err
		}
		slices.Reverse(found)
		for _, ev := range found {
			if len(out.Events) == limit {
				out.Next = out.Events[limit-1].Seq
				return out, nil
			}
			out.Events = append(out.Events, ev)
		}
		if stop {
			return out, nil
		}
		hi = lo + 1
	}
	if hi > 1 {
		out.Next = hi // stopped at maxAuditScan: go on from here
	}
	return out, nil
}

// auditWindow reads the events lo < seq < hi that match q, oldest first;
// stop is set when the window went back past q.Since.
func (s *Service) auditWindow(ctx context.Context, q AuditQuery, lo, hi uint64, scanned *int) ([]audit.Event, bool, error) {
	var found []audit.Event
	stop := false
	err := s.store.AuditScan(ctx, lo, func(seq uint64, r audit.Record) (bool, error) {
		if seq >= hi {
			return false, nil
		}
		*scanned++
		ev, err := r.Event()
		if err != nil {
			return false, err
		}
		if !q.Since.IsZero() && ev.Time.Before(q.Since) {
			stop = true
			return true, nil
		}
		if q.match(ev) {
			found = append(found, ev)
		}
		return true, nil
	})
	return found, stop, err
}

// auditIndexedNewest reads the events with q's target, actor and action
// through their indexes, intersected newest first (AuditMatch): at most
// maxAuditScan of them before q.Before, and at most MaxExamined index
// entries; each found is read to check the rest of q (its time, Match).
func (s *Service) auditIndexedNewest(ctx context.Context, q AuditQuery, limit int) (AuditPage, error) {
	var out AuditPage
	m := AuditMatch{Target: q.TargetID, Actor: q.ActorID, Action: q.Action, Newest: true,
		Through: min(s.store.AuditHead().Seq, q.Before-1), // only what is on disk
		Limit:   maxAuditScan, Examine: MaxExamined}
	err := s.store.View(ctx, func(tx ReadTx) error {
		seqs, next, err := tx.AuditMatching(m)
		if err != nil {
			return err
		}
		for i := range seqs {
			r, err := tx.AuditRecord(seqs[i])
			if err != nil {
				return err
			}
			out.Scanned++
			ev, err := r.Event()
			if err != nil {
				return err
			}
			if !q.Since.IsZero() && ev.Time.Before(q.Since) {
				return nil
			}
			if !q.match(ev) {
				continue
			}
			if len(out.Events) == limit {
				out.Next = out.Events[limit-1].Seq
				return nil
			}
			out.Events = append(out.Events, ev)
		}
		switch {
		case next != 0:
			out.Next = next // stopped at the bound on index entries: go on below it
		case len(seqs) == m.Limit:
			out.Next = seqs[len(seqs)-1] // read as many as a page may: go on below the last
		}
		return nil
	})
	return out, err
}
