package deploy_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/daemon"
)

// The unit's MemoryHigh is what the packaged configuration's store.memory
// asks for (daemon.Config.ServiceMemoryHigh): above the Go memory limit it
// sets, with room for the table pages Badger maps, which the kernel takes
// back when the service passes it. A MemoryMax, if one is added, must not
// be below it: the kernel would kill keyfleetd before reclaiming.
func TestUnitMemoryHighFollowsStoreMemory(t *testing.T) {
	svc := readUnit(t, "systemd/keyfleetd.service")
	high, err := systemdBytes(svc["MemoryHigh"])
	if err != nil {
		t.Fatalf("MemoryHigh=%s: %v", svc["MemoryHigh"], err)
	}
	file := filepath.Join(t.TempDir(), "keyfleetd.yaml")
	if err := os.WriteFile(file, []byte(daemon.DefaultConfigFile("/var/lib/keyfleet")), 0o600); err != nil {
		t.Fatal(err)
	}
	var c daemon.Config
	if err := c.LoadFile(file); err != nil {
		t.Fatal(err)
	}
	c.Defaults()
	if want := c.ServiceMemoryHigh(); high != want {
		t.Errorf("MemoryHigh=%s is %d MiB; store.memory %s in the packaged configuration asks for %d MiB (daemon.Config.ServiceMemoryHigh)",
			svc["MemoryHigh"], high>>20, c.Store.Memory, want>>20)
	}
	if high <= c.MemoryLimit() {
		t.Errorf("MemoryHigh=%s is not above the Go memory limit, %d MiB", svc["MemoryHigh"], c.MemoryLimit()>>20)
	}
	if v, ok := svc["MemoryMax"]; ok {
		if m, err := systemdBytes(v); err != nil || m < high {
			t.Errorf("MemoryMax=%s is below MemoryHigh=%s (or unreadable: %v)", v, svc["MemoryHigh"], err)
		}
	}
}

// systemdBytes reads a systemd memory size: a number of bytes with an
// optional K, M, G or T (powers of 1024).
func systemdBytes(v string) (int64, error) {
	mult := int64(1)
	if i := strings.IndexAny(v, "KMGT"); i == len(v)-1 && i > 0 {
		mult = 1 << (10 * (strings.IndexByte("KMGT", v[i]) + 1))
		v = v[:i]
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n * mult, err
}
