// Package store implements core.Store on Badger v4, encrypted at rest.
//
// Writes are durable when Update returns: each commit reaches the disk
// before it is acknowledged, and commits waiting at the same time share
// one fsync (group commit, durable.go). Audit events are chained at commit
// time under one lock (see Store.commit), so the chain order is the commit
// order and a transaction that fails leaves no event.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
)

var _ core.Store = (*Store)(nil)

// schemaVersion is written at first open; a store from a newer keyfleet is
// refused rather than misread. Version 2 added the policy facts index
// (pf/): a store of version 1 is upgraded at open (migrate.go).
const schemaVersion = "2"

// maxAttempts bounds retries of a transaction that collides with others.
const maxAttempts = 16

// Options configures Open. The zero value of each optional field is a
// sensible default.
type Options struct {
	// Dir is the Badger folder. Empty with InMemory set keeps everything
	// in memory (tests).
	Dir      string
	InMemory bool
	// EncryptionKey is the 32-byte key Badger encrypts data at rest with.
	// Required.
	EncryptionKey []byte
	// KeyRotation is how often Badger makes a new data key under the
	// encryption key (default 10 days).
	KeyRotation time.Duration
	// BlockCacheMB and IndexCacheMB size Badger's caches (defaults 64 and
	// 32; an encrypted store needs the block cache to avoid decrypting the
	// same blocks again).
	BlockCacheMB int64
	IndexCacheMB int64
	Logger       *slog.Logger
	// AfterAudit, if set, runs after every commit that appended audit
	// events, with those events, outside the store's locks (the event
	// sinks wake on it; metrics count it).
	AfterAudit func(events []*audit.Event)
	// beforeCommit is a fault-injection point for tests: it runs after a
	// transaction's writes and audit events are staged and before commit.
	beforeCommit func() error
}

// Store is core.Store on Badger.
type Store struct {
	db  *badger.DB
	log *slog.Logger

	chainMu sync.Mutex // orders commits that append audit events
	head    audit.Head // guarded by chainMu
	sync    *syncer    // group commit: acknowledges writes once on disk

	failMu sync.RWMutex
	failed error // set when a write failed; the store then refuses writes

	beforeCommit func() error
	afterAudit   func([]*audit.Event)
}

// Open opens (creating if needed) the store and reads the audit head.
func Open(o Options) (*Store, error) {
	if len(o.EncryptionKey) != 32 {
		return nil, fmt.Errorf("store: the encryption key is %d bytes; it must be 32 (AES-256)", len(o.EncryptionKey))
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	db, err := badger.Open(badgerOptions(o))
	if err != nil {
		return nil, fmt.Errorf("opening store in %s: %w", o.Dir, err)
	}
	s := &Store{db: db, log: o.Logger, beforeCommit: o.beforeCommit, afterAudit: o.AfterAudit}
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	dir := o.Dir
	if o.InMemory {
		dir = ""
	}
	wals := &walSync{dir: dir, dbSync: db.Sync}
	if err := wals.sync(); err != nil { // what init and an upgrade wrote
		db.Close()
		return nil, fmt.Errorf("syncing store in %s: %w", o.Dir, err)
	}
	s.sync = newSyncer(wals.sync, s.head)
	return s, nil
}

func badgerOptions(o Options) badger.Options {
	rot, block, index := o.KeyRotation, o.BlockCacheMB, o.IndexCacheMB
	if rot == 0 {
		rot = 10 * 24 * time.Hour
	}
	if block == 0 {
		block = 64
	}
	if index == 0 {
		index = 32
	}
	bo := badger.DefaultOptions(o.Dir).
		WithInMemory(o.InMemory).
		WithEncryptionKey(o.EncryptionKey).
		WithEncryptionKeyRotationDuration(rot).
		WithBlockCacheSize(block << 20).
		WithIndexCacheSize(index << 20).
		WithSyncWrites(false).         // Update syncs, one fsync per group of commits (durable.go)
		WithCompression(options.None). // compressing before encrypting adds nothing here and costs CPU
		WithNumVersionsToKeep(1).
		WithLogger(badgerLogger{o.Logger}).
		WithMetricsEnabled(false)
	if o.InMemory {
		bo = bo.WithDir("").WithValueDir("")
	}
	return bo
}

func (s *Store) init() error {
	if err := s.upgrade(); err != nil {
		return err
	}
	return s.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(kSchema))
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
			return txn.Set([]byte(kSchema), []byte(schemaVersion))
		case err != nil:
			return fmt.Errorf("reading store schema: %w", err)
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		if string(v) != schemaVersion {
			return fmt.Errorf("store schema is version %s; this keyfleetd reads version %s: upgrade keyfleetd", v, schemaVersion)
		}
		h, err := readHead(txn)
		s.head = h
		return err
	})
}

