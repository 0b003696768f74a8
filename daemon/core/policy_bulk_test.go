package core

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/attest"
	"github.com/keyfleet/keyfleet/plugins/sdk"
	"github.com/keyfleet/keyfleet/policy"
)

// memRecord is a user's facts already in memory.
type memRecord struct {
	f   PolicyFacts
	err error
}

func (m memRecord) Facts() (PolicyFacts, error) { return m.f, m.err }

func (m memRecord) UserID() string { return m.f.User.ID }

// bulkService is a service with a hardware kind and a software kind, and
// no store: bulk passes here read from memory.
func bulkService(t testing.TB) *Service {
	s, err := New(Config{Store: struct{ Store }{}, Sealer: struct{ Sealer }{}})
	if err != nil {
		t.Fatal(err)
	}
	s.kinds["hwkey"] = kind{info: sdk.Info{Kind: "hwkey", Hardware: true}}
	s.kinds["test"] = kind{info: sdk.Info{Kind: "test"}}
	return s
}

// memUsers sends n users, cycling through templates and numbering them.
func memUsers(n int, templates []PolicyFacts) func(context.Context, func(PolicyFactsRecord) error) error {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("usr_%08d", i)
	}
	return func(_ context.Context, send func(PolicyFactsRecord) error) error {
		for i := range n {
			f := templates[i%len(templates)]
			f.User.ID = ids[i]
			if err := send(memRecord{f: f}); err != nil {
				return err
			}
		}
		return nil
	}
}

// benchFacts is user i as the store benchmark writes it
// (daemon/store/policy_bench_test.go): a PIV key (one in ten on old
// firmware) and a software factor, a third each in eng, sales and ops,
// one in fifty an admin, deadlines started a week ago.
func benchFacts(i int, now time.Time) PolicyFacts {
	created, used, week := now.Add(-30*24*time.Hour), now.Add(-time.Duration(i%90)*24*time.Hour), now.Add(-7*24*time.Hour)
	u := UserFacts{ID: fmt.Sprintf("usr_%08d", i), Username: fmt.Sprintf("user%08d", i), Kind: api.KindPerson,
		Roles: []string{api.RoleUser}, Groups: []string{[]string{"eng", "sales", "ops"}[i%3]}, CreatedAt: created}
	if i%50 == 0 {
		u.Roles = append(u.Roles, api.RoleAdmin)
	}
	ev := &attest.Evidence{Format: "piv", Vendor: "Yubico", Model: "YubiKey 5", Serial: uint32(i), Firmware: "5.7.4",
		FormFactor: "USB-A Keychain", KeyAlgorithm: "EC-P256", PINPolicy: "once", TouchPolicy: "always", AttestationType: attest.AttestationBasic}
	if i%10 == 0 {
		ev.Firmware = "5.4.3"
	}
	return PolicyFacts{User: u, Factors: []FactorFacts{
		{ID: fmt.Sprintf("fac_%08d0", i), Kind: "hwkey", State: api.FactorActive, CreatedAt: created, ActivatedAt: &created, LastUsedAt: &used, Evidence: ev},
		{ID: fmt.Sprintf("fac_%08d1", i), Kind: "test", State: api.FactorActive, CreatedAt: created, ActivatedAt: &created, LastUsedAt: &used},
	}, FirstApplied: map[string]time.Time{"everyone": week, "engineering": week, policy.BuiltinPrivileged: week}}
}

const bulkBenchPolicy = `version: 1
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

// BenchmarkEvaluateInMemory is bulk evaluation without the store: a
// million users (10,000 distinct ones, cycled) through the same pipeline
// as re-evaluation and reports, evaluated and tallied on every CPU.
func BenchmarkEvaluateInMemory(b *testing.B) {
	const n = 1_000_000
	s := bulkService(b)
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	doc, err := policy.Parse("bench.yaml", []byte(bulkBenchPolicy))
	if err != nil {
		b.Fatal(err)
	}
	templates := make([]PolicyFacts, 10_000)
	for i := range templates {
		templates[i] = benchFacts(i, now)
	}
	read := memUsers(n, templates)
	runtime.GC()
	cpu0 := cpuTime()
	b.ResetTimer()
	for range b.N {
		ts, users := newTallies(), 0
		err := s.runBulk(context.Background(), bulkPass{read: read,
			eval: func(w int, sub *bulkSubject) {
				sub.d = policy.Evaluate(doc, sub.user, sub.factors, sub.facts.FirstApplied, sub.facts.Exemptions, now)
				ts[w].Add(sub.user, sub.factors, sub.d)
			},
			collect: func(subs []bulkSubject) error { users += len(subs); return nil }})
		if c := ts.merged(); err != nil || users != n || c.Users != n || c.Compliant == n {
			b.Fatalf("%d users, %+v, %v", users, c.Counts, err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "users/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N*n), "cpu-us/user")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestBulkPassesHandUsersBackInOrderAndStopAtTheFirstError(t *testing.T) {
	s := bulkService(t)
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	templates := []PolicyFacts{benchFacts(0, now), benchFacts(1, now), benchFacts(2, now)}
	boom := errors.New("boom")
	for _, tc := range []struct {
		name      string
		read      func(context.Context, func(PolicyFactsRecord) error) error
		failAfter int // collect fails once it saw this many users; 0 never
		want      error
		wantUsers int
	}{
		{"every user comes back, in order", memUsers(5000, templates), 0, nil, 5000},
		{"no user is no error", memUsers(0, templates), 0, nil, 0},
		{"a read error ends the pass", func(ctx context.Context, send func(PolicyFactsRecord) error) error {
			_ = memUsers(300, templates)(ctx, send)
			return boom
		}, 0, boom, 256}, // the batch it was filling is not handed on
		{"a record that does not decode ends the pass", func(ctx context.Context, send func(PolicyFactsRecord) error) error {
			_ = memUsers(600, templates)(ctx, send)
			return send(memRecord{err: boom})
		}, 0, boom, 512},
		{"a collect error ends the pass", memUsers(100_000, templates), 1000, boom, 1024},
	} {
		t.Run(tc.name, func(t *testing.T) {
			users := 0
			err := s.runBulk(context.Background(), bulkPass{read: tc.read,
				eval: func(_ int, sub *bulkSubject) { sub.d.Counted = len(sub.factors) },
				collect: func(subs []bulkSubject) error {
					for _, sub := range subs {
						if want := fmt.Sprintf("usr_%08d", users); sub.facts.User.ID != want || sub.d.Counted != 2 {
							return fmt.Errorf("got %s (%d factors) where %s was due", sub.facts.User.ID, sub.d.Counted, want)
						}
						users++
					}
					if tc.failAfter > 0 && users >= tc.failAfter {
						return boom
					}
					return nil
				}})
			if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) || users != tc.wantUsers {
				t.Fatalf("pass = %v after %d users; want %v after %d", err, users, tc.want, tc.wantUsers)
			}
		})
	}
}
