package totp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/internal/loadgen"
	"github.com/keyfleet/keyfleet/plugins/sdk"
	"github.com/keyfleet/keyfleet/plugins/sdk/sdktest"
	"github.com/keyfleet/keyfleet/plugins/totp"
)

// benchFactor verifies one valid code with f, b.N times, sequentially and
// from parallel goroutines. The state is not threaded between calls, so
// every call does the full work of an accepted code (one to three HMACs,
// state decode and encode).
func benchFactor(b *testing.B, f sdk.Factor) {
	seed := "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	code, err := totp.Code(seed, "SHA1", 6, 30, now)
	if err != nil {
		b.Fatal(err)
	}
	state, _ := json.Marshal(map[string]any{"seed": seed, "alg": "SHA1", "digits": 6, "period": 30})
	req := sdk.FinishVerifyRequest{FactorID: "f1", State: state, Response: codeJSON(code), Now: now}
	verify := func() {
		res, err := f.FinishVerify(context.Background(), req)
		if err != nil || !res.OK {
			b.Fatalf("OK=%v err=%v", res.OK, err)
		}
	}
	b.Run("sequential", func(b *testing.B) {
		for b.Loop() {
			verify()
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(8)
		cpu := cpuTime()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				verify()
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
		b.ReportMetric(float64(cpuTime()-cpu)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
	})
}

// cpuTime is the CPU this process and its children (a plugin) used so
// far.
func cpuTime() time.Duration {
	self, err := (loadgen.Proc{PID: os.Getpid()}).CPU()
	if err != nil {
		return 0
	}
	kids, _ := (loadgen.Proc{PID: os.Getpid()}).Children()
	for _, k := range kids {
		c, _ := k.CPU()
		self += c
	}
	return self
}

func BenchmarkVerifyInProcess(b *testing.B) { benchFactor(b, totp.Factor{}) }

// BenchmarkVerifyOverTheWire crosses the plugin protocol's real gRPC
// shims in this process, in each protocol version: version 1 (a unary
// call per verification) and version 2 (one stream, calls made at the
// same moment in one message). The CPU per verification of both sides
// together is the cost of the hop, less the process boundary's.
func BenchmarkVerifyOverTheWire(b *testing.B) {
	for _, v := range []int{1, 2} {
		b.Run(fmt.Sprintf("v%d", v), func(b *testing.B) { benchFactor(b, sdktest.GRPCVersion(b, totp.Factor{}, v)) })
	}
}

func BenchmarkVerifyPlugin(b *testing.B) {
	bin := sdktest.Build(b, "github.com/keyfleet/keyfleet/cmd/keyfleet-plugin-totp", "totp")
	benchFactor(b, sdktest.Plugin(b, bin, nil))
}
