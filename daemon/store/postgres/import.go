package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/events"
	"github.com/keyfleet/keyfleet/daemon/store"
)

// Source is a Badger store as Import reads it.
type Source interface {
	Export(fn func(v any) error) error
	AuditScan(ctx context.Context, after uint64, fn func(uint64, audit.Record) (bool, error)) error
	AuditHead() audit.Head
	Epochs() []store.Epoch
}

// ErrNotEmpty: Import was given a database that already holds a store.
var ErrNotEmpty = errors.New("the PostgreSQL database already holds a keyfleet store: copy into an empty database")

// Import copies every record and the audit chain of src into this store,
// which must be empty, in one transaction, with its epochs, so that
// events keep their ids. It returns how many records and events it
// copied. Verify the copy with core.VerifyStore.
func (s *Store) Import(ctx context.Context, src Source) (records, evs int, err error) {
	var n int
	if err := s.pool.QueryRow(ctx, "SELECT (SELECT seq FROM audit_head) + (SELECT count(*) FROM users)").Scan(&n); err != nil {
		return 0, 0, err
	}
	if n != 0 {
		return 0, 0, ErrNotEmpty
	}
	ptx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return 0, 0, err
	}
	defer ptx.Rollback(context.WithoutCancel(ctx))
	t := newTx(ctx, s, ptx, nil, nil, false)
	if err := src.Export(func(v any) error { records++; return t.importRecord(v) }); err != nil {
		return 0, 0, err
	}
	if evs, err = s.importChain(ctx, ptx, src); err != nil {
		return 0, 0, err
	}
	if err := s.importEpochs(ctx, ptx, src.Epochs()); err != nil {
		return 0, 0, err
	}
	if err := ptx.Commit(ctx); err != nil {
		return 0, 0, err
	}
	return records, evs, s.loadEpochs(ctx)
}

func (t *tx) importRecord(v any) error {
	switch r := v.(type) {
	case core.User:
		return t.InsertUser(r)
	case core.Factor:
		return t.PutFactor(r)
	case core.Device:
		return t.InsertDevice(r)
	case core.Enrolment:
		return t.PutEnrolment(r)
	case core.Token:
		return t.PutToken(r)
	case core.Approval:
		return t.PutApproval(r)
	case core.RecoveryCodes:
		return t.PutRecoveryCodes(r)
	case core.RecoveryCase:
		return t.PutRecoveryCase(r)
	case core.AccessPass:
		return t.PutAccessPass(r)
	case core.BreakGlass:
		return t.PutBreakGlass(r)
	case core.PolicyVersion:
		return t.InsertPolicyVersion(r)
	case core.PolicyDraft:
		return t.PutPolicyDraft(r)
	case store.FirstApplied:
		return t.PutFirstApplied(r.UserID, r.Times)
	case core.Exemption:
		return t.PutExemption(r)
	case store.SinkCursor:
		return t.exec("INSERT INTO sink_cursors (sink, seq, epoch) VALUES ($1, $2, '')", r.Sink, int64(r.Seq))
	case events.DeadLetter:
		return t.importDeadLetter(r)
	case core.DirectoryState:
		return t.PutDirectoryState(r)
	case core.DirectoryGroup:
		return t.PutDirectoryGroup(r)
	}
	return fmt.Errorf("importing: a record of type %T is not known", v)
}

func (t *tx) importDeadLetter(d events.DeadLetter) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return t.exec("INSERT INTO dead_letters (sink, at, rec) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
		d.Sink, d.At.UnixNano(), t.s.box.seal("dead_letters", d.Sink, b))
}

// importChain copies the audit records as they are (same seq, hashes and
// bodies) and sets the head.
func (s *Store) importChain(ctx context.Context, ptx pgx.Tx, src Source) (int, error) {
	n := 0
	b := &pgx.Batch{}
	flush := func() error {
		if b.Len() == 0 {
			return nil
		}
		err := ptx.SendBatch(ctx, b).Close()
		b = &pgx.Batch{}
		return err
	}
	err := src.AuditScan(ctx, 0, func(seq uint64, r audit.Record) (bool, error) {
		ev, err := r.Event()
		if err != nil {
			return false, err
		}
		b.Queue("INSERT INTO audit (seq, target, actor, action, rec) VALUES ($1, $2, $3, $4, $5)",
			int64(seq), ev.Target.ID, ev.Actor.ID, ev.Action, s.box.seal("audit", fmt.Sprint(seq), r.Marshal()))
		n++
		if b.Len() >= 1000 {
			return true, flush()
		}
		return true, nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return 0, fmt.Errorf("copying the audit chain: %w", err)
	}
	h := src.AuditHead()
	_, err = ptx.Exec(ctx, "UPDATE audit_head SET seq = $1, hash = $2", int64(h.Seq), h.Hash[:])
	return n, err
}

func (s *Store) importEpochs(ctx context.Context, ptx pgx.Tx, es []store.Epoch) error {
	if len(es) == 0 {
		return nil
	}
	if _, err := ptx.Exec(ctx, "DELETE FROM epochs"); err != nil {
		return err
	}
	for _, e := range es {
		if _, err := ptx.Exec(ctx, "INSERT INTO epochs (id, from_seq) VALUES ($1, $2)", e.ID, int64(e.From)); err != nil {
			return err
		}
	}
	return nil
}
