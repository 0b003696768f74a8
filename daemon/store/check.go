package store

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/table"
	"github.com/dgraph-io/badger/v4/y"
)

// Before Badger opens a store, check reads every write-ahead log and
// every table the MANIFEST names, with Badger's own checksums, and
// refuses a store Badger would open by silently dropping data (a log cut
// at a damaged entry, a table skipped) or that would crash it. It reads
// the whole store once: about a second per few hundred MB.

// ErrDamaged is wrapped by *DamageError.
var ErrDamaged = errors.New("store damaged")

// Damage is one damaged file.
type Damage struct {
	File string // path
	Kind string // "write-ahead log", "table" or "manifest"
	// Offset is where a log's damage starts; Resume where its next intact
	// entry is.
	Offset, Resume int64
	// LastIntactSeq is the audit sequence number of the last complete
	// transaction before the damage in a log (HasSeq false: it wrote
	// none); SeqAfter the highest one intact entries after it reach.
	LastIntactSeq uint64
	HasSeq        bool
	SeqAfter      uint64
	Reason        string
	// end is where Badger's replay stops in a log (accept-loss truncates
	// it there); table the table's id.
	end   int64
	table uint64
	level int
}

func (d Damage) String() string {
	name := d.File
	switch d.Kind {
	case "write-ahead log":
		s := fmt.Sprintf("%s: write-ahead log damaged at byte %d, with intact entries again from byte %d", name, d.Offset, d.Resume)
		if d.HasSeq {
			s += fmt.Sprintf("; the last intact audit event before the damage is seq %d", d.LastIntactSeq)
		}
		if d.SeqAfter > 0 {
			s += fmt.Sprintf("; entries after it reach audit seq %d", d.SeqAfter)
		}
		return s + " (Badger would silently drop everything from the damage on)"
	case "table":
		return fmt.Sprintf("%s: table damaged: %s (Badger would crash on it or serve the store without its records)", name, d.Reason)
	}
	return fmt.Sprintf("%s: %s", name, d.Reason)
}

// DamageError lists the damaged files of a store. It wraps ErrDamaged.
type DamageError struct {
	Dir     string
	Damages []Damage
}

func (e *DamageError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the store in %s is damaged and keyfleetd will not serve it silently truncated:", e.Dir)
	for _, d := range e.Damages {
		b.WriteString("\n  - " + d.String())
	}
	b.WriteString("\nChoose one: restore the store from a backup taken before the damage (keyfleetd then compares it with the newest audit checkpoint);" +
		" or accept the loss with 'keyfleetd recover --accept-loss', which keeps a copy of each damaged file, drops what cannot be read, and records the loss in the audit log")
	return b.String()
}

func (e *DamageError) Unwrap() error { return ErrDamaged }

// Recoverable reports whether recover --accept-loss can open the store
// (a damaged MANIFEST it cannot repair: only a backup can).
func (e *DamageError) Recoverable() bool {
	for _, d := range e.Damages {
		if d.Kind == "manifest" {
			return false
		}
	}
	return true
}

// checkFiles checks a store folder before Badger opens it. A folder that
// is empty or missing is a new store and passes.
func checkFiles(o Options) (scans map[string]logScan, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("checking the store in %s failed: %v", o.Dir, r)
		}
	}()
	debug.SetPanicOnFault(true) // a file shrinking under its map is an error, not a crash
	defer debug.SetPanicOnFault(false)
	if _, err := os.Stat(filepath.Join(o.Dir, badger.ManifestFilename)); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	kr, err := badger.OpenKeyRegistry(badger.KeyRegistryOptions{Dir: o.Dir, ReadOnly: true,
		EncryptionKey: o.EncryptionKey, EncryptionKeyRotationDuration: rotation(o)})
	if err != nil {
		return nil, fmt.Errorf("opening store in %s: %w", o.Dir, err)
	}
	defer kr.Close()
	var damages []Damage // scans is not nil from here on: the store exists
	scans, logDamages, err := checkLogs(o.Dir, kr)
	if err != nil {
		return nil, err
	}
	damages = append(damages, logDamages...)
	tableDamages, err := checkTables(o.Dir, kr)
	if err != nil {
		return nil, err
	}
	damages = append(damages, tableDamages...)
	if len(damages) > 0 {
		return scans, &DamageError{Dir: o.Dir, Damages: damages}
	}
	return scans, nil
}

