package store

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"sync"
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

// benchPolicy: everyone needs a factor within 30 days; engineers sign in
// with hardware keys on current firmware; admins need two hardware keys
// (built in).
const benchPolicy = `version: 1
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

// benchStricter asks engineers for two factors: the dry run's change.
const benchStricter = `version: 1
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

// benchHWKind is the test kind as a hardware key.
type benchHWKind struct{ coretest.Kind }

func (benchHWKind) Describe(context.Context) (sdk.Info, error) {
	return sdk.Info{Kind: "hwkey", DisplayName: "Hardware test key", Hardware: true}, nil
}

// benchSizes: 100,000 users by default (make bench); 1,000,000 with
// BENCH_LARGE=1 (about 4 GB in the temporary folder, minutes to build).
func benchSizes() []int {
	if os.Getenv("BENCH_LARGE") != "" {
		return []int{1_000_000}
	}
	return []int{100_000}
}

// BenchmarkBulkPolicy measures bulk evaluation from the encrypted store on
// disk: users with two factors each (a PIV key whose record carries a
// two-certificate chain, ≈2.5 KB, and a software factor), a policy in
// force and every deadline already started, so nothing new is written.
// It reports users/s and the Go heap in use before and at its peak.
func BenchmarkBulkPolicy(b *testing.B) {
	for _, n := range benchSizes() {
		st, svc := benchStore(b, n)
		ctx := context.Background()
		name := fmt.Sprintf("%dk-users-2-factors", n/1000)
		b.Run("scan-only/"+name, func(b *testing.B) {
			benchUsers(b, n, func() (int, error) { return scanCount(st) })
		})
		b.Run("reevaluate/"+name, func(b *testing.B) {
			benchUsers(b, n, func() (int, error) {
				out, err := svc.Reevaluate(ctx, core.System)
				if err == nil && out.Started != 0 {
					err = fmt.Errorf("%d deadlines started; want none", out.Started)
				}
				return out.Users, err
			})
		})
		b.Run("report/"+name, func(b *testing.B) {
			benchUsers(b, n, func() (int, error) {
				out, err := svc.ComplianceReport(ctx, core.System, "", 14*24*time.Hour)
				return out.Overall.Users, err
			})
		})
		b.Run("dry-run/"+name, func(b *testing.B) {
			benchUsers(b, n, func() (int, error) {
				out, err := svc.DryRunPolicy(ctx, core.System, api.PolicyDocument{Document: benchStricter})
				if err == nil && out.Changed == 0 {
					err = fmt.Errorf("the dry run changed nobody")
				}
				return out.Users, err
			})
		})
	}
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
	// CPU time per user, every goroutine and the GC included: what the
	// rate would be on free cores is GOMAXPROCS / this.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N*n), "cpu-us/user")
	b.ReportMetric(float64(before)/(1<<20), "heap-before-MB")
	b.ReportMetric(float64(peak())/(1<<20), "heap-peak-MB")
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

// scanCount reads every user's records without decoding them: the
// reader stage of bulk evaluation, which bounds it.
func scanCount(st *Store) (int, error) {
	n := 0
	err := st.View(context.Background(), func(tx core.ReadTx) error {
		return tx.ScanPolicyFacts("", func(core.PolicyFactsRecord) error {
			n++
			return nil
		})
	})
	return n, err
}

// benchStore opens an encrypted store on disk, applies benchPolicy and
// writes n users straight through Badger write batches (the API would
// take hours): the same records PutUser, PutFactor and PutFirstApplied
// write.
func benchStore(b *testing.B, n int) (*Store, *core.Service) {
	b.Helper()
	st, err := Open(Options{Dir: b.TempDir(), EncryptionKey: testKey})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	sl, _ := seal.New(testKey)
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	svc, err := core.New(core.Config{Store: st, Sealer: sl, Kinds: []sdk.Factor{coretest.Kind{}, benchHWKind{}},
		Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := svc.ApplyPolicy(context.Background(), core.System, api.PolicyDocument{Document: benchPolicy}); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := loadUsers(st, n, now); err != nil {
		b.Fatal(err)
	}
	b.Logf("wrote %d users in %s", n, time.Since(start).Round(time.Millisecond))
	return st, svc
}

// loadUsers writes n users on every CPU into one write batch.
func loadUsers(st *Store, n int, now time.Time) error {
	wb := st.db.NewWriteBatch()
	defer wb.Cancel()
	workers := runtime.GOMAXPROCS(0)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n && errs[w] == nil; i += workers {
				errs[w] = putBenchUser(wb, i, now)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return wb.Flush()
}

var benchEvidence = func() json.RawMessage {
	ev := attest.Evidence{Format: "piv", Vendor: "Yubico", Model: "YubiKey 5", Serial: 1, Firmware: "5.7.4",
		FormFactor: "USB-A Keychain", KeyAlgorithm: "EC-P256", PINPolicy: "once", TouchPolicy: "always",
		AttestationType: attest.AttestationBasic, PublicKey: make([]byte, 91), Chain: [][]byte{make([]byte, 700), make([]byte, 800)}}
	b, _ := json.Marshal(ev)
	return b
}()

// putBenchUser writes user i: a third each in eng, sales and ops, one in
// fifty an admin, with a PIV key (one in ten on old firmware) and a
// software factor, and their deadlines started a week ago.
func putBenchUser(s setter, i int, now time.Time) error {
	created := now.Add(-30 * 24 * time.Hour)
	u := core.User{ID: fmt.Sprintf("usr_bench%08d", i), Username: fmt.Sprintf("user%08d", i), Kind: api.KindPerson,
		Status: api.UserActive, Roles: []string{api.RoleUser}, Groups: []string{[]string{"eng", "sales", "ops"}[i%3]},
		Email: fmt.Sprintf("user%08d@example.com", i), DisplayName: fmt.Sprintf("User %d", i), CreatedAt: created, UpdatedAt: created}
	if i%50 == 0 {
		u.Roles = append(u.Roles, api.RoleAdmin)
	}
	if err := s.Set(key(pUsername, u.Username), []byte(u.ID)); err != nil {
		return err
	}
	if err := putUserRecords(s, u); err != nil {
		return err
	}
	ev := benchEvidence
	if i%10 == 0 {
		var e attest.Evidence
		_ = json.Unmarshal(ev, &e)
		e.Firmware = "5.4.3"
		ev, _ = json.Marshal(e)
	}
	used := now.Add(-time.Duration(i%90) * 24 * time.Hour)
	for k, f := range []core.Factor{
		{Kind: "hwkey", Evidence: ev, DeviceID: fmt.Sprintf("dev_bench%08d", i)},
		{Kind: "test", Public: json.RawMessage(`{"alg":"SHA1","digits":6,"period":30}`), Secret: make([]byte, 60)},
	} {
		f.ID, f.UserID, f.State, f.Label = fmt.Sprintf("fac_bench%08d%d", i, k), u.ID, api.FactorActive, f.Kind
		f.CreatedAt, f.ActivatedAt, f.LastUsedAt = created, &created, &used
		if err := putFactorRecords(s, f); err != nil {
			return err
		}
	}
	week := now.Add(-7 * 24 * time.Hour)
	return putFirstAppliedRecords(s, u.ID, map[string]time.Time{"everyone": week, "engineering": week, policy.BuiltinPrivileged: week})
}
