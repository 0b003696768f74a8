package events

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/keyfleet/keyfleet/internal/atomicfile"
	"io"
	"os"
	"path/filepath"
)

// fileSink appends one JSON event per line and rotates by size:
// path → path.1 → … → path.MaxFiles (the oldest is removed).
//
// It delivers each event once even across a crash or a change of leader
// (resume): a batch whose write reached the file but whose cursor was not
// saved is delivered again by the runner, and the sink skips the events
// its file already ends with.
type fileSink struct {
	cfg  FileConfig
	max  int64
	f    *os.File
	size int64
	buf  bytes.Buffer
	// tail is the last event the file holds, read when the file is opened
	// after resume; events up to it are not written again. nil once an
	// event after it was written, or when a replay asks for them again.
	tail     *tailEvent
	resuming bool
}

// tailEvent names an event already in the file.
type tailEvent struct {
	Epoch string `json:"epoch"`
	Seq   uint64 `json:"seq"`
}

func newFileSink(cfg FileConfig) (*fileSink, error) {
	return &fileSink{cfg: cfg, max: int64(cfg.MaxSizeMB) << 20}, nil
}

// open opens the current file for appending. A line cut short by a crash
// is ended first so the next event starts on a line of its own.
func (s *fileSink) open() error {
	f, err := os.OpenFile(s.cfg.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("opening %s: %w", s.cfg.Path, err)
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err == nil && size > 0 {
		err = endLine(s.cfg.Path, size, f)
		if err == nil {
			size, err = f.Seek(0, io.SeekEnd)
		}
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("opening %s: %w", s.cfg.Path, err)
	}
	s.f, s.size = f, size
	return nil
}

func endLine(path string, size int64, w io.Writer) error {
	r, err := os.Open(path)
	if err != nil {
		return err
	}
	defer r.Close()
	last := make([]byte, 1)
	if _, err := r.ReadAt(last, size-1); err != nil {
		return err
	}
	if last[0] != '\n' {
		_, err = w.Write([]byte{'\n'})
	}
	return err
}

// resume is called when delivery starts (again) from the stored cursor:
// at start-up and when this keyfleetd becomes the leader. The file is
// opened again and its last event read, as another keyfleetd, or this one
// before a crash, may have written more than the cursor says.
func (s *fileSink) resume() {
	s.close()
	s.resuming = true
}

// replayed is called when an operator asks for events again: they are
// written even if the file ends with them.
func (s *fileSink) replayed() { s.resuming, s.tail = false, nil }

func (s *fileSink) deliver(_ context.Context, batch []Event) error {
	if s.f == nil {
		if err := s.open(); err != nil {
			return err
		}
		if s.resuming {
			s.tail, s.resuming = lastEvent(s.cfg.Path), false
		}
	}
	s.buf.Reset()
	enc := json.NewEncoder(&s.buf)
	enc.SetEscapeHTML(false)
	for _, ev := range batch {
		if s.tail != nil && ev.Epoch == s.tail.Epoch && ev.Seq <= s.tail.Seq {
			continue // the file holds it already
		}
		s.tail = nil
		if err := enc.Encode(ev); err != nil {
			return fmt.Errorf("encoding event %d: %w", ev.Seq, err)
		}
	}
	if s.buf.Len() == 0 {
		return nil
	}
	if s.size > 0 && s.size+int64(s.buf.Len()) > s.max {
		if err := s.rotate(); err != nil {
			return err
		}
	}
	n, err := s.f.Write(s.buf.Bytes())
	s.size += int64(n)
	if err == nil && !s.cfg.NoSync {
		err = s.f.Sync()
	}
	if err != nil {
		s.f.Close() // reopened, and the line ended, on the next attempt
		s.f = nil
		return fmt.Errorf("writing %s: %w", s.cfg.Path, err)
	}
	return nil
}

// tailWindow is how much of a file's end lastEvent reads: far more than
// one event.
const tailWindow = 256 << 10

// lastEvent reads the last complete event line of the file at path, or of
// the newest rotated file when path is empty; nil when there is none. A
// line cut short by a crash is not an event.
func lastEvent(path string) *tailEvent {
	for _, p := range []string{path, path + ".1"} {
		f, err := os.Open(p)
		if err != nil {
			return nil
		}
		size, err := f.Seek(0, io.SeekEnd)
		if err != nil || size == 0 {
			f.Close()
			continue
		}
		from := max(0, size-tailWindow)
		b := make([]byte, size-from)
		_, err = f.ReadAt(b, from)
		f.Close()
		if err != nil {
			return nil
		}
		return lastLine(b)
	}
	return nil
}

// lastLine finds the last line of b that ends with a newline and is an
// event.
func lastLine(b []byte) *tailEvent {
	end := bytes.LastIndexByte(b, '\n')
	for end > 0 {
		start := bytes.LastIndexByte(b[:end], '\n') + 1
		var t tailEvent
		if json.Unmarshal(b[start:end], &t) == nil && t.Seq > 0 {
			return &t
		}
		end = start - 1
	}
	return nil
}

// rotate shifts the rotated files up by one and starts a new file.
func (s *fileSink) rotate() error {
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("closing %s for rotation: %w", s.cfg.Path, err)
	}
	s.f = nil
	name := func(i int) string { return fmt.Sprintf("%s.%d", s.cfg.Path, i) }
	if err := os.Remove(name(s.cfg.MaxFiles)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("rotating %s: %w", s.cfg.Path, err)
	}
	for i := s.cfg.MaxFiles - 1; i >= 1; i-- {
		if err := os.Rename(name(i), name(i+1)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("rotating %s: %w", s.cfg.Path, err)
		}
	}
	if err := os.Rename(s.cfg.Path, name(1)); err != nil {
		return fmt.Errorf("rotating %s: %w", s.cfg.Path, err)
	}
	if !s.cfg.NoSync {
		if err := atomicfile.SyncDir(filepath.Dir(s.cfg.Path)); err != nil {
			return fmt.Errorf("rotating %s: %w", s.cfg.Path, err)
		}
	}
	return s.open()
}

func (s *fileSink) close() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
