package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/internal/atomicfile"
)

// Source is the audit log sinks read. *store.Store satisfies it.
type Source interface {
	// AuditHead is the last committed link of the audit chain.
	AuditHead() audit.Head
	// AuditScan calls fn for each audit record with seq > after, in order,
	// until fn returns false or an error.
	AuditScan(ctx context.Context, after uint64, fn func(key uint64, r audit.Record) (bool, error)) error
}

// CursorStore persists each sink's cursor and its dead letters. The daemon
// keeps them in its store; [MemCursors] and [FileCursors] serve tests and
// small deployments. Implementations are safe for concurrent use.
type CursorStore interface {
	// Cursor returns the last sequence number the sink handled, and
	// ErrNoCursor if the sink never stored one.
	Cursor(ctx context.Context, sink string) (uint64, error)
	// SetCursor durably records that the sink handled everything up to
	// and including seq.
	SetCursor(ctx context.Context, sink string, seq uint64) error
	// AddDeadLetter durably records a batch the sink gave up on.
	AddDeadLetter(ctx context.Context, d DeadLetter) error
	// DeadLetters lists the sink's dead letters, oldest first.
	DeadLetters(ctx context.Context, sink string) ([]DeadLetter, error)
}

// ErrNoCursor is returned by [CursorStore.Cursor] for a sink that has no
// cursor yet.
var ErrNoCursor = errors.New("sink has no cursor yet")

// DeadLetter records a batch a sink gave up on after its retry budget. The
// events stay in the audit log: [Manager.Replay] from FromSeq re-delivers
// them. It never carries a secret or an event body.
type DeadLetter struct {
	Sink     string    `json:"sink"`
	Type     string    `json:"type"`
	FromSeq  uint64    `json:"from_seq"` // first seq of the batch
	ToSeq    uint64    `json:"to_seq"`   // last seq of the batch
	Seqs     []uint64  `json:"seqs"`     // the events that passed the filter
	Attempts int       `json:"attempts"`
	Error    string    `json:"error"` // the last attempt's error
	At       time.Time `json:"at"`
}

// DeadLetterReporter hears about each dead letter once it is stored. The
// daemon records it as an audit event with action [ActionDeadLetter].
type DeadLetterReporter interface {
	ReportDeadLetter(ctx context.Context, d DeadLetter) error
}

// cursorState is the content of a cursor store.
type cursorState struct {
	Cursors     map[string]uint64       `json:"cursors"`
	DeadLetters map[string][]DeadLetter `json:"dead_letters"`
}

func newCursorState() cursorState {
	return cursorState{Cursors: map[string]uint64{}, DeadLetters: map[string][]DeadLetter{}}
}

// MemCursors is an in-memory CursorStore for tests. The zero value is
// ready to use.
type MemCursors struct {
	mu sync.Mutex
	st cursorState
}

var _ CursorStore = (*MemCursors)(nil)

func (m *MemCursors) init() {
	if m.st.Cursors == nil {
		m.st = newCursorState()
	}
}

// Cursor implements CursorStore.
func (m *MemCursors) Cursor(_ context.Context, sink string) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	seq, ok := m.st.Cursors[sink]
	if !ok {
		return 0, ErrNoCursor
	}
	return seq, nil
}

// SetCursor implements CursorStore.
func (m *MemCursors) SetCursor(_ context.Context, sink string, seq uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	m.st.Cursors[sink] = seq
	return nil
}

// AddDeadLetter implements CursorStore.
func (m *MemCursors) AddDeadLetter(_ context.Context, d DeadLetter) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	m.st.DeadLetters[d.Sink] = append(m.st.DeadLetters[d.Sink], d)
	return nil
}

// DeadLetters implements CursorStore.
func (m *MemCursors) DeadLetters(_ context.Context, sink string) ([]DeadLetter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	return slices.Clone(m.st.DeadLetters[sink]), nil
}

// FileCursors keeps cursors and dead letters in one JSON file, replaced
// atomically (write to a temporary file, fsync, rename, fsync the folder)
// on every change. It suits a single daemon with a handful of sinks.
type FileCursors struct {
	path string
	mem  MemCursors
}

var _ CursorStore = (*FileCursors)(nil)

// OpenFileCursors loads (or starts) the cursor file at path.
func OpenFileCursors(path string) (*FileCursors, error) {
	f := &FileCursors{path: path}
	f.mem.init()
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return f, nil
	case err != nil:
		return nil, fmt.Errorf("reading event cursors: %w", err)
	}
	if err := json.Unmarshal(b, &f.mem.st); err != nil {
		return nil, fmt.Errorf("reading event cursors from %s: %w", path, err)
	}
	if f.mem.st.Cursors == nil || f.mem.st.DeadLetters == nil {
		st := newCursorState()
		maps.Copy(st.Cursors, f.mem.st.Cursors)
		maps.Copy(st.DeadLetters, f.mem.st.DeadLetters)
		f.mem.st = st
	}
	return f, nil
}

// Cursor implements CursorStore.
func (f *FileCursors) Cursor(ctx context.Context, sink string) (uint64, error) {
	return f.mem.Cursor(ctx, sink)
}

// DeadLetters implements CursorStore.
func (f *FileCursors) DeadLetters(ctx context.Context, sink string) ([]DeadLetter, error) {
	return f.mem.DeadLetters(ctx, sink)
}

// SetCursor implements CursorStore.
func (f *FileCursors) SetCursor(_ context.Context, sink string, seq uint64) error {
	return f.change(func(st *cursorState) { st.Cursors[sink] = seq })
}

// AddDeadLetter implements CursorStore.
func (f *FileCursors) AddDeadLetter(_ context.Context, d DeadLetter) error {
	return f.change(func(st *cursorState) { st.DeadLetters[d.Sink] = append(st.DeadLetters[d.Sink], d) })
}

// change applies fn to a copy of the state, writes it durably and only
// then makes it the state in memory.
func (f *FileCursors) change(fn func(*cursorState)) error {
	f.mem.mu.Lock()
	defer f.mem.mu.Unlock()
	next := newCursorState()
	maps.Copy(next.Cursors, f.mem.st.Cursors)
	maps.Copy(next.DeadLetters, f.mem.st.DeadLetters)
	fn(&next)
	b, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("encoding event cursors: %w", err)
	}
	if err := atomicfile.Write(f.path, b); err != nil {
		return fmt.Errorf("saving event cursors: %w", err)
	}
	f.mem.st = next
	return nil
}
