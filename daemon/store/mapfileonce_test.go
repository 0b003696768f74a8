//go:build linux

package store

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// cachedPages is how many of path's pages are in the page cache.
func cachedPages(t *testing.T, path string) int {
	t.Helper()
	b, done, err := mapFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	vec := make([]byte, (len(b)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// The start's table check reads each table once: it leaves none of it in
// the page cache, where it would count against keyfleetd's memory limit.
func TestATableCheckedAtStartLeavesNothingCached(t *testing.T) {
	dir := t.TempDir()
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err == nil && fs.Type == unix.TMPFS_MAGIC {
		t.Skip("the temporary folder is on tmpfs, whose pages are the file itself and are never dropped; set TMPDIR to a disk's folder to run this test")
	}
	path := filepath.Join(dir, "000001.sst")
	data := bytes.Repeat([]byte("keyfleet"), 1<<17) // 1 MiB
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	unix.Sync() // dirty pages are not dropped
	if _, err := os.ReadFile(path); err != nil {
		t.Fatal(err)
	}
	if n := cachedPages(t, path); n == 0 {
		t.Fatal("the file is not in the page cache after a read: this file system keeps nothing cached, the test proves nothing here")
	}
	b, done, err := mapFileOnce(path)
	if err != nil || !bytes.Equal(b, data) {
		t.Fatalf("mapFileOnce read %d bytes, %v", len(b), err)
	}
	done()
	if n := cachedPages(t, path); n != 0 {
		t.Fatalf("%d pages of the checked file are still cached", n)
	}
}
