package checkpoint

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/keyfleet/keyfleet/internal/atomicfile"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

// Place is somewhere checkpoints are kept outside the store.
type Place interface {
	// Name says where, for logs and metrics ("file", "witness", "events").
	Name() string
	// Put keeps c as the newest checkpoint there.
	Put(ctx context.Context, c Checkpoint) error
}

// Source is a place checkpoints can be read back from.
type Source interface {
	Name() string
	// Latest is the newest checkpoint kept there; ok is false when there
	// is none yet.
	Latest(ctx context.Context) (c Checkpoint, ok bool, err error)
}

// File keeps the newest checkpoint as one JSON object in a file, replaced
// whole (written to a temporary file, synced, renamed). Put it outside the
// data folder, ideally on another disk: a copy of the data folder put
// back, or a fault in it, then leaves it alone.
type File struct{ Path string }

var (
	_ Place  = File{}
	_ Source = File{}
)

// Name implements Place.
func (f File) Name() string { return "file" }

// Put implements Place.
func (f File) Put(_ context.Context, c Checkpoint) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(f.Path, append(b, '\n')); err != nil {
		return fmt.Errorf("writing the checkpoint file %s: %w", f.Path, err)
	}
	return nil
}

// Latest implements Source.
func (f File) Latest(context.Context) (Checkpoint, bool, error) {
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return Checkpoint{}, false, nil
	}
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("reading the checkpoint file: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("the checkpoint file %s: %w", f.Path, err)
	}
	c.Source = f.Path
	return c, true, nil
}

// Parse reads a checkpoint's JSON (a checkpoint file, a witness's answer).
func Parse(b []byte) (Checkpoint, error) {
	var c Checkpoint
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("not a checkpoint: %v", err)
	}
	if c.Key == "" || c.Sig == "" || c.Hash == "" {
		return c, errors.New("not a checkpoint: key, sig or hash is missing")
	}
	return c, nil
}

// Witness keeps checkpoints with an HTTPS service that this host cannot
// rewrite: Put POSTs the checkpoint's JSON to URL (any 2xx accepts it);
// Latest GETs URL, which answers the newest checkpoint it holds (404:
// none). A witness may refuse a checkpoint that goes back (409): that is
// the rollback it exists to catch.
type Witness struct {
	URL    string
	Client *http.Client // default: 10-second timeout
}

var (
	_ Place  = Witness{}
	_ Source = Witness{}
)

// Name implements Place.
func (w Witness) Name() string { return "witness" }

func (w Witness) client() *http.Client {
	if w.Client != nil {
		return w.Client
	}
	return &http.Client{Timeout: 10 * time.Second}
}

// Put implements Place.
func (w Witness) Put(ctx context.Context, c Checkpoint) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client().Do(req)
	if err != nil {
		return fmt.Errorf("sending the checkpoint to the witness: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("the witness %s refused checkpoint seq %d: %s %s", w.URL, c.Seq, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// Latest implements Source.
func (w Witness) Latest(ctx context.Context) (Checkpoint, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.URL, nil)
	if err != nil {
		return Checkpoint{}, false, err
	}
	resp, err := w.client().Do(req)
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("asking the witness for its checkpoint: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return Checkpoint{}, false, nil
	}
	if resp.StatusCode != http.StatusOK {
		return Checkpoint{}, false, fmt.Errorf("the witness %s answered %s", w.URL, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return Checkpoint{}, false, err
	}
	c, err := Parse(b)
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("the witness %s: %w", w.URL, err)
	}
	c.Source = w.URL
	return c, true, nil
}

// Recorder appends an audit event (core.Service.RecordEvent).
type Recorder interface {
	RecordEvent(ctx context.Context, action, targetType, targetID string, extra map[string]string) error
}

// ActionCheckpoint is the audit action of a checkpoint; the event sinks
// deliver it like every audit event.
const ActionCheckpoint = "audit.checkpoint"

// Events records each checkpoint as an audit.checkpoint event, which the
// event sinks deliver outside. The event itself is the next link of the
// chain: a checkpoint of seq N is recorded as event N+1.
type Events struct{ Recorder Recorder }

var _ Place = Events{}

// Name implements Place.
func (e Events) Name() string { return "events" }

// Put implements Place.
func (e Events) Put(ctx context.Context, c Checkpoint) error {
	return e.Recorder.RecordEvent(ctx, ActionCheckpoint, "audit_log", "audit", Extra(c))
}

// Extra is a checkpoint as an audit event's extra fields.
func Extra(c Checkpoint) map[string]string {
	return map[string]string{"seq": strconv.FormatUint(c.Seq, 10), "hash": c.Hash,
		"time": c.Time.UTC().Format(time.RFC3339Nano), "key": c.Key, "sig": c.Sig}
}
