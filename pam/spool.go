package pam

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"syscall"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/internal/atomicfile"
)

// DefaultSpoolDir is where decisions wait for keyfleetd by default.
const DefaultSpoolDir = "/var/spool/keyfleet-pam"

// defaultSpoolMax is how many decisions a spool keeps at most.
const defaultSpoolMax = 10000

// Errors of a Spool.
var (
	// ErrSpoolFull: the spool holds Max decisions already; the new one is
	// in syslog only.
	ErrSpoolFull = errors.New("the spool is full")
	// ErrUnsafeSpool: the spool's folder is not root's alone, so anyone
	// could have put records in it that the host's token would send.
	ErrUnsafeSpool = errors.New("the spool's folder must be root's with mode 0700")
)

// Spool keeps login decisions that keyfleetd could not take (it was down,
// or refused this host's token) in a folder of root's, one file each,
// until a later sign-in reaches keyfleetd and sends them, oldest first.
type Spool struct {
	Dir string
	// Max is how many decisions it keeps at most (0: 10,000).
	Max int
}

// spoolName is a spooled decision's file name: its id and ".json".
var spoolName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}\.json$`)

// newRecordID names a decision: its time (so names sort by it) and
// random bytes.
func newRecordID(t time.Time) string {
	b := make([]byte, 6)
	rand.Read(b)
	t = t.UTC()
	return fmt.Sprintf("%s%06dZ-%s", t.Format("20060102T150405"), t.Nanosecond()/1000, hex.EncodeToString(b))
}

// open makes the folder when it is missing and checks it is root's alone.
// Errors: ErrUnsafeSpool, and the file system's.
func (s *Spool) open() error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return err
	}
	fi, err := os.Lstat(s.Dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || !fi.IsDir() || st.Uid != 0 || fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%w (chown root:root %s; chmod 700 %s)", ErrUnsafeSpool, s.Dir, s.Dir)
	}
	return nil
}

// Put keeps d (which has its ID) durably. Errors: ErrSpoolFull,
// ErrUnsafeSpool, and the file system's.
func (s *Spool) Put(d api.LoginDecision) error {
	if err := s.open(); err != nil {
		return err
	}
	names, err := s.names()
	if err != nil {
		return err
	}
	if len(names) >= orDefault(s.Max, defaultSpoolMax) {
		return fmt.Errorf("%w: %d decisions wait in %s", ErrSpoolFull, len(names), s.Dir)
	}
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(s.Dir, d.ID+".json"), b)
}

// Flush sends up to max spooled decisions with send, oldest first, and
// removes each that keyfleetd took, or refused as malformed (drop is told
// which, and why). It stops at the first that cannot be sent, and does
// nothing while another sign-in flushes. It returns how many it sent.
func (s *Spool) Flush(ctx context.Context, max int, send func(context.Context, api.LoginDecision) error, drop func(string, error)) (int, error) {
	if _, err := os.Stat(s.Dir); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err := s.open(); err != nil {
		return 0, err
	}
	unlock, ok, err := s.lock()
	if err != nil || !ok {
		return 0, err
	}
	defer unlock()
	names, err := s.names()
	if err != nil {
		return 0, err
	}
	sent := 0
	for _, name := range names[:min(max, len(names))] {
		path := filepath.Join(s.Dir, name)
		d, err := readDecision(path)
		if err == nil {
			err = send(ctx, d)
		}
		var bad *malformed
		switch {
		case errors.As(err, &bad):
			drop(name, err)
		case err != nil:
			return sent, err
		default:
			sent++
		}
		os.Remove(path)
	}
	return sent, atomicfile.SyncDir(s.Dir)
}

// malformed marks a spooled decision that can never be sent (keyfleetd
// refused it as bad input, or it does not parse): Flush drops it.
type malformed struct{ err error }

func (m *malformed) Error() string { return "malformed decision: " + m.err.Error() }
func (m *malformed) Unwrap() error { return m.err }

// readDecision reads a spooled decision; one that does not parse is
// *malformed.
func readDecision(path string) (api.LoginDecision, error) {
	var d api.LoginDecision
	b, err := os.ReadFile(path)
	if err != nil {
		return d, err
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return d, &malformed{err}
	}
	return d, nil
}

// names lists the spooled decisions, oldest first.
func (s *Spool) names() ([]string, error) {
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.Type().IsRegular() && spoolName.MatchString(e.Name()) {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out, nil
}

// lock takes the spool's lock unless another process holds it (false).
func (s *Spool) lock() (func(), bool, error) {
	f, err := os.OpenFile(filepath.Join(s.Dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, false, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, err
	}
	return func() { f.Close() }, true, nil
}

func orDefault(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}
