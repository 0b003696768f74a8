package events

import (
	"context"
	"fmt"
)

// Store epochs. A store restored from a backup goes back to the head it
// had when the backup was taken, and numbers the events it writes next
// from there: sequence numbers a sink already delivered would name other
// events. So a restore starts a new epoch (keyfleetd restore), every
// delivered event carries the epoch it was written in (Event.Epoch, and
// Event.ID = epoch-seq, unique across restores), and a sink whose cursor
// was saved in another epoch stops, with an operator message, instead of
// delivering re-used sequence numbers. `keyfleet events replay` resumes
// it (docs/events.md, "After a restore").

// EpochSource is a Source whose store keeps epochs. The stores of
// daemon/store and daemon/store/postgres implement it.
type EpochSource interface {
	// Epoch is the store's current epoch.
	Epoch() string
	// EpochOf is the epoch the event at seq was written in.
	EpochOf(seq uint64) string
}

// EpochCursors is a CursorStore that saves, with each cursor, the epoch
// the store was in (SetCursor saves the current one).
type EpochCursors interface {
	// CursorEpoch is the epoch saved with the sink's cursor; "" when the
	// cursor was saved before stores had epochs, or there is none.
	CursorEpoch(ctx context.Context, sink string) (string, error)
}

// EpochError stops a sink whose cursor belongs to another history of the
// audit log than the store's: the store was restored from a backup, or
// its head went back below what the sink delivered.
type EpochError struct {
	Sink        string
	CursorEpoch string // the epoch saved with the cursor ("" if unknown)
	StoreEpoch  string
	Cursor      uint64
	Head        uint64
}

func (e *EpochError) Error() string {
	if e.CursorEpoch != e.StoreEpoch {
		return fmt.Sprintf("sink %s stopped: the store was restored from a backup (epoch %s, the sink delivered up to seq %d in epoch %s); "+
			"events after the restore point re-use sequence numbers, so the sink waits for an operator: check what the receiver holds, "+
			"then resume with 'keyfleet events replay %s --from N' (events carry their epoch in \"id\")",
			e.Sink, e.StoreEpoch, e.Cursor, e.CursorEpoch, e.Sink)
	}
	return fmt.Sprintf("sink %s stopped: the audit head (seq %d) is behind what the sink delivered (seq %d): the store went back in time "+
		"(restored without 'keyfleetd restore'?); sequence numbers after %d would be re-used, so the sink waits for an operator: "+
		"run 'keyfleetd new-epoch', then resume with 'keyfleet events replay %s --from N'",
		e.Sink, e.Head, e.Cursor, e.Head, e.Sink)
}

// epochOf names the epoch of the event at seq ("" for a source without
// epochs).
func (m *Manager) epochOf(seq uint64) string {
	if es, ok := m.o.Source.(EpochSource); ok {
		return es.EpochOf(seq)
	}
	return ""
}

// checkEpoch returns an *EpochError when the sink's cursor belongs to
// another history than the store's.
func (r *runner) checkEpoch(ctx context.Context, cursor uint64) error {
	head := r.m.o.Source.AuditHead().Seq
	es, okS := r.m.o.Source.(EpochSource)
	ec, okC := r.m.o.Cursors.(EpochCursors)
	if okS && okC {
		ce, err := ec.CursorEpoch(ctx, r.cfg.Name)
		if err != nil {
			return fmt.Errorf("reading the epoch of the cursor: %w", err)
		}
		if ce != "" && ce != es.Epoch() {
			return &EpochError{Sink: r.cfg.Name, CursorEpoch: ce, StoreEpoch: es.Epoch(), Cursor: cursor, Head: head}
		}
	}
	if cursor > head {
		epoch := ""
		if okS {
			epoch = es.Epoch()
		}
		return &EpochError{Sink: r.cfg.Name, CursorEpoch: epoch, StoreEpoch: epoch, Cursor: cursor, Head: head}
	}
	return nil
}
