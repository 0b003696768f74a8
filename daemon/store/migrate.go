package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/keyfleet/keyfleet/daemon/core"
)

// upgrade brings a store of schema 1 to schema 2 by building the policy
// facts index from the records it copies. It runs at open, before anything
// else reads or writes: it drops any pf/ record (a build that was cut
// short), writes the index in batches, and only then records schema 2, so
// an interrupted build starts again at the next open. It reads every user,
// factor, first-applied record and exemption once.
func (s *Store) upgrade() error {
	v, err := s.schema()
	if err != nil || v != "1" {
		return err
	}
	start := time.Now()
	s.log.Info("upgrading the store to schema 2: building the policy facts index")
	if err := s.db.DropPrefix([]byte(pPolicyFacts)); err != nil {
		return fmt.Errorf("upgrading store: clearing pf/: %w", err)
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	if err := s.db.View(func(txn *badger.Txn) error { return indexFacts(txn, wb) }); err != nil {
		return fmt.Errorf("upgrading store: building the policy facts index: %w", err)
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("upgrading store: writing the policy facts index: %w", err)
	}
	err = s.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(kSchema), []byte(schemaVersion)) })
	if err != nil {
		return fmt.Errorf("upgrading store: %w", err)
	}
	s.log.Info("store upgraded to schema 2", "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// schema reads the store's schema version; "" for a new store.
func (s *Store) schema() (string, error) {
	var v string
	err := s.view(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(kSchema))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading store schema: %w", err)
		}
		b, err := item.ValueCopy(nil)
		v = string(b)
		return err
	})
	return v, err
}

// indexFacts writes the pf/ record of every user, factor, first-applied
// record and exemption in txn.
func indexFacts(txn *badger.Txn, wb setter) error {
	steps := []struct {
		prefix string
		index  func(v []byte) error
	}{
		{pUser, decodeThen(func(u core.User) error {
			return wb.Set(userFactsKey(u.ID), encodeUserFacts(core.UserFactsOf(u)))
		})},
		{pFactor, decodeThen(func(f core.Factor) error {
			return wb.Set(factsSubKey(f.UserID, tagFactor, f.ID), encodeFactorFacts(core.FactsOf(f)))
		})},
		{pExemption, decodeThen(func(x core.Exemption) error {
			return wb.Set(factsSubKey(x.UserID, tagExemption, x.ID), encodeExemption(x.Reason, x.Until))
		})},
	}
	for _, st := range steps {
		err := scanPrefix(txn, []byte(st.prefix), true, func(item *badger.Item) error {
			if err := item.Value(st.index); err != nil {
				return fmt.Errorf("%s: %w", item.Key(), err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return scanPrefix(txn, []byte(pFirstApplied), true, func(item *badger.Item) error {
		userID := string(item.Key()[len(pFirstApplied):])
		return item.Value(decodeThen(func(m map[string]time.Time) error {
			return wb.Set(factsSubKey(userID, tagFirstApplied, ""), encodeFirstApplied(m))
		}))
	})
}

// decodeThen decodes a JSON record and hands it to fn.
func decodeThen[T any](fn func(T) error) func([]byte) error {
	return func(b []byte) error {
		var v T
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		return fn(v)
	}
}
