package radius

import (
	"context"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/keyfleet/keyfleet/daemon/ratelimit"
)

// userLimits is a token bucket per user name. Buckets that refilled are
// forgotten when the table is full; if it is still full (a flood of
// names), it starts afresh: core's lockout still stands behind it.
type userLimits struct {
	mu    sync.Mutex
	rate  rate.Limit
	burst int
	max   int
	m     map[string]*rate.Limiter
	// shared keeps the buckets in the database instead, when several
	// keyfleetd share one: a guesser gains nothing by sending a user's
	// attempts to each of them.
	shared ratelimit.Shared
}

const maxUserLimits = 100_000

func newUserLimits(r float64, burst int) *userLimits {
	return &userLimits{rate: rate.Limit(r), burst: burst, max: maxUserLimits, m: map[string]*rate.Limiter{}}
}

// normalName is how limits and challenges compare user names.
func normalName(user string) string { return strings.ToLower(strings.TrimSpace(user)) }

// allow takes a token from user's bucket. It fails only with shared
// buckets that cannot be read or written; then nothing was counted and
// the caller refuses the attempt.
func (u *userLimits) allow(ctx context.Context, user string, now time.Time) (bool, error) {
	name := normalName(user)
	if u.shared != nil {
		every := time.Duration(float64(time.Second) / float64(u.rate))
		refused, _, err := u.shared.Take(ctx, now, []ratelimit.Bucket{{Key: "radius-user " + name, Burst: u.burst, Every: every}})
		return refused < 0 && err == nil, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	l, ok := u.m[name]
	if !ok {
		if len(u.m) >= u.max {
			u.sweep(now)
		}
		l = rate.NewLimiter(u.rate, u.burst)
		u.m[name] = l
	}
	return l.AllowN(now, 1), nil
}

func (u *userLimits) sweep(now time.Time) {
	for name, l := range u.m {
		if l.TokensAt(now) >= float64(u.burst) {
			delete(u.m, name)
		}
	}
	if len(u.m) >= u.max {
		clear(u.m)
	}
}

// sampler coalesces a flood of like events (rate-limited or dropped
// requests) into one audit record per key and interval, carrying how many
// it stands for: each is audited, without a flood of requests becoming a
// flood of writes. What is held back is flushed by due.
type sampler[T any] struct {
	mu    sync.Mutex
	every time.Duration
	m     map[string]*sample[T]
}

type sample[T any] struct {
	what  T
	last  time.Time
	count int
}

// held is a sampled event with the number of events it stands for.
type held[T any] struct {
	what  T
	count int
}

const maxSamples = 10_000

func newSampler[T any](every time.Duration) *sampler[T] {
	return &sampler[T]{every: every, m: map[string]*sample[T]{}}
}

// note counts one event of key and reports whether to audit it now, with
// how many events the record stands for (this one and those held back
// since the last record of key).
func (s *sampler[T]) note(key string, what T, now time.Time) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if !ok {
		if len(s.m) >= maxSamples {
			clear(s.m) // a flood of keys: their counts start again
		}
		e = &sample[T]{}
		s.m[key] = e
	}
	e.what = what
	e.count++
	if ok && now.Sub(e.last) < s.every {
		return 0, false
	}
	n := e.count
	e.last, e.count = now, 0
	return n, true
}

// due returns the events held back for at least an interval, to record
// now, and forgets keys that had nothing for an interval.
func (s *sampler[T]) due(now time.Time) []held[T] {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []held[T]
	for key, e := range s.m {
		if now.Sub(e.last) < s.every {
			continue
		}
		if e.count == 0 {
			delete(s.m, key)
			continue
		}
		out = append(out, held[T]{e.what, e.count})
		e.last, e.count = now, 0
	}
	return out
}
