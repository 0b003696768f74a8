package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/pb"
	"google.golang.org/protobuf/proto"

	"github.com/keyfleet/keyfleet/daemon/audit"
)

// AcceptLoss makes a damaged store openable once an operator has decided
// to lose what cannot be read. The store must be closed. For each damaged
// file it keeps a copy in quarantine (a folder it creates), then cuts a
// damaged write-ahead log where Badger's replay stops (what Badger would
// do, silently) and drops a damaged table from the MANIFEST (Badger would
// crash on it or skip it). Older versions of the records a dropped table
// held can come back into view; the audit log records the loss, and
// RepairHead points the audit head at the last record that remains.
//
// It returns the damage it accepted, nil when the store was not damaged,
// and an error when the damage is of a kind only a backup can repair (the
// MANIFEST itself).
func AcceptLoss(o Options, quarantine string) (*DamageError, error) {
	if err := lockFree(o.Dir); err != nil {
		return nil, fmt.Errorf("store %s is in use (stop keyfleetd first): %w", o.Dir, err)
	}
	if err := removeAheadLogs(o.Dir); err != nil {
		return nil, err
	}
	_, err := checkFiles(o)
	var de *DamageError
	if !errors.As(err, &de) {
		return nil, err
	}
	if !de.Recoverable() {
		return de, fmt.Errorf("the store's MANIFEST is damaged: only a backup can repair it, recover --accept-loss cannot: %w", err)
	}
	if err := os.MkdirAll(quarantine, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", quarantine, err)
	}
	for _, d := range de.Damages {
		if err := acceptOne(o.Dir, d, quarantine); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(d.File), err)
		}
	}
	if _, err := checkFiles(o); err != nil {
		return nil, fmt.Errorf("the store is still damaged after accepting the loss: %w", err)
	}
	return de, nil
}

func acceptOne(dir string, d Damage, quarantine string) error {
	switch d.Kind {
	case "write-ahead log":
		if err := copyUsed(d.File, filepath.Join(quarantine, filepath.Base(d.File))); err != nil {
			return fmt.Errorf("keeping a copy: %w", err)
		}
		return os.Truncate(d.File, max(d.end, logHeaderSize))
	case "table":
		if err := dropTable(dir, d.table, d.level); err != nil {
			return err
		}
		err := os.Rename(d.File, filepath.Join(quarantine, filepath.Base(d.File)))
		if errors.Is(err, os.ErrNotExist) {
			return nil // the MANIFEST named a table that was missing
		}
		return err
	}
	return fmt.Errorf("cannot accept damage to a %s", d.Kind)
}

// copyUsed copies a file up to its last non-zero byte (a log is mostly
// zeros allocated ahead).
func copyUsed(src, dst string) error {
	b, done, err := mapFile(src)
	if err != nil {
		return err
	}
	defer done()
	n := lastNonZero(b) + 1
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b[:n]); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// dropTable appends a change deleting a table to the MANIFEST, as Badger
// writes it: uint32be(length) ‖ uint32be(CRC-32C) ‖ ManifestChangeSet. A
// half-written change at the end (a crash) is cut first, as Badger does.
func dropTable(dir string, id uint64, level int) error {
	f, err := os.OpenFile(filepath.Join(dir, badger.ManifestFilename), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, end, err := badger.ReplayManifestFile(f, 0, badger.DefaultOptions(dir).WithLogger(badgerLogger{slog.New(slog.DiscardHandler)}))
	if err != nil {
		return fmt.Errorf("reading the MANIFEST: %w", err)
	}
	if err := f.Truncate(end); err != nil {
		return err
	}
	if _, err := f.Seek(end, io.SeekStart); err != nil {
		return err
	}
	body, err := proto.Marshal(&pb.ManifestChangeSet{Changes: []*pb.ManifestChange{{Id: id, Op: pb.ManifestChange_DELETE, Level: uint32(level)}}})
	if err != nil {
		return err
	}
	var hdr [8]byte
	binary.BigEndian.PutUint32(hdr[:4], uint32(len(body)))
	binary.BigEndian.PutUint32(hdr[4:], crc32.Checksum(body, crcTable))
	if _, err := f.Write(append(hdr[:], body...)); err != nil {
		return err
	}
	return f.Sync()
}

// RepairHead points the audit head at the last audit record the store
// holds, after AcceptLoss: a dropped table can take the newest head with
// it while later records remain, or the reverse. It returns the head
// before and after (equal when nothing needed repair).
func (s *Store) RepairHead() (before, after audit.Head, err error) {
	s.chainMu.Lock()
	defer s.chainMu.Unlock()
	before = s.head
	var last audit.Head
	err = s.view(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Reverse = true
		opts.Prefix = []byte(pAudit)
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Seek(auditKey(^uint64(0))); it.Valid(); it.Next() {
			if len(it.Item().Key()) != len(pAudit)+8 {
				continue
			}
			return it.Item().Value(func(v []byte) error {
				r, err := audit.Unmarshal(v)
				last = audit.Head{Seq: r.Seq, Hash: r.Hash}
				return err
			})
		}
		return nil
	})
	if err != nil || last == before {
		return before, before, err
	}
	if err := s.update(func(txn *badger.Txn) error { return txn.Set([]byte(kAuditHead), encodeHead(last)) }); err != nil {
		return before, before, err
	}
	s.head = last
	s.sync.head.Store(&last)
	s.sync.durable.Store(&last)
	return before, last, nil
}
