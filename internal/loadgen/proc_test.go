package loadgen

import (
	"os"
	"testing"
)

// The figures the benchmarks print come from this very process's /proc
// entries: they must be there and add up.
func TestProcReadsItsOwnMemoryAndCPU(t *testing.T) {
	p := Proc{PID: os.Getpid()}
	rss, peak, err := p.Memory()
	if err != nil {
		t.Fatal(err)
	}
	anon, file, err := p.MemoryKinds()
	if err != nil {
		t.Fatal(err)
	}
	if rss <= 0 || peak < rss || anon <= 0 || file <= 0 {
		t.Fatalf("rss %d, peak %d, anonymous %d, file %d: want all positive and peak ≥ rss", rss, peak, anon, file)
	}
	// RssShmem makes up the rest of VmRSS; the two parts never exceed it
	// by more than the pages that moved between the two reads.
	if anon+file > rss+(4<<20) {
		t.Fatalf("anonymous %d + file %d > rss %d", anon, file, rss)
	}
	if _, err := p.CPU(); err != nil {
		t.Fatal(err)
	}
}

func TestProcOfAProcessThatIsGone(t *testing.T) {
	p := Proc{PID: 1 << 30} // above any pid_max
	if _, _, err := p.Memory(); err == nil {
		t.Fatal("Memory of no process: no error")
	}
	if _, _, err := p.MemoryKinds(); err == nil {
		t.Fatal("MemoryKinds of no process: no error")
	}
}
