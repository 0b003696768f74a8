package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// allocate allocates the blocks of f's first size bytes, growing it to
// size if it is shorter.
func allocate(f *os.File, size int64) error {
	if size == 0 {
		return nil
	}
	return ignoreUnsupported(unix.Fallocate(int(f.Fd()), 0, 0, size))
}

// allocateBeyondEnd allocates size bytes from f's start without changing
// its size: a later ftruncate that grows f finds them allocated.
func allocateBeyondEnd(f *os.File, size int64) error {
	return ignoreUnsupported(unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, size))
}

// ignoreUnsupported lets a file system without fallocate (some network
// file systems) run as Badger does alone: unprotected.
func ignoreUnsupported(err error) error {
	if err == unix.EOPNOTSUPP {
		return nil
	}
	return err
}

// freeSpace is the space on dir's file system that an unprivileged
// process may still use.
func freeSpace(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// mapFile maps a file read-only; done unmaps it.
func mapFile(path string) (b []byte, done func(), err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if st.Size() == 0 {
		return nil, func() {}, nil
	}
	b, err = unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return b, func() { unix.Munmap(b) }, nil
}

// mapFileOnce is mapFile for a file read once through (the start's table
// check): done also drops the file's pages from the page cache, so that a
// check of every table does not leave the whole store cached and charged
// to keyfleetd's memory (under a unit's MemoryHigh, a 1.5 GB store left
// the group at its limit, and every later read had to reclaim first).
// Pages another mapping holds are kept.
func mapFileOnce(path string) (b []byte, done func(), err error) {
	b, unmap, err := mapFile(path)
	if err != nil {
		return nil, nil, err
	}
	return b, func() {
		unmap()
		if f, err := os.Open(path); err == nil {
			unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
			f.Close()
		}
	}, nil
}

// lockFree reports an error when another process holds dir's lock (Badger
// locks the folder itself with flock).
func lockFree(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return err
	}
	return unix.Flock(int(f.Fd()), unix.LOCK_UN)
}
