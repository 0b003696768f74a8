package daemon

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The control group's memory limit is read from the files the kernel
// shows: cgroup v2 (systemd's MemoryHigh and MemoryMax, at the usual
// mount or the hybrid layout's unified one) and cgroup v1, taking the
// lowest of the group and its parents.
func TestGroupMemoryLimitReadsCgroupFiles(t *testing.T) {
	const mib = 1 << 20
	unlimitedV1 := "9223372036854771712"
	tests := []struct {
		name   string
		cgroup string
		files  map[string]string // under sys/fs/cgroup
		want   int64             // 0: no limit
	}{
		{"systemd's MemoryHigh", "0::/system.slice/keyfleetd.service\n", map[string]string{
			"system.slice/keyfleetd.service/memory.high": "536870912\n", "system.slice/keyfleetd.service/memory.max": "max\n"}, 512 * mib},
		{"a MemoryMax below MemoryHigh", "0::/system.slice/keyfleetd.service\n", map[string]string{
			"system.slice/keyfleetd.service/memory.high": "1073741824\n", "system.slice/keyfleetd.service/memory.max": "629145600\n"}, 600 * mib},
		{"no limit", "0::/system.slice/keyfleetd.service\n", map[string]string{
			"system.slice/keyfleetd.service/memory.high": "max\n", "system.slice/keyfleetd.service/memory.max": "max\n"}, 0},
		{"a parent's lower limit", "0::/system.slice/keyfleetd.service\n", map[string]string{
			"system.slice/memory.high": "268435456\n", "system.slice/keyfleetd.service/memory.high": "536870912\n"}, 256 * mib},
		{"the hybrid layout", "1:name=systemd:/system.slice/keyfleetd.service\n0::/system.slice/keyfleetd.service\n", map[string]string{
			"unified/system.slice/keyfleetd.service/memory.high": "536870912\n"}, 512 * mib},
		{"cgroup v1", "5:devices:/\n4:memory:/process_api/x\n0::/\n", map[string]string{
			"memory/memory.limit_in_bytes": unlimitedV1, "memory/process_api/x/memory.limit_in_bytes": "536870912\n"}, 512 * mib},
		{"cgroup v1 without a limit", "4:memory:/process_api/x\n", map[string]string{
			"memory/memory.limit_in_bytes": unlimitedV1, "memory/process_api/x/memory.limit_in_bytes": unlimitedV1}, 0},
		{"a v1 memory controller shared with another", "4:cpuacct,memory:/a\n", map[string]string{
			"memory/a/memory.limit_in_bytes": "1073741824"}, 1024 * mib},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			write := func(name, text string) {
				p := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write("proc/self/cgroup", tt.cgroup)
			for name, text := range tt.files {
				write(filepath.Join("sys/fs/cgroup", name), text)
			}
			got, ok := groupMemoryLimit(root)
			if ok != (tt.want != 0) || got != tt.want {
				t.Fatalf("limit %d MiB (ok %v), want %d MiB", got/mib, ok, tt.want/mib)
			}
		})
	}
	if _, ok := groupMemoryLimit(t.TempDir()); ok {
		t.Fatal("a limit without /proc/self/cgroup")
	}
}

// keyfleetd warns when the service's limit leaves the mapped tables and
// plugins less than 192 MiB above the Go memory limit: the unit's 512M
// with the default store.memory is enough, with store.memory: 1GiB it is
// not; GOMEMLIMIT=off (no Go limit) is not judged.
func TestMemoryGroupAdvice(t *testing.T) {
	var def, big Config
	big.Store.Memory = 1 << 30
	if a := memoryGroupAdvice(def.ServiceMemoryHigh(), def.MemoryLimit()); a != "" {
		t.Errorf("the default store.memory under its own MemoryHigh: %s", a)
	}
	a := memoryGroupAdvice(512<<20, big.MemoryLimit())
	if !strings.Contains(a, "512 MiB") || !strings.Contains(a, "1088 MiB") || !strings.Contains(a, "raise MemoryHigh") {
		t.Errorf("store.memory 1GiB under MemoryHigh=512M: %q", a)
	}
	if a := memoryGroupAdvice(512<<20, math.MaxInt64); a != "" {
		t.Errorf("no Go memory limit: %s", a)
	}
}

// In a real memory group (cgroup v1, as root, where the machine has a
// writable memory controller) a process reads its group's limit.
func TestGroupMemoryLimitInARealGroup(t *testing.T) {
	if os.Getenv("KEYFLEET_TEST_IN_GROUP") != "" {
		limit, ok := groupMemoryLimit("/")
		fmt.Printf("limit=%d ok=%v\n", limit, ok)
		return
	}
	parent := ""
	b, _ := os.ReadFile("/proc/self/cgroup")
	for _, line := range strings.Split(string(b), "\n") {
		if parts := strings.SplitN(line, ":", 3); len(parts) == 3 && strings.Contains(","+parts[1]+",", ",memory,") {
			parent = filepath.Join("/sys/fs/cgroup/memory", parts[2])
		}
	}
	group := filepath.Join(parent, fmt.Sprintf("keyfleet-test-%d", os.Getpid()))
	if parent == "" || os.Mkdir(group, 0o755) != nil {
		t.Skip("no writable cgroup v1 memory controller here (cgroup v2 is covered by the file test above)")
	}
	defer func() {
		if err := os.Remove(group); err != nil {
			t.Errorf("removing the test's memory group: %v", err)
		}
	}()
	if err := os.WriteFile(filepath.Join(group, "memory.limit_in_bytes"), []byte(strconv.Itoa(300<<20)), 0); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-c", `echo $$ >"$0/cgroup.procs" && exec "$@"`, group, os.Args[0], "-test.run=^TestGroupMemoryLimitInARealGroup$")
	cmd.Env = append(os.Environ(), "KEYFLEET_TEST_IN_GROUP=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if want := fmt.Sprintf("limit=%d ok=true", 300<<20); !strings.Contains(string(out), want) {
		t.Fatalf("the process in a 300 MiB group read %q, want %s", out, want)
	}
}
