package core

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/keyfleet/keyfleet/daemon/audit"
)

// AuditFilter narrows an audit listing. Zero fields match everything.
type AuditFilter struct {
	After    uint64 // only events with seq > After
	TargetID string
	ActorID  string
	Action   string
}

// match reports whether ev passes f (After aside).
func (f AuditFilter) match(ev audit.Event) bool {
	return (f.ActorID == "" || ev.Actor.ID == f.ActorID) && (f.Action == "" || ev.Action == f.Action) &&
		(f.TargetID == "" || ev.Target.ID == f.TargetID)
}

// ListAudit returns up to limit audit records in sequence order, following
// the store's pages (ListAuditPage) until it has them or the log ends.
// For callers that want a count of records rather than a page: the API
// and the pages use ListAuditPage.
func (s *Service) ListAudit(ctx context.Context, p Principal, f AuditFilter, limit int) ([]audit.Record, error) {
	var out []audit.Record
	for {
		recs, next, err := s.ListAuditPage(ctx, p, f, limit-len(out))
		out = append(out, recs...)
		if err != nil || next == 0 || len(out) >= limit {
			return out, err
		}
		f.After = next
	}
}

// ListAuditPage returns up to limit audit records after f.After that
// match f, in sequence order, and the sequence number to continue after
// (0 when the log has nothing more to give). A filter is answered by the
// indexes of its fields, intersected by sequence number (AuditMatch):
// only the records of the page are read, and at most MaxExamined index
// entries; a page that reaches that bound comes back short, even empty,
// with the sequence number it got to as the cursor.
func (s *Service) ListAuditPage(ctx context.Context, p Principal, f AuditFilter, limit int) ([]audit.Record, uint64, error) {
	if err := p.authorize(ReadAudit, ""); err != nil {
		return nil, 0, err
	}
	limit = PageReq{Limit: limit}.Clamp().Limit
	if f.TargetID == "" && f.ActorID == "" && f.Action == "" {
		return s.auditAfter(ctx, f.After, limit)
	}
	return s.auditIndexed(ctx, f, limit)
}

// auditAfter pages through the log itself: every record matches.
func (s *Service) auditAfter(ctx context.Context, after uint64, limit int) ([]audit.Record, uint64, error) {
	var out []audit.Record
	err := s.store.AuditScan(ctx, after, func(_ uint64, r audit.Record) (bool, error) {
		out = append(out, r)
		return len(out) < limit, nil
	})
	if err != nil || len(out) < limit {
		return out, 0, err
	}
	return out, out[len(out)-1].Seq, nil
}

