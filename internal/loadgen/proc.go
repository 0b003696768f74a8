package loadgen

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of /proc/PID/stat's CPU times (USER_HZ, 100 on
// every Linux keyfleet runs on).
const clockTick = 10 * time.Millisecond

// Proc is a running process, read through /proc.
type Proc struct{ PID int }

// CPU is the user and system time the process has used so far.
func (p Proc) CPU() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.PID))
	if err != nil {
		return 0, err
	}
	f, err := statFields(b)
	if err != nil {
		return 0, err
	}
	utime, err1 := strconv.ParseInt(f[13], 10, 64)
	stime, err2 := strconv.ParseInt(f[14], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad CPU times", p.PID)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// statFields splits /proc/PID/stat; the command name (field 2) may hold
// spaces, so the fields after it are counted from its closing parenthesis.
func statFields(b []byte) ([]string, error) {
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc stat: no command name")
	}
	rest := strings.Fields(s[i+1:])
	if len(rest) < 20 {
		return nil, fmt.Errorf("/proc stat: %d fields", len(rest)+2)
	}
	return append([]string{"pid", "comm"}, rest...), nil
}

// Memory reads the resident set now and its peak since the process
// started or since ResetPeak (VmRSS, VmHWM), in bytes.
func (p Proc) Memory() (rss, peak int64, err error) {
	v, err := p.status("VmRSS", "VmHWM")
	return v["VmRSS"], v["VmHWM"], err
}

// MemoryKinds splits the resident set now into its anonymous part (the Go
// heap, stacks and caches: RssAnon) and its file-backed part (mapped
// files, such as Badger's tables: RssFile), in bytes. The kernel can
// drop clean file-backed pages under memory pressure; anonymous ones it
// can only swap.
func (p Proc) MemoryKinds() (anon, file int64, err error) {
	v, err := p.status("RssAnon", "RssFile")
	return v["RssAnon"], v["RssFile"], err
}

// status reads the named kB fields of /proc/PID/status, in bytes.
func (p Proc) status(names ...string) (map[string]int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.PID))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || !want[name] {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("/proc/%d/status: %s: %w", p.PID, name, err)
		}
		out[name] = kb << 10
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("/proc/%d/status has no %s", p.PID, n)
		}
	}
	return out, nil
}

// ResetPeak starts the peak resident set (VmHWM) again from the current
// one, so that a run's peak is its own.
func (p Proc) ResetPeak() error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.PID), []byte("5"), 0)
}

// Children are the processes whose parent is p (a daemon's plugins).
func (p Proc) Children() ([]Proc, error) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return nil, err
	}
	var out []Proc
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // gone meanwhile
		}
		f, err := statFields(b)
		if err != nil {
			continue
		}
		if ppid, _ := strconv.Atoi(f[3]); ppid == p.PID {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
			out = append(out, Proc{PID: pid})
		}
	}
	return out, nil
}

// Usage is what a group of processes used over a span.
type Usage struct {
	CPU      time.Duration
	PeakRSS  int64 // the largest peak among them
	RSSAfter int64
}

// Meter measures the CPU and peak memory of processes over a span.
type Meter struct {
	procs []Proc
	start []time.Duration
}

// StartMeter resets the processes' memory peaks and notes their CPU.
func StartMeter(procs ...Proc) (*Meter, error) {
	m := &Meter{procs: procs}
	for _, p := range procs {
		if err := p.ResetPeak(); err != nil {
			return nil, fmt.Errorf("resetting the memory peak of process %d: %w", p.PID, err)
		}
		c, err := p.CPU()
		if err != nil {
			return nil, err
		}
		m.start = append(m.start, c)
	}
	return m, nil
}

// Stop reports each process's usage since StartMeter.
func (m *Meter) Stop() ([]Usage, error) {
	out := make([]Usage, len(m.procs))
	for i, p := range m.procs {
		c, err := p.CPU()
		if err != nil {
			return nil, err
		}
		rss, peak, err := p.Memory()
		if err != nil {
			return nil, err
		}
		out[i] = Usage{CPU: c - m.start[i], PeakRSS: peak, RSSAfter: rss}
	}
	return out, nil
}

// LoadAverage is the one-minute load average, to print beside a figure.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}
