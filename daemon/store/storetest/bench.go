package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/attest"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/core/coretest"
	"github.com/keyfleet/keyfleet/daemon/seal"
	"github.com/keyfleet/keyfleet/plugins/sdk"
	"github.com/keyfleet/keyfleet/policy"
)

// The bulk policy benchmark, the same on every backend: users with two
// factors each (a PIV key whose record carries a two-certificate chain,
// ≈2.5 KB, and a software factor), a policy in force and every deadline
// already started, so that re-evaluating writes nothing. Each backend
// writes BenchUser(i) for every i its fastest way and runs BulkPolicy.

// BenchPolicy: everyone needs a factor within 30 days; engineers sign in
// with hardware keys on current firmware; admins need two hardware keys
// (built in).
const BenchPolicy = `version: 1
rules:
  - name: everyone
    match: {everyone: true}
    require:
      min_factors: 1
      enroll_within: 30d
      max_inactivity: 180d
  - name: engineering
    match: {groups: [eng]}
    require:
      min_factors: 1
      allowed_kinds: [hwkey, test]
      verification_kinds: [hwkey]
      min_firmware: {"YubiKey 5": 5.7.0}
      piv: {pin_policies: [once, always]}
      enroll_within: 14d
`

// BenchStricter asks engineers for two factors: the dry run's change.
const BenchStricter = `version: 1
rules:
  - name: everyone
    match: {everyone: true}
    require:
      min_factors: 1
      enroll_within: 30d
      max_inactivity: 180d
  - name: engineering
    match: {groups: [eng]}
    require:
      min_factors: 2
      allowed_kinds: [hwkey, test]
      verification_kinds: [hwkey]
      min_firmware: {"YubiKey 5": 5.7.0}
      piv: {pin_policies: [once, always]}
      enroll_within: 14d
`

// BenchNow is the benchmark's clock.
var BenchNow = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

// benchHWKind is the test kind as a hardware key.
type benchHWKind struct{ coretest.Kind }

func (benchHWKind) Describe(context.Context) (sdk.Info, error) {
	return sdk.Info{Kind: "hwkey", DisplayName: "Hardware test key", Hardware: true}, nil
}

// BenchSizes are the numbers of users: 100,000, or 1,000,000 with
// BENCH_LARGE=1 (make bench).
func BenchSizes() []int {
	if os.Getenv("BENCH_LARGE") != "" {
		return []int{1_000_000}
	}
	return []int{100_000}
}

// BenchKeep is the folder where benchmarks keep data that takes minutes
// to build (KEYFLEET_BENCH_KEEP; make bench uses var/bench), or "".
func BenchKeep() string { return os.Getenv("KEYFLEET_BENCH_KEEP") }

var benchEvidence = func() json.RawMessage {
	ev := attest.Evidence{Format: "piv", Vendor: "Yubico", Model: "YubiKey 5", Serial: 1, Firmware: "5.7.4",
		FormFactor: "USB-A Keychain", KeyAlgorithm: "EC-P256", PINPolicy: "once", TouchPolicy: "always",
		AttestationType: attest.AttestationBasic, PublicKey: make([]byte, 91), Chain: [][]byte{make([]byte, 700), make([]byte, 800)}}
	b, _ := json.Marshal(ev)
	return b
}()

// BenchUser is user i: a third each in eng, sales and ops, one in fifty
// an admin, with a PIV key (one in ten on old firmware) and a software
// factor, and their deadlines started a week before BenchNow.
func BenchUser(i int) (core.User, []core.Factor, map[string]time.Time) {
	now := BenchNow
	created := now.Add(-30 * 24 * time.Hour)
	u := core.User{ID: fmt.Sprintf("usr_bench%08d", i), Username: fmt.Sprintf("user%08d", i), Kind: api.KindPerson,
		Status: api.UserActive, Roles: []string{api.RoleUser}, Groups: []string{[]string{"eng", "sales", "ops"}[i%3]},
		Email: fmt.Sprintf("user%08d@example.com", i), DisplayName: fmt.Sprintf("User %d", i), CreatedAt: created, UpdatedAt: created}
	if i%50 == 0 {
		u.Roles = append(u.Roles, api.RoleAdmin)
	}
	ev := benchEvidence
	if i%10 == 0 {
		var e attest.Evidence
		_ = json.Unmarshal(ev, &e)
		e.Firmware = "5.4.3"
		ev, _ = json.Marshal(e)
	}
	used := now.Add(-time.Duration(i%90) * 24 * time.Hour)
	factors := []core.Factor{
		{Kind: "hwkey", Evidence: ev, DeviceID: fmt.Sprintf("dev_bench%08d", i)},
		{Kind: "test", Public: json.RawMessage(`{"alg":"SHA1","digits":6,"period":30}`), Secret: make([]byte, 60)},
	}
	for k := range factors {
		f := &factors[k]
		f.ID, f.UserID, f.State, f.Label = fmt.Sprintf("fac_bench%08d%d", i, k), u.ID, api.FactorActive, f.Kind
		f.CreatedAt, f.ActivatedAt, f.LastUsedAt = created, &created, &used
	}
	week := now.Add(-7 * 24 * time.Hour)
	return u, factors, map[string]time.Time{"everyone": week, "engineering": week, policy.BuiltinPrivileged: week}
}

