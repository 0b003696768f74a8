package agent

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
)

// Journal states of one user in a batch.
const (
	JournalStarted = "started" // a key is being provisioned for the user
	JournalDone    = "done"
	JournalFailed  = "failed"
)

// JournalEntry is one line of a batch journal (JSON lines, appended and
// synced before and after each key, so an interrupted batch resumes
// without provisioning a key twice). It holds no secret.
type JournalEntry struct {
	User    string    `json:"user"`
	State   string    `json:"state"`
	Serial  uint32    `json:"serial,omitempty"`
	Factors []string  `json:"factors,omitempty"`
	Error   string    `json:"error,omitempty"`
	At      time.Time `json:"at"`
}

// Journal is an append-only batch journal; the last entry of a user wins.
type Journal struct {
	f    *os.File
	last map[string]JournalEntry
}

// OpenJournal reads the journal at path, creating it if needed.
func OpenJournal(path string) (*Journal, error) {
	j := &Journal{last: map[string]JournalEntry{}}
	if f, err := os.Open(path); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var e JournalEntry
			if json.Unmarshal(sc.Bytes(), &e) == nil && e.User != "" {
				j.last[e.User] = e
			}
		}
		f.Close()
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the batch journal: %w", err)
	}
	j.f = f
	return j, nil
}

// Last returns a user's last entry.
func (j *Journal) Last(user string) (JournalEntry, bool) {
	e, ok := j.last[user]
	return e, ok
}

// HolderOf returns the user a key was provisioned for, if any.
func (j *Journal) HolderOf(serial uint32) (string, bool) {
	for u, e := range j.last {
		if e.Serial == serial && serial != 0 && e.State != JournalFailed {
			return u, true
		}
	}
	return "", false
}

// Record appends an entry and syncs it to disk.
func (j *Journal) Record(e JournalEntry) error {
	if e.At.IsZero() {
		e.At = time.Now().UTC()
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("writing the batch journal: %w", err)
	}
	j.last[e.User] = e
	return j.f.Sync()
}

// Close closes the journal file.
func (j *Journal) Close() error { return j.f.Close() }
