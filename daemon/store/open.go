package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// Sizes Badger is run with. The memtable size bounds what one flush
// writes (a table of about that size) and is what the write-ahead log
// holds before it rotates; each log is mapped to twice it. 32 MiB rather
// than Badger's 64 or keyfleet's former 16: with 16, a sustained write
// (a directory sync of 100,000 users) spent a fifth more CPU, most of it
// in compactions that merge every five L0 tables into the level below
// and so rewrite that level twice as often, and in the msync of the
// tables they write; 64 holds more of the Go heap than keyfleetd's
// default memory limit leaves (docs/benchmarks.md, "Directory sync").
// A read looks in as many L0 tables with either (at most four).
const (
	defaultMemTableSize = 32 << 20
	minMemTableSize     = 1 << 20
)

// valueThreshold is the value size from which Badger would use its value
// log: 1 MiB, or less with a small memtable (Badger wants it within one
// write batch, 15% of the memtable).
func valueThreshold(o Options) int {
	return int(min(1<<20, 15*memTableSize(o)/100))
}

// memTableSize is o's memtable size with its default.
func memTableSize(o Options) int64 {
	if o.MemTableSize == 0 {
		return defaultMemTableSize
	}
	return o.MemTableSize
}

// DefaultReserve is the free space the store keeps by default for a
// store of the given size with the given memtable size: room for the
// flush of every memtable Badger may hold (the active one and those
// waiting for a flush, numMemtables of them) and for an L0 compaction of
// as many tables as start one, plus a fifth of the store for compactions
// of the deeper levels running at the same time (each rewrites a slice of
// a level before it deletes the old one). With the default 32 MiB
// memtable that is 256 MiB and a fifth of the store. Measured under a
// sustained 20-30 MB/s of random overwrites (reserve_measure_test.go),
// far beyond keyfleet's load, Badger needed at most 73-84% of it (three
// runs, up to a 480 MiB store).
func DefaultReserve(storeSize, memTableSize int64) int64 {
	return (numMemtables+numLevelZeroTables)*memTableSize + storeSize/5
}

// Badger settings the reserve depends on.
const (
	numMemtables       = 3 // the active memtable and at most two waiting for a flush
	numLevelZeroTables = 5 // L0 tables that start a compaction into L1 (Badger's default)
)

// reserveFor is o's reserve for a store of the given size.
func reserveFor(o Options, storeSize int64) uint64 {
	if o.Reserve > 0 {
		return uint64(o.Reserve)
	}
	return uint64(DefaultReserve(storeSize, memTableSize(o)))
}

// openChecked checks a store folder and decides how to open it: read-only
// when its file system has less free space than the reserve.
func openChecked(o Options) (db *badger.DB, readOnly bool, err error) {
	if o.InMemory {
		db, err = openBadger(o, false)
		return db, false, err
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("creating store folder: %w", err)
	}
	if err := lockFree(o.Dir); err != nil {
		return nil, false, fmt.Errorf("store %s is in use by another process (is another keyfleetd running on this data folder?): %w", o.Dir, err)
	}
	if err := removeAheadLogs(o.Dir); err != nil {
		return nil, false, fmt.Errorf("preparing store in %s: %w", o.Dir, err)
	}
	scans, err := checkFiles(o)
	if err != nil {
		return nil, false, err
	}
	free, err := o.statfs(o.Dir)
	if err != nil {
		return nil, false, fmt.Errorf("measuring the free space of %s: %w", o.Dir, err)
	}
	if free < reserveFor(o, dirSize(o.Dir)) && scans != nil {
		if err := trimLogs(scans); err != nil {
			return nil, false, fmt.Errorf("preparing a read-only open of %s: %w", o.Dir, err)
		}
		db, err = openBadger(o, true)
		return db, true, err
	}
	db, err = openBadger(o, false)
	return db, false, err
}

// openBadger opens Badger, turning a panic in this goroutine into an
// error (the checks before it keep Badger's own goroutines from meeting a
// damaged file).
func openBadger(o Options, readOnly bool) (db *badger.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("opening store in %s: Badger failed (%v); the store may be damaged: keep a copy of %s and restore it from a backup, or run 'keyfleetd recover --accept-loss'", o.Dir, r, o.Dir)
		}
	}()
	db, err = badger.Open(badgerOptions(o).WithReadOnly(readOnly))
	if err != nil {
		return nil, fmt.Errorf("opening store in %s: %w", o.Dir, explainOpen(err))
	}
	return db, nil
}

// explainOpen makes Badger's refusals say what to do.
func explainOpen(err error) error {
	switch {
	case errors.Is(err, badger.ErrEncryptionKeyMismatch):
		return fmt.Errorf("%w: the store key (KEYFLEET_STORE_KEY or keys/store.key) is not the one this store was made with", err)
	case strings.Contains(err.Error(), "no space left on device"):
		return fmt.Errorf("%w: the disk is full; free space on it and start keyfleetd again", err)
	}
	return err
}

// trimLogs cuts each write-ahead log at the end of its last complete
// transaction, as Badger's replay does when it opens a store for writing
// (a read-only open refuses a log with anything after that end). Logs
// holding no transaction are removed. The scans found no damage, so what
// is cut is zeros or an unfinished transaction nobody was told about.
func trimLogs(scans map[string]logScan) error {
	for path, sc := range scans {
		if sc.End <= logHeaderSize {
			if err := os.Remove(path); err != nil {
				return err
			}
			continue
		}
		if err := os.Truncate(path, sc.End); err != nil {
			return err
		}
	}
	return nil
}

// dirSize is the size of the tables in dir.
func dirSize(dir string) int64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range entries {
		if filepath.Ext(e.Name()) != ".sst" {
			continue // logs are allocated ahead; the value log is not used (values stay in the tree)
		}
		if info, err := e.Info(); err == nil {
			n += info.Size()
		}
	}
	return n
}
