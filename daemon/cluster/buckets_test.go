package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyfleet/keyfleet/daemon/cluster"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/ratelimit"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)} }

// limiter is a keyfleetd's limiter on n's database.
func (n *node) limiter(t *testing.T, c *clock, cfg ratelimit.Config) *ratelimit.Limiter {
	t.Helper()
	cfg.Shared, cfg.Now = &cluster.Buckets{Pool: n.st.Pool(), Sealer: n.st}, c.now
	l, err := ratelimit.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

type step struct {
	wait           time.Duration
	client, target string
}

func repeat(n int, s step) []step {
	out := make([]step, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func spread(n int, target string) []step {
	out := make([]step, n)
	for i := range out {
		out[i] = step{client: fmt.Sprintf("198.51.100.%d", i), target: target}
	}
	return out
}

func TestSharedBucketsDecideAsTheLimiterInMemoryDoes(t *testing.T) {
	scripts := []struct {
		name  string
		cfg   ratelimit.Config
		steps []step
	}{
		{"one address spends its minute and waits for each token", ratelimit.Config{}, append(append(
			repeat(12, step{client: "192.0.2.1"}),
			step{wait: 5 * time.Second, client: "192.0.2.1"}, step{wait: time.Second, client: "192.0.2.1"}, step{client: "192.0.2.1"}),
			step{wait: time.Minute, client: "192.0.2.1"})},
		{"a guesser spread over many addresses is slowed per enrolment", ratelimit.Config{}, append(
			spread(25, "enrolment enr_1"), step{wait: 2 * time.Second, client: "203.0.113.9", target: "enrolment enr_1"},
			step{wait: time.Second, client: "203.0.113.9", target: "enrolment enr_1"})},
		{"an attempt refused for its target takes nothing from its address", ratelimit.Config{PerAddress: 3, PerTarget: 2}, []step{
			{client: "192.0.2.7", target: "enrolment enr_2"}, {client: "192.0.2.7", target: "enrolment enr_2"},
			{client: "192.0.2.7", target: "enrolment enr_2"}, {client: "192.0.2.7", target: "enrolment enr_3"},
			{client: "192.0.2.7", target: "enrolment enr_3"}}},
		{"a known address with a target seen for the first time spends one token", ratelimit.Config{PerAddress: 3, PerTarget: 5}, []step{
			{client: "192.0.2.8"}, {client: "192.0.2.8", target: "enrolment enr_4"}, {client: "192.0.2.8"}, {client: "192.0.2.8"},
			{client: "192.0.2.8", target: "enrolment enr_5"}}},
		{"an IPv6 host is counted by its /64", ratelimit.Config{PerAddress: 2}, []step{
			{client: "2001:db8:1:2::1"}, {client: "2001:db8:1:2::2"}, {client: "2001:db8:1:2:ffff::9"}, {client: "2001:db8:1:3::1"}}},
	}
	for _, sc := range scripts {
		t.Run(sc.name, func(t *testing.T) {
			dsn, key := newDatabase(t)
			mc, sc2 := newClock(), newClock()
			cfg := sc.cfg
			cfg.Now = mc.now
			mem, err := ratelimit.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			shared := open(t, dsn, key).limiter(t, sc2, sc.cfg)
			for i, s := range sc.steps {
				mc.add(s.wait)
				sc2.add(s.wait)
				want := mem.Allow(s.client, s.target)
				got, err := shared.Check(context.Background(), s.client, s.target)
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Fatalf("attempt %d (%+v): shared %+v, in memory %+v", i+1, s, got, want)
				}
			}
		})
	}
}

func TestAGuesserGainsNothingBySpreadingAttemptsOverTwoKeyfleetd(t *testing.T) {
	dsn, key := newDatabase(t)
	c := newClock()
	a, b := open(t, dsn, key).limiter(t, c, ratelimit.Config{}), open(t, dsn, key).limiter(t, c, ratelimit.Config{})
	allowed := 0
	for i := range 20 {
		l := []*ratelimit.Limiter{a, b}[i%2]
		d, err := l.Check(context.Background(), "192.0.2.66", "")
		if err != nil {
			t.Fatal(err)
		}
		if d.OK {
			allowed++
		}
	}
	if allowed != 10 {
		t.Fatalf("%d of 20 attempts alternating between two keyfleetd went ahead, want 10 (one minute's budget)", allowed)
	}
	d, _ := b.Check(context.Background(), "192.0.2.66", "")
	if d.OK || d.RetryAfter != 6*time.Second {
		t.Fatalf("the next attempt: %+v, want refused with 6s to wait", d)
	}
}

func TestConcurrentAttemptsOnTwoKeyfleetdNeverExceedTheLimit(t *testing.T) {
	dsn, key := newDatabase(t)
	c := newClock()
	cfg := ratelimit.Config{PerAddress: 1000, PerTarget: 30}
	ls := []*ratelimit.Limiter{open(t, dsn, key).limiter(t, c, cfg), open(t, dsn, key).limiter(t, c, cfg)}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 25 {
				d, err := ls[g%2].Check(context.Background(), fmt.Sprintf("192.0.2.%d", (g*25+i)%250), "enrolment enr_target")
				if err != nil {
					t.Error(err)
					return
				}
				if d.OK {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != 30 {
		t.Fatalf("%d of 200 concurrent attempts went ahead, want exactly 30", n)
	}
}

func TestTheSharedBucketsHoldNoClientAddressOrCode(t *testing.T) {
	dsn, key := newDatabase(t)
	n := open(t, dsn, key)
	l := n.limiter(t, newClock(), ratelimit.Config{})
	if _, err := l.Check(context.Background(), "198.51.100.77", "enrolment enr_06h4secret"); err != nil {
		t.Fatal(err)
	}
	rows, err := n.st.Pool().Query(context.Background(), "SELECT k, full_at::text FROM rate_buckets")
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]byte, error) {
		var k []byte
		var at string
		err := r.Scan(&k, &at)
		return append(k, at...), err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d buckets stored, want 2 (the address and the enrolment)", len(got))
	}
	for _, row := range got {
		for _, secret := range []string{"198.51.100.77", "198.51.100", "enr_06h4secret"} {
			if bytes.Contains(row, []byte(secret)) {
				t.Fatalf("a stored bucket contains %q", secret)
			}
		}
	}
}

func TestAnAttemptThatCannotBeCountedIsRefused(t *testing.T) {
	dsn, key := newDatabase(t)
	n := open(t, dsn, key)
	l := n.limiter(t, newClock(), ratelimit.Config{})
	n.st.Close() // the database no longer answers this keyfleetd
	_, err := l.Check(context.Background(), "192.0.2.1", "")
	if !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("Check without the database: %v, want core.ErrUnavailable", err)
	}
	if d := l.Allow("192.0.2.1", ""); d.OK {
		t.Fatal("Allow let an attempt through that was not counted")
	}
}
