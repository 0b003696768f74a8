package store

import (
	"errors"

	"github.com/dgraph-io/badger/v4"
)

// SealCheck reads the sealing key's check value; ok is false when the
// store has none yet (a store made before check values).
func (s *Store) SealCheck() (v []byte, ok bool, err error) {
	err = s.view(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(kSealCheck))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		v, err = item.ValueCopy(nil)
		ok = err == nil
		return err
	})
	return v, ok, err
}

// PutSealCheck durably records the sealing key's check value.
func (s *Store) PutSealCheck(v []byte) error {
	return s.update(func(txn *badger.Txn) error { return txn.Set([]byte(kSealCheck), v) })
}
