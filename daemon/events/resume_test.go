package events_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/daemon/events"
)

// seqsInFile reads the seq of every line of path that is an event (a line
// a crash cut short is not).
func seqsInFile(t *testing.T, path string) []uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, line := range strings.Split(string(b), "\n") {
		var ev events.Event
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Seq > 0 {
			out = append(out, ev.Seq)
		}
	}
	return out
}

func wantOnceInOrder(t *testing.T, got []uint64, head uint64) {
	t.Helper()
	if uint64(len(got)) != head {
		t.Fatalf("the file holds %d events, want %d, each once: %v", len(got), head, got)
	}
	for i, s := range got {
		if s != uint64(i+1) {
			t.Fatalf("event %d of the file is seq %d: %v", i+1, s, got)
		}
	}
}

// TestTheFileSinkDoesNotWriteAnEventTwiceAfterACrash: keyfleetd died
// after a batch reached the file but before its cursor was saved (and in
// the middle of writing the next one). The next start, or the next
// leader, delivers from the saved cursor; the file sink reads what its
// file ends with and writes each event once.
func TestTheFileSinkDoesNotWriteAnEventTwiceAfterACrash(t *testing.T) {
	l := newLog(t)
	path := filepath.Join(t.TempDir(), "events.jsonl")
	cursors := &events.MemCursors{}
	cfg := events.Config{Sinks: []events.SinkConfig{{Name: "f", Type: "file", BatchSize: 3, File: &events.FileConfig{Path: path}}}}
	m, stop := run(t, l, cfg, events.Options{Cursors: cursors})
	l.add(t, 10)
	waitFor(t, "delivery", func() bool { return status(m, "f").LastDelivered == l.head() })
	stop()
	// The crash: the cursor saved before the last batches, and half a line.
	cursors.SetCursor(context.Background(), "f", 4)
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"schema":"keyfleet.audit/v1","seq":11,"acti`)
	f.Close()
	l.add(t, 5)
	m, stop = run(t, l, cfg, events.Options{Cursors: cursors})
	waitFor(t, "delivery after the restart", func() bool { return status(m, "f").LastDelivered == l.head() })
	stop()
	wantOnceInOrder(t, seqsInFile(t, path), l.head())
}

// TestAReplayWritesAgainWhatTheFileHolds: an operator's replay is a
// request to deliver again, even right after a start found the events in
// the file.
func TestAReplayWritesAgainWhatTheFileHolds(t *testing.T) {
	l := newLog(t)
	path := filepath.Join(t.TempDir(), "events.jsonl")
	cursors := &events.MemCursors{}
	cfg := events.Config{Sinks: []events.SinkConfig{{Name: "f", Type: "file", File: &events.FileConfig{Path: path}}}}
	m, stop := run(t, l, cfg, events.Options{Cursors: cursors})
	l.add(t, 6)
	waitFor(t, "delivery", func() bool { return status(m, "f").LastDelivered == l.head() })
	stop()
	cursors.SetCursor(context.Background(), "f", 2) // the file holds 1…6
	m, stop = run(t, l, cfg, events.Options{Cursors: cursors})
	waitFor(t, "the sink to catch up", func() bool { return status(m, "f").LastDelivered == l.head() })
	wantOnceInOrder(t, seqsInFile(t, path), l.head())
	if err := m.Replay(context.Background(), "f", 5); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replay", func() bool { return len(seqsInFile(t, path)) == 8 })
	stop()
	if got := seqsInFile(t, path); got[6] != 5 || got[7] != 6 {
		t.Fatalf("after replaying from 5 the file holds %v", got)
	}
}
