package checkpoint

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/keyfleet/keyfleet/daemon/audit"
)

// Chain is the audit log as the store gives it (daemon/store.Store).
type Chain interface {
	AuditHead() audit.Head
	// AuditScan calls fn for every record after a sequence number, in
	// order, until fn returns false or an error.
	AuditScan(ctx context.Context, after uint64, fn func(uint64, audit.Record) (bool, error)) error
}

// ErrMismatch is wrapped by *MismatchError.
var ErrMismatch = errors.New("the audit log does not match its checkpoint")

// MismatchError says how a store's audit log disagrees with a checkpoint.
// It wraps ErrMismatch.
type MismatchError struct {
	Checkpoint Checkpoint
	Head       audit.Head // the store's head
	// Behind is set when the log ends before the checkpoint: Missing
	// events are gone. Otherwise the record at the checkpoint's sequence
	// (or one after it) is not the one the checkpoint signed.
	Behind  bool
	Missing uint64
	Break   *audit.BreakError // a break after the checkpoint, when that is what is wrong
}

func (e *MismatchError) Error() string {
	switch {
	case e.Behind:
		return fmt.Sprintf("the store's audit log ends at seq %d but the newest audit checkpoint is at seq %d (%s): %d acknowledged events are missing (a damaged log replayed in part, or the store put back from an older copy)",
			e.Head.Seq, e.Checkpoint.Seq, e.Checkpoint.about(), e.Missing)
	case e.Break != nil:
		return fmt.Sprintf("the store's audit log matches the newest audit checkpoint %s but breaks after it: %v", e.Checkpoint, e.Break)
	}
	return fmt.Sprintf("the store's audit record %d is not the one the newest audit checkpoint (%s) signed: the log was rewritten from there or before",
		e.Checkpoint.Seq, e.Checkpoint.about())
}

func (e *MismatchError) Unwrap() error { return ErrMismatch }

// Report is what VerifyFrom checked.
type Report struct {
	Checkpoint Checkpoint
	Checked    uint64     // records verified after the checkpoint
	Head       audit.Head // where the log ends
}

// VerifyFrom checks a store's audit log against a checkpoint: the record
// at the checkpoint's sequence must carry its hash, and every record
// after it must link, up to the head. It is the cheap start of a full
// verification: what comes before the checkpoint was verified when it
// was signed. It returns a *MismatchError when the log disagrees, another
// error when it cannot be read. A checkpoint of seq 0 (an empty log)
// checks the whole chain.
func VerifyFrom(ctx context.Context, ch Chain, c Checkpoint) (Report, error) {
	want, err := c.Head()
	if err != nil {
		return Report{}, err
	}
	head := ch.AuditHead()
	rep := Report{Checkpoint: c, Head: head}
	if head.Seq < c.Seq {
		return rep, &MismatchError{Checkpoint: c, Head: head, Behind: true, Missing: c.Seq - head.Seq}
	}
	v := audit.VerifierFrom(want)
	after := c.Seq
	saw := c.Seq == 0 // the empty log's head needs no record
	if c.Seq > 0 {
		after = c.Seq - 1
	}
	err = ch.AuditScan(ctx, after, func(seq uint64, r audit.Record) (bool, error) {
		switch {
		case seq == c.Seq:
			if r.Seq != seq || r.Hash != want.Hash {
				return false, &MismatchError{Checkpoint: c, Head: head}
			}
			saw = true
			return true, nil
		case !saw:
			return false, &MismatchError{Checkpoint: c, Head: head} // the checkpoint's record is gone
		}
		return true, v.Check(seq, r)
	})
	if err == nil && !saw {
		err = &MismatchError{Checkpoint: c, Head: head}
	}
	if err == nil {
		err = v.Finish(head)
	}
	rep.Checked = v.Checked()
	var be *audit.BreakError
	if errors.As(err, &be) {
		return rep, &MismatchError{Checkpoint: c, Head: head, Break: be}
	}
	return rep, err
}

// Newest reads every source and returns the newest checkpoint signed by
// pub (nil: any key), by signing time: a rolled-back store comes with the
// checkpoint file of its time, but not with the witness's newer one.
// Checkpoints that do not verify are returned in bad, to be reported
// loudly: they were altered, or signed by another key. Sources that
// cannot be read are returned in errs.
func Newest(ctx context.Context, pub ed25519.PublicKey, sources ...Source) (newest Checkpoint, ok bool, bad []error, errs []error) {
	for _, s := range sources {
		c, found, err := s.Latest(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !found {
			continue
		}
		if err := c.Verify(pub); err != nil {
			bad = append(bad, fmt.Errorf("%s: %w", c.Source, err))
			continue
		}
		if !ok || c.Time.After(newest.Time) {
			newest, ok = c, true
		}
	}
	return newest, ok, bad, errs
}
