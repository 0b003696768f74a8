package daemon

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/keyfleet/keyfleet/daemon/runtimemem"
	"go.yaml.in/yaml/v3"
)

// Memory: one setting, store.memory, sizes what keyfleetd keeps in
// memory. Badger's memtables and its block and index caches take shares
// of it (memtable an eighth, at least 4 and at most 64 MiB, and three
// of them at once: the one written and two waiting for a flush; block
// cache a quarter; index cache an eighth), and the Go runtime's memory
// limit (GOMEMLIMIT) is set to it plus room for requests in flight, so
// that the garbage collector works harder before the process grows past
// it. store.memtable_mb, store.block_cache_mb and store.index_cache_mb,
// when set, win over their share, and together must fit in store.memory.
// A GOMEMLIMIT in the environment wins over the one derived here.
//
// Resident memory is more than that: Badger maps its write-ahead logs
// and its table files, and the table pages that reads touched stay
// resident (clean page cache, counted in RSS) until the kernel takes them
// back, which it does only under memory pressure. A memory limit on
// keyfleetd's control group is that pressure: ServiceMemoryHigh is what
// the systemd unit's MemoryHigh= should be for a store.memory.

// DefaultStoreMemory is store.memory when unset: 256 MiB, whose shares
// are a 32 MiB memtable (16 MiB before 2026-12-07: a sync of many users
// cost a fifth more CPU in compactions, docs/benchmarks.md), a 64 MiB
// block cache and a 32 MiB index cache.
const DefaultStoreMemory Size = runtimemem.DefaultStoreMemory

// GCPercent is the collector's GOGC that keyfleetd sets when the
// environment sets none (runtimemem.GCPercent says why 400).
const GCPercent = runtimemem.GCPercent

// mappedRoom is the least ServiceMemoryHigh allows beyond GOMEMLIMIT: the
// write-ahead logs Badger maps, the plugin processes (15-20 MiB each), and
// the table pages that the requests of the moment read.
const mappedRoom = 192 << 20

// Size is a number of bytes, written in YAML and the environment as
// "256MiB", "1GiB", "512M" or a number of MiB.
type Size int64

// MiB is s in whole MiB.
func (s Size) MiB() int64 { return int64(s) >> 20 }

func (s Size) String() string {
	if s%(1<<30) == 0 && s != 0 {
		return fmt.Sprintf("%dGiB", s>>30)
	}
	return fmt.Sprintf("%dMiB", s>>20)
}

// ParseSize reads a Size.
func ParseSize(v string) (Size, error) {
	v = strings.TrimSpace(v)
	num := strings.TrimRightFunc(v, func(r rune) bool { return r < '0' || r > '9' })
	unit := strings.ToLower(strings.TrimSpace(v[len(num):]))
	n, err := strconv.ParseInt(num, 10, 64)
	mult := map[string]int64{"": 1 << 20, "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}[unit]
	if err != nil || mult == 0 || n < 0 || n > 1<<20 {
		return 0, fmt.Errorf("%q is not a size like 256MiB or 1GiB", v)
	}
	return Size(n * mult), nil
}

// UnmarshalYAML reads "256MiB".
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*s = v
	return nil
}

// MarshalYAML writes the size as text.
func (s Size) MarshalYAML() (any, error) { return s.String(), nil }

// memoryDefaults sizes Badger's memtable and caches from store.memory,
// where they are not set.
func (c *Config) memoryDefaults() {
	st := &c.Store
	if st.Memory == 0 {
		st.Memory = DefaultStoreMemory
	}
	m := st.Memory.MiB()
	if st.MemTableMB == 0 {
		st.MemTableMB = min(max(m/8, 4), 64)
	}
	if st.BlockCacheMB == 0 {
		st.BlockCacheMB = m / 4
	}
	if st.IndexCacheMB == 0 {
		st.IndexCacheMB = m / 8
	}
}

// memoryErrors checks that the memtables and caches fit in store.memory.
func (c *Config) memoryErrors() []error {
	st := c.Store
	if st.Memory < 64<<20 || st.Memory > 1<<40 {
		return []error{fmt.Errorf("store.memory: %s must be between 64MiB and 1024GiB", st.Memory)}
	}
	need := 3*st.MemTableMB + st.BlockCacheMB + st.IndexCacheMB
	if need > st.Memory.MiB() {
		return []error{fmt.Errorf("store.memory: %s is less than the %d MiB that store.memtable_mb (%d, three at once), store.block_cache_mb (%d) and store.index_cache_mb (%d) take: raise store.memory, or leave those unset to size them from it",
			st.Memory, need, st.MemTableMB, st.BlockCacheMB, st.IndexCacheMB)}
	}
	return nil
}

