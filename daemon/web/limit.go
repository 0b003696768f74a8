package web

import (
	"net"
	"sync"
	"time"
)

// attemptsPerMinute bounds how often one client address may try a first
// sign-in code or pass, as the API does for POST /v1/passes/redeem: codes
// and passes are unguessable, and this keeps guessing slow as well.
const attemptsPerMinute = 10

// limiter counts attempts per client address in fixed one-minute windows.
type limiter struct {
	mu      sync.Mutex
	window  time.Time
	counted map[string]int
}

// allow records an attempt from addr and reports whether it is within
// the limit.
func (l *limiter) allow(addr string, now time.Time) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counted == nil || now.Sub(l.window) >= time.Minute {
		l.window, l.counted = now, map[string]int{}
	}
	l.counted[host]++
	return l.counted[host] <= attemptsPerMinute
}
