package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// upgrade brings a store of an older schema to this one, building the
// indexes it lacks from the records they copy: the policy facts index
// (pf/, schema 2) and the user and audit indexes (ug/, ur/, us/, uq/,
// La/, Lc/, schema 3); schema 4 reads the audit index entries of schema
// 3 as they are; schema 5 files users under fewer search terms and not
// under the role and status nearly all have, so the user indexes are
// built again from the users, and keeps a user's first-applied times only
// in the policy facts (pf/<user id>\x00a), so fa/ is copied there and
// dropped. It runs at open, before anything else reads or writes: it
// drops what a build that was cut short may have left, writes the indexes
// in batches, and only then records the schema, so an interrupted build
// starts again at the next open; fa/ is dropped only after that (what an
// upgrade cut short then leaves of it is dropped at the next open). It
// reads every user, factor, first-applied record, exemption and audit
// event once.
func (s *Store) upgrade() error {
	v, err := s.schema()
	if err != nil || v == "" {
		return err
	}
	if v == schemaVersion {
		return s.dropFirstAppliedRecords()
	}
	start := time.Now()
	s.log.Info("upgrading the store's schema: building indexes", "from", v, "to", schemaVersion)
	if v == "1" {
		if err := s.build("policy facts", []string{pPolicyFacts}, indexFacts); err != nil {
			return err
		}
	}
	if v == "1" || v == "2" {
		if err := s.build("users and audit events", []string{pUserGroup, pUserRole, pUserStatus, pUserTerm, pAuditAction, pAuditActor}, indexUsersAndEvents); err != nil {
			return err
		}
	}
	if v == "3" || v == "4" {
		if err := s.build("users", []string{pUserGroup, pUserRole, pUserStatus, pUserTerm}, indexUsers); err != nil {
			return err
		}
	}
	if v != "1" { // schema 1's policy facts, built above, hold them already
		if err := s.build("first-applied times", nil, copyFirstApplied); err != nil {
			return err
		}
	}
	err = s.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(kSchema), []byte(schemaVersion)) })
	if err != nil {
		return fmt.Errorf("upgrading store: %w", err)
	}
	if err := s.dropFirstAppliedRecords(); err != nil {
		return err
	}
	s.log.Info("store upgraded", "schema", schemaVersion, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// dropFirstAppliedRecords drops the first-applied records of schema 4
// and older (fa/), once their copies in the policy facts are the records.
func (s *Store) dropFirstAppliedRecords() error {
	var found bool
	err := s.db.View(func(txn *badger.Txn) error {
		return scanPrefix(txn, []byte(pFirstApplied), false, func(*badger.Item) error {
			found = true
			return errStopScan
		})
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return fmt.Errorf("upgrading store: reading %s: %w", pFirstApplied, err)
	}
	if !found {
		return nil
	}
	if err := s.db.DropPrefix([]byte(pFirstApplied)); err != nil {
		return fmt.Errorf("upgrading store: clearing %s: %w", pFirstApplied, err)
	}
	return nil
}

// errStopScan ends a scan early.
var errStopScan = errors.New("store: scan stopped")

// copyFirstApplied writes every first-applied record of schema 4 and
// older (fa/) into the policy facts, where schema 5 keeps them.
func copyFirstApplied(txn *badger.Txn, wb setter) error {
	return scanPrefix(txn, []byte(pFirstApplied), true, func(item *badger.Item) error {
		userID := string(item.Key()[len(pFirstApplied):])
		return item.Value(decodeThen(func(m map[string]time.Time) error {
			return wb.Set(factsSubKey(userID, tagFirstApplied, ""), encodeFirstApplied(m))
		}))
	})
}

// build drops the prefixes and writes the index that index makes.
func (s *Store) build(what string, prefixes []string, index func(*badger.Txn, setter) error) error {
	for _, p := range prefixes {
		if err := s.db.DropPrefix([]byte(p)); err != nil {
			return fmt.Errorf("upgrading store: clearing %s: %w", p, err)
		}
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	if err := s.db.View(func(txn *badger.Txn) error { return index(txn, wb) }); err != nil {
		return fmt.Errorf("upgrading store: building the index of %s: %w", what, err)
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("upgrading store: writing the index of %s: %w", what, err)
	}
	return nil
}

// indexUsersAndEvents files every user in the user indexes and every
// audit event in the indexes by actor and action (the index by target is
// as old as the log).
func indexUsersAndEvents(txn *badger.Txn, wb setter) error {
	if err := indexUsers(txn, wb); err != nil {
		return err
	}
	return scanPrefix(txn, []byte(pAudit), false, func(item *badger.Item) error {
		k := item.Key()
		if len(k) != len(pAudit)+8 {
			return nil
		}
		seq := uint64FromBytes(k[len(pAudit):])
		return item.Value(func(v []byte) error {
			r, err := audit.Unmarshal(v)
			if err != nil {
				return fmt.Errorf("audit record %d: %w", seq, err)
			}
			var ev struct {
				Actor  struct{ ID string } `json:"actor"`
				Action string              `json:"action"`
			}
			if err := json.Unmarshal(r.Body, &ev); err != nil {
				return fmt.Errorf("audit record %d: %w", seq, err)
			}
			return indexEvent(wb, &audit.Event{Actor: api.Actor{ID: ev.Actor.ID}, Action: ev.Action}, seq)
		})
	})
}

// indexUsers files every user in the user indexes.
func indexUsers(txn *badger.Txn, wb setter) error {
	w := batchSetDeleter{wb}
	return scanPrefix(txn, []byte(pUser), false, func(item *badger.Item) error {
		return item.Value(decodeThen(func(u core.User) error { return indexUser(w, nil, u) }))
	})
}

// batchSetDeleter is a write batch as index maintenance uses it; an index
// being built is only ever added to.
type batchSetDeleter struct{ setter }

func (batchSetDeleter) Delete([]byte) error {
	return errors.New("store: nothing is deleted while an index is built")
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
	return copyFirstApplied(txn, wb)
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
