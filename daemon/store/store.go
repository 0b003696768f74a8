// Package store implements core.Store on Badger v4, encrypted at rest.
//
// Writes are durable when Update returns: each commit reaches the disk
// before it is acknowledged, and commits waiting at the same time share
// one fsync (group commit, durable.go). Audit events are chained at commit
// time under one lock that is held until Badger has taken the commit, not
// until it is written (Store.commitChained), so the chain order is the
// write order, a transaction that fails leaves no event, and many audited
// commits are written together.
package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
)

var _ core.Store = (*Store)(nil)

// schemaVersion is written at first open; a store from a newer keyfleet is
// refused rather than misread. Version 2 added the policy facts index
// (pf/), version 3 the user indexes (ug/, ur/, us/, uq/) and the audit
// indexes by actor and action (Lc/, La/), version 4 audit index entries
// that file several events of a commit (auditindex.go; a version 3 store
// reads the same, but an older keyfleetd would miss events in them),
// version 5 search terms (uq/) without those that start another of the
// user's terms (core.User.SearchTerms), no index entries for the role
// "user" and the status "active" (userindex.go) and first-applied times
// only in the policy facts: an older store is upgraded at open
// (migrate.go).
const schemaVersion = "5"

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
	// MemTableSize is Badger's memtable size (default 32 MiB, at least
	// 1 MiB): what a flush writes at once, and half of what each
	// write-ahead log takes on disk (allocated ahead, see prealloc.go).
	MemTableSize int64
	// Reserve is the free space on the store's file system below which
	// writes are refused (default DefaultReserve: grows with the store).
	Reserve int64
	// SpaceCheckEvery is how often the free space is measured besides
	// at every sync (default 1s): how soon writes resume once space
	// returns.
	SpaceCheckEvery time.Duration
	Logger          *slog.Logger
	// AfterAudit, if set, runs after every commit that appended audit
	// events, with those events, outside the store's locks (the event
	// sinks wake on it; metrics count it).
	AfterAudit func(events []*audit.Event)
	// beforeCommit is a fault-injection point for tests: it runs after a
	// transaction's writes and audit events are staged and before commit.
	beforeCommit func() error
	// statfs measures the free space of a folder (tests replace it).
	statfs func(dir string) (uint64, error)
	// afterTaken is a test hook: it runs once Badger has taken an audited
	// commit and the chain lock is released, before the write is waited
	// for.
	afterTaken func()
}

// Store is core.Store on Badger.
type Store struct {
	opts Options
	log  *slog.Logger

	// dbMu guards db, which is replaced when a store opened read-only for
	// lack of space reopens for writing (readonly.go): every use of db
	// holds it for reading.
	dbMu     sync.RWMutex
	db       *badger.DB
	readOnly atomic.Bool // opened read-only for lack of space

	space    *spaceGuard // nil for a store in memory
	prepMu   sync.Mutex  // serialises checkSpace
	prep     *walPrep    // guarded by prepMu
	reserve  atomic.Uint64
	wals     *walSync
	stopWait chan struct{} // closed by Close: stops the space watch
	watching sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	retryMu sync.Mutex // one writer at a time retries after a collision (Update)
	chainMu sync.Mutex // orders commits that append audit events (commitChained)
	head    audit.Head // guarded by chainMu: the head after the last commit Badger took
	sync    *syncer    // group commit: acknowledges writes once on disk

	failMu sync.RWMutex
	failed error // set when a write failed; the store then refuses writes

	beforeCommit func() error
	afterAudit   func([]*audit.Event)
	epochs       epochList   // epoch.go
	advice       *readAdvice // the tables' read-ahead, for lists that read at random
}

