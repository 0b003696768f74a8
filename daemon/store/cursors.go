package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/keyfleet/keyfleet/daemon/events"
)

var _ events.CursorStore = (*Store)(nil)

// Sink cursors and dead letters are delivery bookkeeping, not changes to
// anyone's access: they are written durably but have no audit event (a
// dead letter is audited by the daemon when the sink reports it).

// Cursor returns the sink's last delivered sequence number, or
// events.ErrNoCursor.
func (s *Store) Cursor(ctx context.Context, sink string) (uint64, error) {
	var seq uint64
	err := s.view(func(txn *badger.Txn) error {
		item, err := txn.Get(key(pSinkCursor, sink))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return events.ErrNoCursor
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) < 8 { // seq, then the epoch it was saved in (epoch.go)
				return fmt.Errorf("cursor of sink %s is damaged", sink)
			}
			seq = binary.BigEndian.Uint64(v)
			return nil
		})
	})
	return seq, err
}

// SetCursor records the sink's progress. It does not wait for a sync of
// its own: the next one (every write has one) makes it durable, and a
// cursor lost to a crash before that only makes the sink deliver a few
// events again, which at-least-once delivery allows (docs/events.md).
func (s *Store) SetCursor(ctx context.Context, sink string, seq uint64) error {
	v := append(seqBytes(seq), s.Epoch()...)
	return s.write(func(txn *badger.Txn) error { return txn.Set(key(pSinkCursor, sink), v) })
}

// AddDeadLetter durably records a batch a sink gave up on.
func (s *Store) AddDeadLetter(ctx context.Context, d events.DeadLetter) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	k := append(key(pDeadLetter, d.Sink, "/"), seqBytes(uint64(d.At.UnixNano()))...)
	return s.update(func(txn *badger.Txn) error { return txn.Set(k, b) })
}

// DeadLetters lists a sink's dead letters, oldest first.
func (s *Store) DeadLetters(ctx context.Context, sink string) ([]events.DeadLetter, error) {
	var out []events.DeadLetter
	prefix := key(pDeadLetter, sink, "/")
	err := s.view(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefix
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var d events.DeadLetter
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &d) }); err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}