// checkLogs scans every write-ahead log.
func checkLogs(dir string, kr *badger.KeyRegistry) (map[string]logScan, []Damage, error) {
	fids, err := memFids(dir)
	if err != nil {
		return nil, nil, err
	}
	scans := map[string]logScan{}
	var damages []Damage
	for _, fid := range fids {
		path := memPath(dir, fid)
		b, done, err := mapFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("reading %s: %w", path, err)
		}
		sc, err := scanLog(b, decrypterFor(kr))
		done()
		if err != nil {
			return nil, nil, fmt.Errorf("reading %s: %w", path, err)
		}
		scans[path] = sc
		if sc.Damaged {
			damages = append(damages, Damage{File: path, Kind: "write-ahead log", Offset: sc.DamageAt, Resume: sc.ResumeAt,
				LastIntactSeq: sc.LastSeq, HasSeq: sc.HasSeq, SeqAfter: sc.SeqAfter, end: sc.End})
		}
	}
	return scans, damages, nil
}

// decrypterFor gives the decryption of a log's entries.
func decrypterFor(kr *badger.KeyRegistry) func(uint64, []byte) (decryptFunc, error) {
	return func(id uint64, baseIV []byte) (decryptFunc, error) {
		if id == 0 {
			return nil, nil
		}
		dk, err := kr.DataKey(id)
		if err != nil || dk == nil {
			return nil, fmt.Errorf("the log's data key %d is not in the key registry: %v", id, err)
		}
		iv := make([]byte, 16)
		copy(iv, baseIV)
		return func(kv []byte, off uint32) ([]byte, error) {
			iv[12], iv[13], iv[14], iv[15] = byte(off>>24), byte(off>>16), byte(off>>8), byte(off)
			return y.XORBlockAllocate(kv, dk.Data, iv)
		}, nil
	}
}

// checkTables checks every table the MANIFEST names.
func checkTables(dir string, kr *badger.KeyRegistry) ([]Damage, error) {
	mpath := filepath.Join(dir, badger.ManifestFilename)
	f, err := os.Open(mpath)
	if err != nil {
		return nil, err
	}
	m, _, err := badger.ReplayManifestFile(f, 0, badger.DefaultOptions(dir).WithLogger(badgerLogger{slog.New(slog.DiscardHandler)}))
	f.Close()
	if err != nil {
		return []Damage{{File: mpath, Kind: "manifest", Reason: fmt.Sprintf("the MANIFEST cannot be read (%v); restore the store from a backup", err)}}, nil
	}
	ids := make([]uint64, 0, len(m.Tables))
	for id := range m.Tables {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var damages []Damage
	for _, id := range ids {
		if d, bad := checkTableFile(dir, id, m.Tables[id], kr); bad {
			damages = append(damages, d)
		}
	}
	return damages, nil
}

func checkTableFile(dir string, id uint64, tm badger.TableManifest, kr *badger.KeyRegistry) (Damage, bool) {
	path := table.NewFilename(id, dir)
	d := Damage{File: path, Kind: "table", table: id, level: int(tm.Level)}
	var key []byte
	if tm.KeyID != 0 {
		dk, err := kr.DataKey(tm.KeyID)
		if err != nil || dk == nil {
			d.Reason = fmt.Sprintf("its data key %d is not in the key registry", tm.KeyID)
			return d, true
		}
		key = dk.Data
	}
	b, done, err := mapFileOnce(path)
	if errors.Is(err, fs.ErrNotExist) {
		d.Reason = "the MANIFEST names it but the file is missing"
		return d, true
	}
	if err != nil {
		d.Reason = err.Error()
		return d, true
	}
	defer done()
	if err := checkTable(b, key, tm.Compression); err != nil {
		d.Reason = err.Error()
		return d, true
	}
	return d, false
}

func rotation(o Options) time.Duration {
	if o.KeyRotation == 0 {
		return 10 * 24 * time.Hour
	}
	return o.KeyRotation
}
