package ratelimit

import (
	"container/list"
	"context"
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
	// MaxEntries bounds how many buckets are kept in memory (default
	// 100,000).
	MaxEntries int
	// Shared, if set, keeps the buckets instead of this process's memory,
	// so that several keyfleetd count attempts together (daemon/cluster
	// keeps them in PostgreSQL). The decisions are the same.
	Shared Shared
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Shared keeps token buckets where several keyfleetd see them.
type Shared interface {
	// Take decides one attempt at now against buckets: it goes ahead when
	// every bucket has a token, and then takes one from each; a refused
	// attempt takes nothing. It returns -1 when the attempt goes ahead,
	// else the index of the first bucket without a token and how long
	// until it has one. An error means nothing was counted.
	Take(ctx context.Context, now time.Time, buckets []Bucket) (refused int, wait time.Duration, err error)
}

// Bucket is one token bucket: it holds at most Burst tokens and gains one
// every Every.
type Bucket struct {
	Key   string
	Burst int
	Every time.Duration
}

// Limiter counts attempts per client address and per target. It is safe
// for concurrent use.
type Limiter struct {
	perAddress, perTarget int
	max                   int
	now                   func() time.Time
	shared                Shared

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
		shared: cfg.Shared, m: map[string]*list.Element{}}
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

// Check counts one attempt from client (an address as daemon/clientaddr
// gives it) aimed at target ("" when the attempt names none) and reports
// whether it may go ahead. It fails only with Config.Shared, when the
// shared buckets cannot be read or written (the error wraps Shared's);
// then nothing was counted, and the caller refuses the attempt.
func (l *Limiter) Check(ctx context.Context, client, target string) (Decision, error) {
	if l.shared == nil {
		return l.Allow(client, target), nil
	}
	buckets := []Bucket{{Key: "a " + addressKey(client), Burst: l.perAddress, Every: time.Minute / time.Duration(l.perAddress)}}
	if target != "" {
		buckets = append(buckets, Bucket{Key: "t " + bounded(target), Burst: l.perTarget, Every: time.Minute / time.Duration(l.perTarget)})
	}
	refused, wait, err := l.shared.Take(ctx, l.now(), buckets)
	if err != nil {
		return Decision{}, fmt.Errorf("counting an attempt: %w", err)
	}
	if refused < 0 {
		return Decision{OK: true}, nil
	}
	secs := time.Duration(math.Ceil(wait.Seconds())) * time.Second
	return Decision{RetryAfter: max(secs, time.Second), ByTarget: refused == 1}, nil
}

// Allow is Check in this process's memory. With Config.Shared it is
// Check, and an attempt that cannot be counted is refused.
func (l *Limiter) Allow(client, target string) Decision {
	if l.shared != nil {
		d, err := l.Check(context.Background(), client, target)
		if err != nil {
			return Decision{RetryAfter: time.Second}
		}
		return d
	}
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
	// Tokens are floats: five seconds of a 10-a-minute bucket leave a
	// wait of 1.0000000000002 s, which is 1 s.
	wait := time.Duration(math.Ceil(missing/float64(lim.Limit())-1e-9)) * time.Second
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