// auditIndexed pages through the indexes of the filter's fields.
func (s *Service) auditIndexed(ctx context.Context, f AuditFilter, limit int) ([]audit.Record, uint64, error) {
	var out []audit.Record
	var next uint64
	q := AuditMatch{Target: f.TargetID, Actor: f.ActorID, Action: f.Action, After: f.After,
		// Only what is on disk: the index may already name events of
		// commits whose sync is still running (see store's group commit).
		Through: s.store.AuditHead().Seq,
		Limit:   limit + 1, // one more says whether there is a next page
		Examine: MaxExamined}
	err := s.store.View(ctx, func(tx ReadTx) error {
		seqs, more, err := tx.AuditMatching(q)
		if err != nil {
			return err
		}
		next = more
		if len(seqs) > limit {
			seqs, next = seqs[:limit], seqs[limit-1]
		}
		out = make([]audit.Record, 0, len(seqs))
		for _, seq := range seqs {
			r, err := tx.AuditRecord(seq)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, next, err
}

// AuditHead is the last link of the audit chain: its sequence number and
// hash. Recording it elsewhere lets an auditor later prove the log up to
// that point was not rewritten.
func (s *Service) AuditHead(p Principal) (audit.Head, error) {
	if err := p.authorize(ReadAudit, ""); err != nil {
		return audit.Head{}, err
	}
	return s.store.AuditHead(), nil
}

// ExportAudit calls fn for every record after a sequence number, in order.
func (s *Service) ExportAudit(ctx context.Context, p Principal, after uint64, fn func(audit.Record) error) error {
	if err := p.authorize(ReadAudit, ""); err != nil {
		return err
	}
	return s.store.AuditScan(ctx, after, func(_ uint64, r audit.Record) (bool, error) {
		return true, fn(r)
	})
}

// ChainReport is the outcome of walking the audit chain.
type ChainReport struct {
	Checked uint64
	Head    audit.Head
	Break   *audit.BreakError // nil when the chain is intact
}

// VerifyAudit walks the whole chain from the first record and checks every
// link and the stored head. A broken chain is a result, not an error.
func (s *Service) VerifyAudit(ctx context.Context, p Principal) (ChainReport, error) {
	if err := p.authorize(VerifyAudit, ""); err != nil {
		return ChainReport{}, err
	}
	return VerifyStore(ctx, s.store)
}

// VerifyStore walks a store's whole audit chain, from the first record.
// keyfleetd uses it for a full audit verify and after a store was copied.
// A long chain is checked in spans on every core at once (audit.Span),
// joined in order, with the outcome a single walk would have: the first
// break, and the records checked before it.
func VerifyStore(ctx context.Context, st Store) (ChainReport, error) {
	return verifyChain(ctx, st, runtime.GOMAXPROCS(0), minSpan)
}

// VerifyStoreInSpans is VerifyStore in parts spans however short: the
// stores' tests break a chain of a few records at and across the joins
// of its spans with it, where a full verify joins spans only on chains
// of 100,000 records and more.
func VerifyStoreInSpans(ctx context.Context, st Store, parts int) (ChainReport, error) {
	return verifyChain(ctx, st, parts, 1)
}

// verifyChain is VerifyStore in at most parts spans, none shorter than
// least records.
func verifyChain(ctx context.Context, st Store, parts int, least uint64) (ChainReport, error) {
	head := st.AuditHead()
	spans := splitChain(head.Seq, parts, least)
	errs := make([]error, len(spans))
	var wg sync.WaitGroup
	for i, sp := range spans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = checkSpan(ctx, st, sp)
		}()
	}
	wg.Wait()
	out := ChainReport{Head: head}
	prev := audit.Head{}
	var err error
	for i, sp := range spans {
		if err = audit.Join(prev, sp.span); err != nil {
			break
		}
		out.Checked += sp.span.Checked()
		if err = errs[i]; err != nil {
			break
		}
		if sp.span.Checked() > 0 {
			prev = sp.span.Head()
		}
	}
	if err == nil {
		v := audit.VerifierFrom(prev)
		err = v.Finish(head)
	}
	var be *audit.BreakError
	if errors.As(err, &be) {
		out.Break = be
		return out, nil
	}
	return out, err
}

// chainSpan is one stretch of the chain: records after..to.
type chainSpan struct {
	after, to uint64
	span      *audit.Span
}

// minSpan is the shortest stretch worth a goroutine of its own.
const minSpan = 50_000

// splitChain cuts records 1..n into at most parts spans of at least
// least records; the last one runs to the end of the store, past n (so
// that records beyond the head are found, as a single walk finds them).
func splitChain(n uint64, parts int, least uint64) []chainSpan {
	parts = max(1, min(parts, int(n/least)))
	out := make([]chainSpan, parts)
	for i := range out {
		out[i] = chainSpan{after: n * uint64(i) / uint64(parts), to: n * uint64(i+1) / uint64(parts)}
		out[i].span = audit.NewSpan(out[i].after)
	}
	out[parts-1].to = math.MaxUint64
	return out
}

// auditLender is a Store that can lend its audit records for a walk
// that keeps none of them (the Badger store: no copy of each event).
type auditLender interface {
	// AuditScanLent is AuditScan with each record's Body valid only
	// until fn returns.
	AuditScanLent(ctx context.Context, after uint64, fn func(key uint64, r audit.Record) (bool, error)) error
}

// checkSpan verifies the records of sp. A span that ends before its last
// record while the store holds later ones is broken there, as a single
// walk would find it: the records up to the next one are missing.
func checkSpan(ctx context.Context, st Store, sp chainSpan) error {
	var next uint64
	scan := st.AuditScan
	if l, ok := st.(auditLender); ok {
		scan = l.AuditScanLent // a span keeps only hashes: nothing of a record outlives fn
	}
	err := scan(ctx, sp.after, func(key uint64, r audit.Record) (bool, error) {
		if key > sp.to {
			next = key
			return false, nil
		}
		return true, sp.span.Check(key, r)
	})
	if err == nil && next != 0 && sp.span.Head().Seq < sp.to {
		missing := sp.span.Head().Seq + 1
		err = &audit.BreakError{Seq: missing, Reason: fmt.Sprintf("record %d is missing (next stored record is %d)", missing, next)}
	}
	return err
}
