package postgres

import (
	"context"
	"fmt"
	"sync"
)

// Store epochs (see daemon/events/epoch.go): the epochs table lists them
// with the first seq written in each.

type epoch struct {
	id   string
	from uint64
}

type epochCache struct {
	mu   sync.RWMutex
	list []epoch // by from, ascending
}

func (c *epochCache) set(l []epoch) {
	c.mu.Lock()
	c.list = l
	c.mu.Unlock()
}

// ensureEpoch starts the first epoch of a new database and reads them.
func (s *Store) ensureEpoch(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO epochs (id, from_seq)
		SELECT $1, (SELECT seq FROM audit_head) + 1 WHERE NOT EXISTS (SELECT 1 FROM epochs)`, newEpochID())
	if err != nil {
		return fmt.Errorf("postgres store: starting the store epoch: %w", err)
	}
	return s.loadEpochs(ctx)
}

func (s *Store) loadEpochs(ctx context.Context) error {
	rows, err := s.pool.Query(ctx, "SELECT id, from_seq FROM epochs ORDER BY n")
	if err != nil {
		return fmt.Errorf("postgres store: reading the store epochs: %w", err)
	}
	defer rows.Close()
	var l []epoch
	for rows.Next() {
		var e epoch
		var from int64
		if err := rows.Scan(&e.id, &from); err != nil {
			return err
		}
		e.from = uint64(from)
		l = append(l, e)
	}
	s.epochs.set(l)
	return rows.Err()
}

// Epoch is the current store epoch.
func (s *Store) Epoch() string {
	s.epochs.mu.RLock()
	defer s.epochs.mu.RUnlock()
	if len(s.epochs.list) == 0 {
		return ""
	}
	return s.epochs.list[len(s.epochs.list)-1].id
}

// EpochOf is the epoch the event at seq was written in.
func (s *Store) EpochOf(seq uint64) string {
	s.epochs.mu.RLock()
	defer s.epochs.mu.RUnlock()
	id := ""
	for _, e := range s.epochs.list {
		if e.from <= seq || id == "" {
			id = e.id
		}
	}
	return id
}

// NewEpoch starts a new epoch from the current head: run it after the
// database was restored from a backup (keyfleetd new-epoch), so that the
// event sinks stop instead of re-using sequence numbers. It returns the
// new epoch's id.
func (s *Store) NewEpoch(ctx context.Context) (string, error) {
	id := newEpochID()
	_, err := s.pool.Exec(ctx, "INSERT INTO epochs (id, from_seq) SELECT $1, seq + 1 FROM audit_head", id)
	if err != nil {
		return "", fmt.Errorf("starting a new store epoch: %w", err)
	}
	return id, s.loadEpochs(ctx)
}