// MemoryLimit is the Go runtime memory limit keyfleetd sets (GOMEMLIMIT,
// unless the environment sets one): store.memory and room for requests.
func (c Config) MemoryLimit() int64 {
	return runtimemem.Limit(int64(c.Store.Memory))
}

// ServiceMemoryHigh is the memory keyfleetd's service, with its plugins,
// should be let use before the kernel reclaims its pages (systemd's
// MemoryHigh=, deploy/systemd/keyfleetd.service): twice store.memory, and
// at least the Go memory limit plus 192 MiB. At the default store.memory
// of 256 MiB that is 512 MiB, 192 MiB above GOMEMLIMIT: under it the
// kernel takes back Badger's mapped table pages (clean, read again from
// disk when needed) rather than let them fill the machine's memory, and
// the Go heap stays below it (docs/benchmarks.md measures both at a
// million users).
func (c Config) ServiceMemoryHigh() int64 {
	m := c.Store.Memory
	if m == 0 {
		m = DefaultStoreMemory
	}
	return max(2*int64(m), c.MemoryLimit()+mappedRoom)
}

// groupMemoryLimit is the memory limit of the control group keyfleetd
// runs in, or of the nearest of its parents with a lower one: cgroup v2's
// memory.high or memory.max, whichever is lower (systemd's MemoryHigh=
// and MemoryMax=), or cgroup v1's memory.limit_in_bytes. root is "/" (a
// folder holding proc/self/cgroup and sys/fs/cgroup in tests). ok is false
// when no limit applies or none can be read.
func groupMemoryLimit(root string) (limit int64, ok bool) {
	f, err := os.Open(filepath.Join(root, "proc/self/cgroup"))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	limit = math.MaxInt64
	cg := filepath.Join(root, "sys/fs/cgroup")
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// hierarchy-ID:controllers:path; cgroup v2 is "0::path".
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		var dirs []string
		var files []string
		switch {
		case parts[0] == "0" && parts[1] == "":
			dirs, files = []string{cg, filepath.Join(cg, "unified")}, []string{"memory.high", "memory.max"}
		case slices.Contains(strings.Split(parts[1], ","), "memory"):
			dirs, files = []string{filepath.Join(cg, "memory")}, []string{"memory.limit_in_bytes"}
		default:
			continue
		}
		for _, base := range dirs {
			for p := path.Clean("/" + parts[2]); ; p = path.Dir(p) {
				for _, name := range files {
					if n, err := readLimit(filepath.Join(base, p, name)); err == nil {
						limit = min(limit, n)
					}
				}
				if p == "/" {
					break
				}
			}
		}
	}
	// cgroup v1 writes "no limit" as the largest page-aligned int64.
	if limit >= math.MaxInt64/2 {
		return 0, false
	}
	return limit, true
}

// readLimit reads a cgroup memory limit file: bytes, or "max" (none).
func readLimit(file string) (int64, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	v := strings.TrimSpace(string(b))
	if v == "max" {
		return math.MaxInt64, nil
	}
	return strconv.ParseInt(v, 10, 64)
}

// memoryGroupAdvice says what is wrong when the control group's memory
// limit leaves less than mappedRoom above the Go memory limit in force
// (runtimeLimit): the kernel would take pages from the heap and stall its
// allocations before the collector makes room. Empty when it is fine or
// there is no limit.
func memoryGroupAdvice(group, runtimeLimit int64) string {
	if runtimeLimit >= math.MaxInt64/2 || group >= runtimeLimit+mappedRoom {
		return ""
	}
	return fmt.Sprintf("the service's memory limit (%d MiB: MemoryHigh or MemoryMax) leaves less than %d MiB above the Go memory limit (%d MiB: store.memory + 64 MiB, or GOMEMLIMIT) for Badger's mapped tables and the plugins; the kernel will slow keyfleetd down to hold it: raise MemoryHigh to twice store.memory (systemctl edit keyfleetd), or lower store.memory",
		group>>20, mappedRoom>>20, runtimeLimit>>20)
}
