//go:build linux

package store

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// mappedTables lists the mappings of the table files (*.sst) in dir, as
// /proc/self/maps gives them; nothing if it cannot be read.
func mappedTables(dir string) []memRange {
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return nil
	}
	var out []memRange
	prefix := dir + "/"
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// start-end perms offset dev inode path
		f := strings.Fields(sc.Text())
		if len(f) < 6 || !strings.HasPrefix(f[5], prefix) || !strings.HasSuffix(f[5], ".sst") {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if ok && err1 == nil && err2 == nil && end > start {
			out = append(out, memRange{uintptr(start), uintptr(end)})
		}
	}
	return out
}

// adviseRandom advises the kernel that the ranges are read at random
// (MADV_RANDOM), or again as usual (MADV_NORMAL). A range that is no
// longer mapped (a table a compaction removed) fails, and is of no
// concern; one mapped anew in between takes the advice harmlessly: it
// only sets how much the kernel reads ahead on a fault there.
func adviseRandom(ranges []memRange, random bool) {
	advice := unix.MADV_NORMAL
	if random {
		advice = unix.MADV_RANDOM
	}
	for _, r := range ranges {
		// Not unix.Madvise: the ranges are Badger's mappings, not Go memory.
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, r.start, r.end-r.start, uintptr(advice))
	}
}
