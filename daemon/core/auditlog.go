package core

import (
	"context"
	"errors"

	"github.com/keyfleet/keyfleet/daemon/audit"
)

// AuditFilter narrows an audit listing. Zero fields match everything.
type AuditFilter struct {
	After    uint64 // only events with seq > After
	TargetID string
	ActorID  string
	Action   string
}

func (f AuditFilter) match(ev audit.Event) bool {
	return (f.ActorID == "" || ev.Actor.ID == f.ActorID) && (f.Action == "" || ev.Action == f.Action) &&
		(f.TargetID == "" || ev.Target.ID == f.TargetID)
}

// ListAudit returns up to limit audit records in sequence order.
func (s *Service) ListAudit(ctx context.Context, p Principal, f AuditFilter, limit int) ([]audit.Record, error) {
	if err := p.authorize(ReadAudit, ""); err != nil {
		return nil, err
	}
	limit = PageReq{Limit: limit}.Clamp().Limit
	if f.TargetID != "" {
		return s.auditByTarget(ctx, f, limit)
	}
	var out []audit.Record
	err := s.store.AuditScan(ctx, f.After, func(_ uint64, r audit.Record) (bool, error) {
		ev, err := r.Event()
		if err != nil {
			return false, err
		}
		if f.match(ev) {
			out = append(out, r)
		}
		return len(out) < limit, nil
	})
	return out, err
}

func (s *Service) auditByTarget(ctx context.Context, f AuditFilter, limit int) ([]audit.Record, error) {
	var out []audit.Record
	// Only what is on disk: the index may already name events of commits
	// whose sync is still running (see store's group commit).
	last := s.store.AuditHead().Seq
	err := s.store.View(ctx, func(tx ReadTx) error {
		seqs, err := tx.AuditByTarget(f.TargetID, f.After, MaxPageSize)
		if err != nil {
			return err
		}
		for _, seq := range seqs {
			if seq > last {
				break
			}
			r, err := tx.AuditRecord(seq)
			if err != nil {
				return err
			}
			ev, err := r.Event()
			if err != nil {
				return err
			}
			if f.match(ev) {
				out = append(out, r)
			}
			if len(out) == limit {
				break
			}
		}
		return nil
	})
	return out, err
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

// VerifyStore walks a store's audit chain. keyfleetd uses it at start-up.
func VerifyStore(ctx context.Context, st Store) (ChainReport, error) {
	head := st.AuditHead()
	var v audit.Verifier
	err := st.AuditScan(ctx, 0, func(key uint64, r audit.Record) (bool, error) {
		if err := v.Check(key, r); err != nil {
			return false, err
		}
		return true, nil
	})
	if err == nil {
		err = v.Finish(head)
	}
	out := ChainReport{Checked: v.Checked(), Head: head}
	var be *audit.BreakError
	if errors.As(err, &be) {
		out.Break = be
		return out, nil
	}
	return out, err
}
