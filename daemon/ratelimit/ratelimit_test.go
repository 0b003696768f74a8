package ratelimit

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
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

func newLimiter(t testing.TB, cfg Config) (*Limiter, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)}
	cfg.Now = c.now
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l, c
}

func TestOneAddressGetsItsAttemptsAMinuteAndThenWaits(t *testing.T) {
	l, c := newLimiter(t, Config{})
	for i := range 10 {
		if d := l.Allow("192.0.2.1", ""); !d.OK {
			t.Fatalf("attempt %d refused", i+1)
		}
	}
	d := l.Allow("192.0.2.1", "")
	if d.OK || d.ByTarget || d.RetryAfter != 6*time.Second {
		t.Fatalf("the 11th attempt: %+v, want refused for the address with 6s to wait", d)
	}
	if !l.Allow("192.0.2.2", "").OK {
		t.Fatal("another address was refused")
	}
	c.add(6 * time.Second)
	if !l.Allow("192.0.2.1", "").OK || l.Allow("192.0.2.1", "").OK {
		t.Fatal("six seconds later exactly one more attempt should go ahead")
	}
}

func TestAGuesserSpreadOverManyAddressesIsSlowedPerAccount(t *testing.T) {
	l, _ := newLimiter(t, Config{PerAddress: 10, PerTarget: 20})
	allowed := 0
	for i := range 100 {
		if l.Allow(fmt.Sprintf("198.51.100.%d", i), "user:alice").OK {
			allowed++
		}
	}
	if allowed != 20 {
		t.Fatalf("%d attempts on alice from 100 addresses went ahead, want 20", allowed)
	}
	d := l.Allow("203.0.113.1", "user:alice")
	if d.OK || !d.ByTarget || d.RetryAfter != 3*time.Second {
		t.Fatalf("one more attempt on alice: %+v, want refused for the target with 3s to wait", d)
	}
	// The refused attempts on alice took nothing from the addresses.
	for i := range 10 {
		if !l.Allow("203.0.113.1", "user:bob").OK {
			t.Fatalf("attempt %d on bob from an address refused only for alice was refused", i+1)
		}
	}
}

func TestAnIPv6HostCannotTakeAFreshAddressForEveryAttempt(t *testing.T) {
	l, _ := newLimiter(t, Config{PerAddress: 3})
	for i := range 3 {
		if !l.Allow(fmt.Sprintf("2001:db8:1:2::%x", i+1), "").OK {
			t.Fatalf("attempt %d refused", i+1)
		}
	}
	if l.Allow("2001:db8:1:2:ffff::9", "").OK {
		t.Fatal("a fourth address in the same /64 was allowed")
	}
	if !l.Allow("2001:db8:1:3::1", "").OK {
		t.Fatal("the next /64 was refused")
	}
}

func TestMemoryStaysBounded(t *testing.T) {
	t.Run("the cap holds against a flood of addresses", func(t *testing.T) {
		l, _ := newLimiter(t, Config{MaxEntries: 1000})
		for i := range 50_000 {
			l.Allow(fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255), fmt.Sprintf("enrolment:%d", i))
		}
		if n := l.Len(); n > 1000 {
			t.Fatalf("%d buckets held, cap 1000", n)
		}
	})
	t.Run("buckets that filled up again are dropped", func(t *testing.T) {
		l, c := newLimiter(t, Config{})
		for i := range 500 {
			l.Allow(fmt.Sprintf("10.0.%d.%d", i>>8, i&255), "")
		}
		c.add(time.Minute)
		for i := range 100 {
			l.Allow("192.0.2.1", fmt.Sprint(i%2)) // each call drops a few idle ones
		}
		if n := l.Len(); n != 3 {
			t.Fatalf("%d buckets held a minute later, want 3 (the active address and its two targets)", n)
		}
	})
	t.Run("a busy bucket is not dropped as idle", func(t *testing.T) {
		l, c := newLimiter(t, Config{PerAddress: 2})
		l.Allow("192.0.2.1", "")
		l.Allow("192.0.2.1", "")
		c.add(10 * time.Second)
		l.Allow("192.0.2.2", "") // sweeps; 192.0.2.1 has not refilled
		if l.Allow("192.0.2.1", "").OK {
			t.Fatal("a drained bucket was forgotten before it refilled")
		}
	})
	t.Run("a long target costs no more than a short one", func(t *testing.T) {
		l, _ := newLimiter(t, Config{})
		long := strings.Repeat("x", 1<<20)
		l.Allow("192.0.2.1", long)
		for k := range l.m {
			if len(k) > 80 {
				t.Fatalf("a key of %d bytes is held", len(k))
			}
		}
		for i := range 19 {
			l.Allow(fmt.Sprintf("198.51.100.%d", i), long)
		}
		if l.Allow("192.0.2.3", long).OK {
			t.Fatal("the hashed long target was not counted as one")
		}
	})
}

func TestConcurrentAttemptsNeverExceedTheLimit(t *testing.T) {
	l, _ := newLimiter(t, Config{PerAddress: 1000, PerTarget: 50})
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				if l.Allow(fmt.Sprintf("192.0.2.%d", (g*100+i)%250), "user:alice").OK {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if allowed != 50 {
		t.Fatalf("%d attempts went ahead, want exactly 50", allowed)
	}
}

func TestBadConfigIsRefused(t *testing.T) {
	for _, cfg := range []Config{{PerAddress: -1}, {PerTarget: -5}, {MaxEntries: 1}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

// BenchmarkAllowWhenFull is one attempt from a new address against a new
// target while the limiter holds its cap of busy buckets: the cost must not
// grow with the number held.
func BenchmarkAllowWhenFull(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			l, _ := newLimiter(b, Config{MaxEntries: n})
			for i := range n {
				l.Allow(fmt.Sprintf("a%d", i), "")
			}
			keys := make([]string, 4096)
			for i := range keys {
				keys[i] = fmt.Sprintf("b%d", i)
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				l.Allow(keys[i%len(keys)], keys[(i+1)%len(keys)])
			}
		})
	}
}