// BenchService is the domain service on st at BenchNow, with the kinds
// BenchUser's factors have. With apply, it applies BenchPolicy first
// (before the users are written).
func BenchService(st core.Store, key []byte, apply bool) (*core.Service, error) {
	sl, err := seal.New(key)
	if err != nil {
		return nil, err
	}
	svc, err := core.New(core.Config{Store: st, Sealer: sl, Kinds: []sdk.Factor{coretest.Kind{}, benchHWKind{}},
		Now: func() time.Time { return BenchNow }})
	if err != nil {
		return nil, err
	}
	if apply {
		if _, err := svc.ApplyPolicy(context.Background(), core.System, api.PolicyDocument{Document: BenchPolicy}); err != nil {
			return nil, err
		}
	}
	return svc, nil
}

// BulkPolicy runs the bulk benchmarks on a store holding BenchUser(i) for
// i < n under BenchPolicy: reading every user's policy facts only (scan),
// re-evaluating everyone (nothing changes), the compliance report, and a
// dry run of BenchStricter. server, if not nil, tells how much CPU time a
// database server has spent so far, to report beside this process's.
func BulkPolicy(b *testing.B, n int, st core.Store, svc *core.Service, server func() time.Duration) {
	ctx := context.Background()
	name := fmt.Sprintf("%dk-users-2-factors", n/1000)
	measure := func(b *testing.B, n int, op func() (int, error)) {
		var s0 time.Duration
		if server != nil {
			s0 = server()
		}
		benchUsers(b, n, op)
		if server != nil {
			b.ReportMetric(float64((server()-s0).Microseconds())/float64(b.N*n), "server-cpu-us/user")
		}
	}
	b.Run("scan-only/"+name, func(b *testing.B) {
		measure(b, n, func() (int, error) { return scanCount(st) })
	})
	b.Run("reevaluate/"+name, func(b *testing.B) {
		measure(b, n, func() (int, error) {
			out, err := svc.Reevaluate(ctx, core.System)
			if err == nil && out.Started != 0 {
				err = fmt.Errorf("%d deadlines started; want none", out.Started)
			}
			return out.Users, err
		})
	})
	b.Run("report/"+name, func(b *testing.B) {
		measure(b, n, func() (int, error) {
			out, err := svc.ComplianceReport(ctx, core.System, "", 14*24*time.Hour)
			return out.Overall.Users, err
		})
	})
	b.Run("dry-run/"+name, func(b *testing.B) {
		measure(b, n, func() (int, error) {
			out, err := svc.DryRunPolicy(ctx, core.System, api.PolicyDocument{Document: BenchStricter})
			if err == nil && out.Changed == 0 {
				err = fmt.Errorf("the dry run changed nobody")
			}
			return out.Users, err
		})
	})
}

// benchUsers runs op b.N times, checks it saw n users, and reports users/s
// and the heap.
func benchUsers(b *testing.B, n int, op func() (int, error)) {
	runtime.GC()
	before, peak, cpu0 := heapInuse(), watchHeap(), cpuTime()
	b.ResetTimer()
	for range b.N {
		got, err := op()
		if err != nil || got != n {
			b.Fatalf("saw %d users, want %d: %v", got, n, err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "users/s")
	// CPU time per user of this process, every goroutine and the GC
	// included (PostgreSQL's own is not counted): what the rate would be
	// on free cores is GOMAXPROCS / this.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N*n), "cpu-us/user")
	b.ReportMetric(float64(before)/(1<<20), "heap-before-MB")
	b.ReportMetric(float64(peak())/(1<<20), "heap-peak-MB")
}

// scanCount reads every user's records without decoding them: the
// reader stage of bulk evaluation, which bounds it.
func scanCount(st core.Store) (int, error) {
	n := 0
	err := st.View(context.Background(), func(tx core.ReadTx) error {
		return tx.ScanPolicyFacts("", func(core.PolicyFactsRecord) error {
			n++
			return nil
		})
	})
	return n, err
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func heapInuse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// watchHeap samples HeapInuse every 20 ms until the returned function is
// called, which returns the largest sample.
func watchHeap() func() uint64 {
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			peak.Store(max(peak.Load(), heapInuse()))
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(stop)
		<-done
		return peak.Load()
	}
}
