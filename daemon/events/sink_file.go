package events

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// fileSink appends one JSON event per line and rotates by size:
// path → path.1 → … → path.MaxFiles (the oldest is removed).
type fileSink struct {
	cfg  FileConfig
	max  int64
	f    *os.File
	size int64
	buf  bytes.Buffer
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

func (s *fileSink) deliver(_ context.Context, batch []Event) error {
	s.buf.Reset()
	enc := json.NewEncoder(&s.buf)
	enc.SetEscapeHTML(false)
	for _, ev := range batch {
		if err := enc.Encode(ev); err != nil {
			return fmt.Errorf("encoding event %d: %w", ev.Seq, err)
		}
	}
	if s.f == nil {
		if err := s.open(); err != nil {
			return err
		}
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
		if err := syncDir(filepath.Dir(s.cfg.Path)); err != nil {
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
