package totp_test

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"runtime"
	"testing"
)

// echoChild is set in the environment of the child process that
// BenchmarkProcessRoundTrip starts: the test binary, run again, echoes
// what it reads instead of running tests.
const echoChild = "KEYFLEET_BENCH_ECHO_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(echoChild) != "" {
		runtime.GOMAXPROCS(1) // as the host starts a plugin
		_, _ = io.Copy(os.Stdout, bufio.NewReader(os.Stdin))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// BenchmarkProcessRoundTrip is the floor under the plugin hop: one
// message of a verification's size to another process and back over
// pipes, one at a time, with nothing else (no TLS, HTTP/2, gRPC or
// protobuf). Its cpu-µs/op, both processes together, is what crossing
// to another process costs on this machine before any protocol, when the
// other process sleeps between calls, as a plugin does between
// verifications that do not overlap.
func BenchmarkProcessRoundTrip(b *testing.B) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{echoChild + "=1"}
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { in.Close(); _ = cmd.Wait() }()
	msg := make([]byte, 300) // a FinishVerify call: state, code, ids
	got := make([]byte, len(msg))
	cpu := cpuTime()
	for b.Loop() {
		if _, err := in.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(out, got); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu)/1e3/float64(b.N), "cpu-µs/op")
}
