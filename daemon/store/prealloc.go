package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Badger maps each memtable's write-ahead log (NNNNN.mem) to twice the
// memtable size, made with ftruncate: a sparse file whose blocks the
// kernel finds only when a page is first written through the map. On a
// full file system there is no block to find, and the write is a SIGBUS.
// walPrep takes that away: it allocates the log Badger writes to in full,
// and makes the next one before Badger needs it (empty, with its blocks
// allocated past its end), so that when Badger opens it and extends it
// the blocks are already there. If the next log cannot be made, the
// store stops taking writes before Badger would need it.
type walPrep struct {
	dir  string
	size int64 // what Badger maps a log to: twice the memtable size
	// next is the log made ahead of time, "" when none is.
	next string
	// allocated are the logs already allocated in full.
	allocated map[string]bool
}

func newWALPrep(dir string, memTableSize int64) *walPrep {
	return &walPrep{dir: dir, size: 2 * memTableSize, allocated: map[string]bool{}}
}

// ensure allocates the log Badger writes to and makes the next one. It
// returns what failed, "" when nothing did. It is cheap when nothing
// changed since the last call: one stat of the log made ahead.
func (p *walPrep) ensure() string {
	if p.next != "" {
		st, err := os.Stat(p.next)
		if err == nil && st.Size() == 0 {
			return "" // not taken into use yet
		}
		p.next = ""
	}
	fids, err := memFids(p.dir)
	if err != nil {
		return fmt.Sprintf("listing the write-ahead logs: %v", err)
	}
	if len(fids) == 0 {
		return ""
	}
	for try := 0; try < 3; try++ {
		active := memPath(p.dir, fids[len(fids)-1])
		if !p.allocated[active] {
			if err := allocateFile(active); err != nil {
				return fmt.Sprintf("allocating the write-ahead log %s: %v", filepath.Base(active), err)
			}
			p.allocated = map[string]bool{active: true} // older logs are no longer written
		}
		next := memPath(p.dir, fids[len(fids)-1]+1)
		err := makeAhead(next, p.size)
		if errors.Is(err, fs.ErrExist) {
			fids = append(fids, fids[len(fids)-1]+1) // Badger was first: that one is in use
			continue
		}
		if err != nil {
			return fmt.Sprintf("making the next write-ahead log %s: %v", filepath.Base(next), err)
		}
		p.next = next
		return ""
	}
	return "the write-ahead logs changed while being prepared"
}

// makeAhead creates an empty log with size bytes allocated past its end.
// On failure it leaves no file behind.
func makeAhead(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	err = allocateBeyondEnd(f, size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// allocateFile allocates every block of an existing file up to its size.
func allocateFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	return allocate(f, st.Size())
}

// removeAheadLogs removes empty write-ahead logs: logs made ahead that
// Badger never took into use. Badger refuses to open a folder holding an
// empty log, so this runs before every open.
func removeAheadLogs(dir string) error {
	fids, err := memFids(dir)
	if err != nil {
		return err
	}
	for _, fid := range fids {
		p := memPath(dir, fid)
		st, err := os.Stat(p)
		if err == nil && st.Size() == 0 {
			if err := os.Remove(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// memFids lists the write-ahead logs' numbers in ascending order.
func memFids(dir string) ([]int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var fids []int
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".mem")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(name); err == nil {
			fids = append(fids, n)
		}
	}
	return fids, nil // ReadDir sorts by name, and the names are zero-padded
}

func memPath(dir string, fid int) string { return filepath.Join(dir, fmt.Sprintf("%05d.mem", fid)) }
