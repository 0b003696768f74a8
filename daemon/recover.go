package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/checkpoint"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/seal"
	"github.com/keyfleet/keyfleet/daemon/store"
)

// ActionLossAccepted is the audit action recover --accept-loss records.
const ActionLossAccepted = "store.loss_accepted"

// RecoverOptions configures Recover.
type RecoverOptions struct {
	// AcceptLoss makes the store serve again, losing what cannot be read;
	// without it Recover only reports.
	AcceptLoss bool
	// Reason is the operator's note, recorded with the loss.
	Reason string
	Getenv func(string) string
	Now    func() time.Time
}

// RecoverResult says what Recover found and did.
type RecoverResult struct {
	// Damage is what was damaged in the store's files (nil: nothing).
	Damage *store.DamageError
	// Mismatch is how the store disagreed with its newest checkpoint
	// (nil: it did not, or there was none).
	Mismatch error
	// Quarantine holds copies of the damaged files.
	Quarantine string
	// Head is the audit head after recovery; LossSeq the seq of the
	// store.loss_accepted event; Checkpoint the one signed after it.
	Head       audit.Head
	LossSeq    uint64
	Checkpoint checkpoint.Checkpoint
	// WitnessErr is set when the witness refused the new checkpoint.
	WitnessErr error
}

// Healthy reports whether there was nothing to recover.
func (r RecoverResult) Healthy() bool { return r.Damage == nil && r.Mismatch == nil }

// Recover checks a stopped keyfleetd's store for damage and for a
// mismatch with its newest audit checkpoint. With AcceptLoss it keeps a
// copy of each damaged file, drops what cannot be read, records the loss
// as an audit event (store.loss_accepted, with the files, the sequence
// numbers and the checkpoint it disagreed with) and signs a new
// checkpoint after it, so that keyfleetd serves again.
func Recover(ctx context.Context, cfg Config, o RecoverOptions) (RecoverResult, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return RecoverResult{}, err
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := NewLogger(cfg, io.Discard)
	storeKey, sl, err := loadKeys(cfg, o.Getenv)
	if err != nil {
		return RecoverResult{}, err
	}
	opts := storeOptions(cfg, storeKey, log, nil)
	var res RecoverResult
	if o.AcceptLoss {
		res.Quarantine = filepath.Join(cfg.DataDir, "quarantine", o.Now().UTC().Format("20060102T150405Z"))
		if res.Damage, err = store.AcceptLoss(opts, res.Quarantine); err != nil {
			return res, err
		}
	}
	st, err := store.Open(opts)
	if errors.As(err, &res.Damage) {
		return res, nil // reported; AcceptLoss was not asked for
	}
	if err != nil {
		return res, err
	}
	defer st.Close()
	if err := checkSealKey(ctx, badgerChecks{st}, st, sl, log); err != nil {
		return res, err
	}
	a, err := newAnchor(cfg, sl)
	if err != nil {
		return res, err
	}
	cp, _, _, err := a.check(ctx, st, log)
	if errors.Is(err, checkpoint.ErrMismatch) || errors.Is(err, checkpoint.ErrBadSignature) {
		res.Mismatch, err = err, nil
	}
	if err != nil {
		return res, fmt.Errorf("comparing the store with its audit checkpoint: %w", err)
	}
	res.Head = st.AuditHead()
	if !o.AcceptLoss || res.Healthy() {
		return res, nil
	}
	return res, accept(ctx, st, sl, a, cp, o, &res)
}

// loadKeys reads the store key and the sealing key.
func loadKeys(cfg Config, getenv func(string) string) ([]byte, *seal.Sealer, error) {
	storeKey, err := loadKey(getenv, EnvStoreKey, storeKeyPath(cfg.DataDir))
	if err != nil {
		return nil, nil, err
	}
	sealKey, err := loadKey(getenv, EnvSealKey, sealKeyPath(cfg.DataDir))
	if err != nil {
		return nil, nil, err
	}
	sl, err := seal.New(sealKey)
	return storeKey, sl, err
}

// accept records the loss and signs a checkpoint after it.
func accept(ctx context.Context, st *store.Store, sl *seal.Sealer, a *anchor, cp checkpoint.Checkpoint, o RecoverOptions, res *RecoverResult) error {
	if err := st.Ready(); err != nil {
		return fmt.Errorf("the store cannot record the loss: %w", err)
	}
	before, after, err := st.RepairHead()
	if err != nil {
		return fmt.Errorf("repairing the audit head: %w", err)
	}
	svc, err := core.New(core.Config{Store: st, Sealer: sl, Now: o.Now})
	if err != nil {
		return err
	}
	extra := lossExtra(res, cp, before, after, o.Reason)
	if err := svc.RecordEvent(ctx, ActionLossAccepted, "store", "store", extra); err != nil {
		return fmt.Errorf("recording the loss in the audit log: %w", err)
	}
	res.Head = st.AuditHead()
	res.LossSeq = res.Head.Seq
	res.Checkpoint = a.signer.Sign(res.Head, o.Now())
	if err := a.file.Put(ctx, res.Checkpoint); err != nil {
		return fmt.Errorf("the loss is recorded (seq %d) but the new checkpoint could not be written: %w", res.LossSeq, err)
	}
	res.Checkpoint.Source = a.file.Path
	if a.witness != nil {
		res.WitnessErr = a.witness.Put(ctx, res.Checkpoint)
	}
	return nil
}

// lossExtra describes the loss for its audit event.
func lossExtra(res *RecoverResult, cp checkpoint.Checkpoint, before, after audit.Head, reason string) map[string]string {
	extra := map[string]string{"by": "keyfleetd recover --accept-loss", "head_seq": strconv.FormatUint(after.Seq, 10)}
	if before != after {
		extra["head_repaired_from"] = strconv.FormatUint(before.Seq, 10)
	}
	if reason != "" {
		extra["reason"] = reason
	}
	if res.Damage != nil {
		var files []string
		for _, d := range res.Damage.Damages {
			files = append(files, d.String())
		}
		extra["damaged"] = strings.Join(files, "; ")
		extra["quarantine"] = res.Quarantine
	}
	var me *checkpoint.MismatchError
	if errors.As(res.Mismatch, &me) || res.Mismatch != nil {
		extra["checkpoint"] = fmt.Sprintf("seq %d hash %s signed %s", cp.Seq, cp.Hash, cp.Time.UTC().Format(time.RFC3339))
		extra["checkpoint_source"] = cp.Source
		extra["checkpoint_problem"] = res.Mismatch.Error()
		if me != nil && me.Behind {
			extra["missing_events"] = strconv.FormatUint(cp.Seq-after.Seq, 10)
		}
	}
	return extra
}
