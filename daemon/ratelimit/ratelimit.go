package ratelimit

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Config configures a Limiter. The zero value is the keyfleetd default.
type Config struct {
	// PerAddress is how many attempts one client address may make in a
	// minute (default 10). It is also the burst: a client that waited a
	// minute may make that many at once.
	PerAddress int
	// PerTarget is how many attempts may be aimed at one account or
	// credential in a minute, from all addresses together (default 20).
	PerTarget int
	// MaxEntries bounds how many buckets are kept (default 100,000).
	MaxEntries int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Limiter counts attempts per client address and per target. It is safe
// for concurrent use.
type Limiter struct {
	perAddress, perTarget int
	max                   int
	now                   func() time.Time

	mu  sync.Mutex
	m   map[string]*list.Element // of *entry
	lru list.List                // most recently used first
}

type entry struct {
	key string
	lim *rate.Limiter
}

// Decision is the answer to one attempt.
type Decision struct {
	OK bool
	// RetryAfter is how long to wait before the next attempt can go ahead
	// (whole seconds, at least one) when OK is false.
	RetryAfter time.Duration
	// ByTarget is set when the attempt was refused because too many were
	// aimed at its target, rather than because of its address.
	ByTarget bool
}

// sweepPerCall bounds how many refilled buckets one call drops, so no call
// does more than a constant amount of work.
const sweepPerCall = 8

// New validates cfg and returns an empty Limiter.
func New(cfg Config) (*Limiter, error) {
	if cfg.PerAddress < 0 || cfg.PerTarget < 0 || cfg.MaxEntries < 0 {
		return nil, errors.New("ratelimit: limits and MaxEntries cannot be negative")
	}
	l := &Limiter{perAddress: cfg.PerAddress, perTarget: cfg.PerTarget, max: cfg.MaxEntries, now: cfg.Now,
		m: map[string]*list.Element{}}
	setDefault(&l.perAddress, 10)
	setDefault(&l.perTarget, 20)
	setDefault(&l.max, 100_000)
	if l.max < 2 {
		return nil, fmt.Errorf("ratelimit: MaxEntries %d must be at least 2 (an address and a target)", l.max)
	}
	if l.now == nil {
		l.now = time.Now
	}
	return l, nil
}

func setDefault(p *int, v int) {
	if *p == 0 {
		*p = v
	}
}

// Allow counts one attempt from client (an address as daemon/clientaddr
// gives it) aimed at target ("" when the attempt names none) and reports
// whether it may go ahead.
func (l *Limiter) Allow(client, target string) Decision {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	addr := l.bucket("a "+addressKey(client), l.perAddress)
	if addr.TokensAt(now) < 1 {
		return refused(addr, now, false)
	}
	var tgt *rate.Limiter
	if target != "" {
		if tgt = l.bucket("t "+bounded(target), l.perTarget); tgt.TokensAt(now) < 1 {
			return refused(tgt, now, true)
		}
		tgt.AllowN(now, 1)
	}
	addr.AllowN(now, 1)
	return Decision{OK: true}
}

func refused(lim *rate.Limiter, now time.Time, byTarget bool) Decision {
	missing := 1 - lim.TokensAt(now)
	wait := time.Duration(math.Ceil(missing/float64(lim.Limit()))) * time.Second
	return Decision{RetryAfter: max(wait, time.Second), ByTarget: byTarget}
}

// bucket returns the bucket filed under key, making it (and making room
// for it) when there is none, and marks it most recently used.
func (l *Limiter) bucket(key string, perMinute int) *rate.Limiter {
	if el, ok := l.m[key]; ok {
		l.lru.MoveToFront(el)
		return el.Value.(*entry).lim
	}
	for len(l.m) >= l.max {
		l.remove(l.lru.Back())
	}
	e := &entry{key: key, lim: rate.NewLimiter(rate.Limit(float64(perMinute)/60), perMinute)}
	l.m[key] = l.lru.PushFront(e)
	return e.lim
}

// sweep drops least recently used buckets that have filled up again:
// they hold nothing a new bucket would not.
func (l *Limiter) sweep(now time.Time) {
	for range sweepPerCall {
		el := l.lru.Back()
		if el == nil {
			return
		}
		e := el.Value.(*entry)
		if e.lim.TokensAt(now) < float64(e.lim.Burst()) {
			return
		}
		l.remove(el)
	}
}

func (l *Limiter) remove(el *list.Element) {
	delete(l.m, el.Value.(*entry).key)
	l.lru.Remove(el)
}

// Len is the number of buckets held (for tests and metrics).
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// addressKey counts an IPv6 client by its /64: one host usually holds a
// whole /64 and could otherwise take a fresh address for every attempt.
func addressKey(client string) string {
	a, err := netip.ParseAddr(client)
	if err != nil || !a.Is6() || a.Is4In6() {
		return bounded(client)
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// bounded keeps keys short whatever a client sends: a long one is replaced
// by its SHA-256.
func bounded(s string) string {
	if len(s) <= 64 {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}