// Open opens (creating if needed) the store and reads the audit head.
//
// It first checks every write-ahead log and table (check.go) and returns
// a *DamageError for a damaged store instead of letting Badger drop data
// or crash. With less free space than the reserve it opens the store
// read-only: reads work, writes fail with *StorageFullError, and the
// store reopens for writing by itself once space returns.
func Open(o Options) (*Store, error) {
	if len(o.EncryptionKey) != 32 {
		return nil, fmt.Errorf("store: the encryption key is %d bytes; it must be 32 (AES-256)", len(o.EncryptionKey))
	}
	if mt := memTableSize(o); mt < minMemTableSize {
		return nil, fmt.Errorf("store: the memtable size %d is below 1 MiB", mt)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.statfs == nil {
		o.statfs = freeSpace
	}
	if o.SpaceCheckEvery <= 0 {
		o.SpaceCheckEvery = time.Second
	}
	db, readOnly, err := openChecked(o)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, opts: o, log: o.Logger, beforeCommit: o.beforeCommit, afterAudit: o.AfterAudit, stopWait: make(chan struct{})}
	s.readOnly.Store(readOnly)
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	dir := o.Dir
	if o.InMemory {
		dir = ""
	}
	s.wals = &walSync{dir: dir, dbSync: s.syncDB}
	s.advice = newReadAdvice(dir)
	if !readOnly {
		if err := s.wals.sync(); err != nil { // what init and an upgrade wrote
			db.Close()
			return nil, fmt.Errorf("syncing store in %s: %w", o.Dir, err)
		}
	}
	s.sync = newSyncer(s.flush, s.head)
	if !o.InMemory {
		s.watchSpace()
	}
	s.drainBuilders()
	if err := s.loadEpochs(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// syncDB syncs the current Badger.
func (s *Store) syncDB() error {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	return s.db.Sync()
}

// flush makes the commits so far durable (the syncer runs it) and
// measures the free space, so that writes stop within one group of
// commits of the reserve.
func (s *Store) flush() error {
	err := s.wals.sync()
	s.checkSpace()
	return err
}

// blockSize is the size of a table block, the unit Badger decrypts,
// caches and looks up: 16 KiB rather than Badger's 4 KiB. A block read
// costs a new cipher, a buffer and a block cache look-up whatever its
// size, and a full audit verify reads every block of the chain (550 MiB
// at a million events, far more than the block cache): at 16 KiB it took
// a third less CPU per event (docs/benchmarks.md, issue 22). A point read
// that misses the cache decrypts 16 KiB instead of 4 (a few µs with
// AES-NI); one that hits it pays nothing more. Tables written before keep
// their blocks until a compaction rewrites them.
const blockSize = 16 << 10

// tableCompression is how Badger compresses a table's blocks before it
// encrypts them. Badger writes every table (a memtable's flush, a
// compaction's output) through a map of the file and syncs it, and the
// kernel then write-protects each page it writes back, one TLB flush of
// the other CPUs per page: on a VM a third of a directory sync's CPU
// went to msync and page faults. Snappy makes the JSON records and audit
// events of a block about a third of their size, so a table has fewer
// pages to write, fault in and flush; compressing and decompressing cost
// less than that (docs/benchmarks.md, "Directory sync", 2026-12-07). Each
// table's MANIFEST entry records how it was written, so the tables of a
// store written before (not compressed) are read as they are until a
// compaction rewrites them, and an older keyfleetd reads the new ones.
// A variable only for the test of a store written without it.
var tableCompression = options.Snappy

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
		WithSyncWrites(false). // Update syncs, one fsync per group of commits (durable.go)
		WithCompression(tableCompression).
		WithNumVersionsToKeep(1).
		WithBlockSize(blockSize).
		WithMemTableSize(memTableSize(o)).
		WithNumMemtables(numMemtables).
		WithNumLevelZeroTables(numLevelZeroTables).
		WithValueThreshold(int64(valueThreshold(o))). // smaller values stay in the tree; larger ones are refused (tx.go)
		WithLogger(badgerLogger{o.Logger}).
		WithMetricsEnabled(false)
	if o.InMemory {
		bo = bo.WithDir("").WithValueDir("")
	}
	return bo
}

func (s *Store) init() error {
	if s.readOnly.Load() {
		return s.initReadOnly()
	}
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

// initReadOnly reads the head of a store opened read-only; a store that
// needs an upgrade (which writes) cannot be served so.
func (s *Store) initReadOnly() error {
	v, err := s.schema()
	if err != nil {
		return err
	}
	if v != schemaVersion {
		return fmt.Errorf("store schema is version %q and must be upgraded, which writes, but the disk is below the store's reserve: free space on %s and start keyfleetd again", v, s.opts.Dir)
	}
	return s.db.View(func(txn *badger.Txn) error {
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
// fail with core.ErrUnavailable; a sync under way finishes first. Calls
// after the first return its result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Store) close() error {
	s.fail(core.ErrUnavailable)
	close(s.stopWait)
	s.watching.Wait()
	if s.sync != nil {
		s.sync.close()
	}
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	err := s.db.Close()
	if s.space != nil {
		// Leave the folder as Badger alone would: its tools refuse an
		// empty log (a crash can still leave one; Open removes it).
		if rerr := removeAheadLogs(s.opts.Dir); err == nil {
			err = rerr
		}
	}
	return err
}

// Ready reports nil while the store takes writes: a *StorageFullError
// while space is short, an error wrapping core.ErrUnavailable once a write
// to disk failed or the store closed.
func (s *Store) Ready() error {
	s.failMu.RLock()
	err := s.failed
	s.failMu.RUnlock()
	if err != nil {
		return err
	}
	return s.space.refusal()
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
// collides with a concurrent transaction. Writers that collided retry one
// at a time (retryMu), so that writers of one record take turns rather
// than collide again, each after a random moment, longer after each
// collision (up to about a millisecond).
func (s *Store) Update(ctx context.Context, fn func(core.Tx) error) error {
	for attempt := range maxAttempts {
		if attempt == 1 {
			s.retryMu.Lock()
			defer s.retryMu.Unlock()
		}
		if attempt > 0 {
			backOff(attempt)
		}
		if err := s.Ready(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		var n uint64
		var events []*audit.Event
		err := func() error {
			s.dbMu.RLock()
			defer s.dbMu.RUnlock()
			t := newTx(s.db.NewTransaction(true), valueThreshold(s.opts))
			defer t.txn.Discard()
			s.sync.begin()
			defer s.sync.end() // even if fn panics: a sync must not wait for it
			err := fn(t)
			if err == nil {
				n, err = s.commit(t)
			}
			events = t.events
			return err
		}()
		if err == nil {
			err = s.durable(n)
		}
		if err == nil && len(events) > 0 && s.afterAudit != nil {
			s.afterAudit(events)
		}
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("%w: gave up after %d attempts; try again", core.ErrConflict, maxAttempts)
}

// commit commits t and returns the commit's number for durable: the
// commit is in Badger's log, not yet necessarily on disk.
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
	head, written, err := s.commitChained(t)
	if err != nil {
		return 0, err
	}
	if s.opts.afterTaken != nil {
		s.opts.afterTaken()
	}
	if err := s.commitErr(written()); err != nil {
		return 0, err
	}
	return s.sync.committedOne(&head), nil
}

// commitChained chains t's audit events after the current head and hands
// the transaction to Badger, under chainMu; the caller waits for the
// write (written) outside it, so that writers append to the chain one at
// a time but are written together. Badger checks a commit for conflicts
// and takes its place in its write order at once, and writes commits in
// that order (Txn.CommitWith: one write queue, one writer), so the chain
// order is the write order and a crash can only lose a suffix of it. A
// commit that conflicts fails before it takes a place: the head stays
// where it was and no later commit is chained after it.
//
// Whether Badger took the commit is seen on the entry of the chain head:
// Badger versions the key of every entry of a commit it takes (its
// commit timestamp is appended to the key) before it queues the write. A
// commit whose head entry was not versioned is waited for under the lock,
// which keeps the chain right whatever the reason.
func (s *Store) commitChained(t *tx) (audit.Head, func() error, error) {
	s.chainMu.Lock()
	defer s.chainMu.Unlock()
	chain := audit.Chain{Head: s.head}
	var ix auditIndexBatch
	for _, ev := range t.events {
		rec, err := chain.Next(ev)
		if err != nil {
			return audit.Head{}, nil, err
		}
		if err := t.w.Set(auditKey(rec.Seq), rec.Marshal()); err != nil {
			return audit.Head{}, nil, err
		}
		ix.add(ev, rec.Seq)
	}
	if err := ix.write(t.w); err != nil {
		return audit.Head{}, nil, err
	}
	headEntry := badger.NewEntry([]byte(kAuditHead), encodeHead(chain.Head))
	if err := t.w.SetEntry(headEntry); err != nil {
		return audit.Head{}, nil, err
	}
	done := make(chan error, 1)
	t.txn.CommitWith(func(err error) { done <- err })
	if len(headEntry.Key) == len(kAuditHead) { // not taken: a conflict, or an error before the queue
		if err := s.commitErr(<-done); err != nil {
			return audit.Head{}, nil, err
		}
		s.head = chain.Head
		return chain.Head, func() error { return nil }, nil
	}
	s.head = chain.Head // a write that fails from here on stops the store (commitErr)
	return chain.Head, func() error { return <-done }, nil
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
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
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

// TokenWithUser is core.TokenReader: token id and its user, read in one
// snapshot. A missing token is a *core.NotFoundError; a missing user a
// zero User.
func (s *Store) TokenWithUser(ctx context.Context, id string) (t core.Token, u core.User, err error) {
	err = s.View(ctx, func(tx core.ReadTx) error {
		if t, err = tx.Token(id); err != nil {
			return err
		}
		if u, err = tx.User(t.UserID); errors.Is(err, core.ErrNotFound) {
			u, err = core.User{}, nil
		}
		return err
	})
	return t, u, err
}

// View runs fn in a read-only snapshot.
func (s *Store) View(ctx context.Context, fn func(core.ReadTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.view(func(txn *badger.Txn) error {
		r := &readTx{txn: txn, advice: s.advice}
		defer r.endRandomReads()
		return fn(r)
	})
}

// AuditScan reads audit records with seq > after in key order, up to the
// last one on disk.
func (s *Store) AuditScan(ctx context.Context, after uint64, fn func(uint64, audit.Record) (bool, error)) error {
	return s.auditScan(ctx, after, true, fn)
}

// AuditScanLent is AuditScan for a reader that keeps nothing: a record's
// Body is lent from Badger's block, valid only until fn returns. A full
// audit verify reads the chain this way, without a copy of every event
// for the collector to sweep.
func (s *Store) AuditScanLent(ctx context.Context, after uint64, fn func(uint64, audit.Record) (bool, error)) error {
	return s.auditScan(ctx, after, false, fn)
}

// auditScan is AuditScan, each record copied out of Badger's block when
// own is set.
func (s *Store) auditScan(ctx context.Context, after uint64, own bool, fn func(uint64, audit.Record) (bool, error)) error {
	last := s.sync.durableHead().Seq
	if after >= last {
		return nil // nothing is after it (and after+1 could wrap to 0)
	}
	return s.view(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = []byte(pAudit)
		opts.PrefetchValues = false // values are in the tree: read in place, not copied ahead
		it := txn.NewIterator(opts)
		defer it.Close()
		n := 0
		for it.Seek(auditKey(after + 1)); it.Valid(); it.Next() {
			if n++; n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
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
				// The value is Badger's block, reused once the iterator
				// moves on: the record gets its own copy, which callers
				// may keep (unless lent).
				if own {
					v = bytes.Clone(v)
				}
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

// Size reports the store's on-disk size in bytes: its tables. (Badger's
// own DB.Size reads metrics keyfleet turns off, and counts the value log's
// sparse file at its full length; the logs are allocated ahead.)
func (s *Store) Size() int64 {
	if s.opts.InMemory {
		return 0
	}
	return dirSize(s.opts.Dir)
}

// view runs fn in a read-only Badger transaction.
func (s *Store) view(fn func(*badger.Txn) error) error {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	return s.db.View(fn)
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

// indexEvent files the event with sequence number seq in the audit
// indexes (auditindex.go) on its own.
func indexEvent(w setter, ev *audit.Event, seq uint64) error {
	var ix auditIndexBatch
	ix.add(ev, seq)
	return ix.write(w)
}

// backOff waits a random moment before retry attempt n (1, 2, …): up to
// 20 µs times 2ⁿ, at most about 1.3 ms.
func backOff(n int) {
	time.Sleep(time.Duration(rand.Int64N(int64(20*time.Microsecond) << min(n, 6))))
}