func readHead(txn *badger.Txn) (audit.Head, error) {
	item, err := txn.Get([]byte(kAuditHead))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return audit.Head{}, nil
	}
	if err != nil {
		return audit.Head{}, fmt.Errorf("reading audit head: %w", err)
	}
	var h audit.Head
	err = item.Value(func(v []byte) error {
		if len(v) != 8+audit.HashSize {
			return fmt.Errorf("audit head is %d bytes, want %d: the store is damaged", len(v), 8+audit.HashSize)
		}
		h.Seq = uint64FromBytes(v[:8])
		copy(h.Hash[:], v[8:])
		return nil
	})
	return h, err
}

func encodeHead(h audit.Head) []byte { return append(seqBytes(h.Seq), h.Hash[:]...) }

// Close flushes and closes the store. Writes still waiting for a sync
// fail with core.ErrUnavailable; a sync under way finishes first.
func (s *Store) Close() error {
	s.fail(core.ErrUnavailable)
	if s.sync != nil {
		s.sync.close()
	}
	return s.db.Close()
}

// Ready reports nil while the store takes writes.
func (s *Store) Ready() error {
	s.failMu.RLock()
	defer s.failMu.RUnlock()
	return s.failed
}

func (s *Store) fail(err error) {
	s.failMu.Lock()
	if s.failed == nil {
		s.failed = err
	}
	s.failMu.Unlock()
}

// SyncStats reports how many commits were acknowledged and how many
// syncs to disk that took (group commit shares one sync among the writers
// waiting at the same time).
func (s *Store) SyncStats() (commits, syncs uint64) { return s.sync.stats() }

// AuditHead is the last link of the chain that is on disk.
func (s *Store) AuditHead() audit.Head { return s.sync.durableHead() }

