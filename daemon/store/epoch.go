package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/keyfleet/keyfleet/daemon/events"
)

// Store epochs (daemon/events/epoch.go): meta/epochs lists each epoch
// with the first seq written in it. A restore starts a new one.

const kEpochs = "meta/epochs"

var (
	_ events.EpochSource  = (*Store)(nil)
	_ events.EpochCursors = (*Store)(nil)
)

// Epoch is one store epoch: its id and the first seq written in it.
type Epoch struct {
	ID   string `json:"id"`
	From uint64 `json:"from"`
}

type epochList struct {
	mu   sync.RWMutex
	list []Epoch
}

func (s *Store) epochList() *epochList { return &s.epochs }

func newEpochID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// loadEpochs reads the epochs, starting the first one in a store that
// has none (a new store, or one from before epochs).
func (s *Store) loadEpochs() error {
	var list []Epoch
	err := s.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(kEpochs))
		if errors.Is(err, badger.ErrKeyNotFound) {
			h, err := readHead(txn)
			if err != nil {
				return err
			}
			list = []Epoch{{ID: newEpochID(), From: h.Seq + 1}}
			return put(txn, []byte(kEpochs), list)
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error { return json.Unmarshal(v, &list) })
	})
	if err != nil {
		return fmt.Errorf("reading the store epochs: %w", err)
	}
	l := s.epochList()
	l.mu.Lock()
	l.list = list
	l.mu.Unlock()
	return nil
}

// Epochs lists the store's epochs, oldest first.
func (s *Store) Epochs() []Epoch {
	l := s.epochList()
	l.mu.RLock()
	defer l.mu.RUnlock()
	return append([]Epoch(nil), l.list...)
}

// Epoch is the current epoch.
func (s *Store) Epoch() string {
	es := s.Epochs()
	if len(es) == 0 {
		return ""
	}
	return es[len(es)-1].ID
}

// EpochOf is the epoch the event at seq was written in.
func (s *Store) EpochOf(seq uint64) string {
	id := ""
	for _, e := range s.Epochs() {
		if e.From <= seq || id == "" {
			id = e.ID
		}
	}
	return id
}

// NewEpoch starts a new epoch after the current head and returns it.
func (s *Store) NewEpoch() (string, error) {
	id := newEpochID()
	list := append(s.Epochs(), Epoch{ID: id, From: s.AuditHead().Seq + 1})
	if err := s.update(func(txn *badger.Txn) error { return put(txn, []byte(kEpochs), list) }); err != nil {
		return "", fmt.Errorf("starting a new store epoch: %w", err)
	}
	return id, s.loadEpochs()
}

// CursorEpoch is the epoch saved with the sink's cursor ("" for a cursor
// saved before epochs).
func (s *Store) CursorEpoch(ctx context.Context, sink string) (string, error) {
	var epoch string
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key(pSinkCursor, sink))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) > 8 {
				epoch = string(v[8:])
			}
			return nil
		})
	})
	return epoch, err
}

// Backup writes a consistent copy of the whole store to w while it
// serves (Badger's stream backup) and returns the audit head it holds at
// least.
func (s *Store) Backup(w io.Writer) (uint64, error) {
	head := s.AuditHead().Seq
	if _, err := s.db.Backup(w, 0); err != nil {
		return 0, fmt.Errorf("backing up the store: %w", err)
	}
	return head, nil
}

// Restore loads a backup made by Backup into a new store at o.Dir (which
// must not hold one) and starts a new epoch there, so that event sinks
// stop instead of re-using the sequence numbers written after the backup.
// It returns the new epoch and the restored head.
func Restore(o Options, r io.Reader) (string, uint64, error) {
	st, err := Open(o)
	if err != nil {
		return "", 0, err
	}
	if h := st.AuditHead().Seq; h != 0 {
		st.Close()
		return "", 0, fmt.Errorf("%s already holds a store (audit head %d): restore into an empty folder", o.Dir, h)
	}
	err = st.db.Load(r, 256)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", 0, fmt.Errorf("loading the backup: %w", err)
	}
	if st, err = Open(o); err != nil {
		return "", 0, err
	}
	defer st.Close()
	id, err := st.NewEpoch()
	return id, st.AuditHead().Seq, err
}