// Update runs fn in a transaction and commits it durably, retrying when it
// collides with a concurrent transaction.
func (s *Store) Update(ctx context.Context, fn func(core.Tx) error) error {
	for range maxAttempts {
		if err := s.Ready(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		t := newTx(s.db.NewTransaction(true))
		var n uint64
		err := func() error {
			s.sync.begin()
			defer s.sync.end() // even if fn panics: a sync must not wait for it
			err := fn(t)
			if err == nil {
				n, err = s.commit(t)
			}
			return err
		}()
		t.txn.Discard()
		if err == nil {
			err = s.durable(n)
		}
		if err == nil && len(t.events) > 0 && s.afterAudit != nil {
			s.afterAudit(t.events)
		}
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("%w: gave up after %d attempts; try again", core.ErrConflict, maxAttempts)
}

// commit chains t's audit events after the current head and commits. The
// lock is held across the commit so that a transaction that fails (a
// conflict, a full disk) never leaves a gap in the chain, and so that the
// chain order is the commit order.
//
// It returns the commit's number for durable: the commit is in Badger's
// log, not yet necessarily on disk.
func (s *Store) commit(t *tx) (uint64, error) {
	if s.beforeCommit != nil {
		if err := s.beforeCommit(); err != nil {
			return 0, err
		}
	}
	if len(t.events) == 0 {
		if err := s.commitErr(t.txn.Commit()); err != nil || !t.w.wrote {
			return 0, err // a transaction that wrote nothing waits for no sync (commit 0)
		}
		return s.sync.committedOne(nil), nil
	}
	s.chainMu.Lock()
	defer s.chainMu.Unlock()
	chain := audit.Chain{Head: s.head}
	for _, ev := range t.events {
		rec, err := chain.Next(ev)
		if err != nil {
			return 0, err
		}
		if err := t.w.Set(auditKey(rec.Seq), rec.Marshal()); err != nil {
			return 0, err
		}
		if ev.Target.ID != "" {
			if err := t.w.Set(auditTargetKey(ev.Target.ID, rec.Seq), nil); err != nil {
				return 0, err
			}
		}
	}
	if err := t.w.Set([]byte(kAuditHead), encodeHead(chain.Head)); err != nil {
		return 0, err
	}
	if err := s.commitErr(t.txn.Commit()); err != nil {
		return 0, err
	}
	s.head = chain.Head
	head := chain.Head
	return s.sync.committedOne(&head), nil
}

// commitErr stops the store taking writes after a commit failed for any
// reason but a conflict: the disk is then in an unknown state, and an
// operator restarts the daemon.
func (s *Store) commitErr(err error) error {
	if err != nil && !errors.Is(err, badger.ErrConflict) {
		s.log.Error("store write failed; refusing further writes until restart", "err", err)
		s.fail(fmt.Errorf("%w: a write to disk failed (%v); restart keyfleetd", core.ErrUnavailable, err))
	}
	return err
}

// durable waits until commit n is on disk. A failed sync leaves the disk
// in an unknown state, and the store refuses writes from then on.
func (s *Store) durable(n uint64) error {
	err := s.sync.wait(n)
	if errors.Is(err, errClosing) {
		return err // not a disk failure: the store is closing
	}
	if err != nil {
		s.log.Error("syncing the store to disk failed; refusing further writes until restart", "err", err)
		s.fail(fmt.Errorf("%w: syncing to disk failed (%v); restart keyfleetd", core.ErrUnavailable, err))
		return s.Ready()
	}
	return nil
}

// update runs fn in a Badger transaction outside the audit chain (dead
// letters) and returns once it is durable.
func (s *Store) update(fn func(*badger.Txn) error) error {
	if err := s.write(fn); err != nil {
		return err
	}
	return s.durable(s.sync.committed.Load())
}

// write is update without waiting for the sync: the commit is in Badger's
// log, and on disk after the next sync.
func (s *Store) write(fn func(*badger.Txn) error) error {
	if err := s.Ready(); err != nil {
		return err
	}
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	if err := fn(txn); err != nil {
		return err
	}
	if err := s.commitErr(txn.Commit()); err != nil {
		return err
	}
	s.sync.committedOne(nil)
	return nil
}

// View runs fn in a read-only snapshot.
func (s *Store) View(ctx context.Context, fn func(core.ReadTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(func(txn *badger.Txn) error { return fn(&readTx{txn: txn}) })
}

// AuditScan reads audit records with seq > after in key order, up to the
// last one on disk.
func (s *Store) AuditScan(ctx context.Context, after uint64, fn func(uint64, audit.Record) (bool, error)) error {
	last := s.sync.durableHead().Seq
	if after >= last {
		return nil // nothing is after it (and after+1 could wrap to 0)
	}
	return s.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = []byte(pAudit)
		opts.PrefetchSize = 256
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Seek(auditKey(after + 1)); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			item := it.Item()
			k := item.Key()
			if len(k) != len(pAudit)+8 {
				continue
			}
			seq := uint64FromBytes(k[len(pAudit):])
			if seq > last {
				return nil
			}
			var cont bool
			err := item.Value(func(v []byte) error {
				r, err := audit.Unmarshal(v)
				if err != nil {
					return &audit.BreakError{Seq: seq, Reason: err.Error()}
				}
				cont, err = fn(seq, r)
				return err
			})
			if err != nil || !cont {
				return err
			}
		}
		return nil
	})
}

// Size reports the store's on-disk size in bytes (LSM tree and value log).
func (s *Store) Size() int64 {
	lsm, vlog := s.db.Size()
	return lsm + vlog
}

func uint64FromBytes(b []byte) uint64 {
	var n uint64
	for _, c := range b[:8] {
		n = n<<8 | uint64(c)
	}
	return n
}

// badgerLogger sends Badger's messages to slog.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	b.l.Error(fmt.Sprintf(f, a...), "component", "badger")
}
func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Warn(fmt.Sprintf(f, a...), "component", "badger")
}
func (b badgerLogger) Infof(f string, a ...any) {
	b.l.Debug(fmt.Sprintf(f, a...), "component", "badger")
}
func (b badgerLogger) Debugf(f string, a ...any) {}
