// Package foreground lets keyfleetd's background passes give way to the
// requests people and systems are waiting on.
//
// A Gate counts the requests being served (API calls, pages, SCIM,
// RADIUS). A background pass, such as the compliance sweep over every
// user, calls Wait between batches: it goes on at once when nothing is
// being served and otherwise waits until the last request ends, or for at
// most a bound, so that a server that is never idle still finishes its
// passes, only more slowly. On two cores the sweep of a million users
// costs about five CPU-seconds; without the gate it took the cores from
// the lists opened in the same seconds (docs/benchmarks.md).
//
// A request that stays open without working (an event stream, a push
// companion's stream, an export streamed to a slow reader) calls Release
// once it starts waiting, so that it does not hold the passes back.
//
// A nil *Gate is valid: it never waits and counts nothing.
package foreground

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Gate counts the requests in flight. The zero value is ready to use.
type Gate struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops back to zero; nil while n is zero

	entered atomic.Int64 // requests counted, ever
	waits   atomic.Int64 // Waits that found a request in flight
	waited  atomic.Int64 // nanoseconds spent in those waits
}

// hold is one request's place in the count, given back once.
type hold struct {
	g    *Gate
	once sync.Once
}

func (h *hold) release() { h.once.Do(h.g.leave) }

type holdKey struct{}

// Enter counts a request until leave is called (or Release with the
// returned context, whichever comes first). Call leave when the request
// ends; calling it again does nothing.
func (g *Gate) Enter(ctx context.Context) (_ context.Context, leave func()) {
	if g == nil {
		return ctx, func() {}
	}
	g.entered.Add(1)
	g.mu.Lock()
	g.n++
	if g.n == 1 {
		g.idle = make(chan struct{})
	}
	g.mu.Unlock()
	h := &hold{g: g}
	return context.WithValue(ctx, holdKey{}, h), h.release
}

func (g *Gate) leave() {
	g.mu.Lock()
	g.n--
	if g.n == 0 {
		close(g.idle)
		g.idle = nil
	}
	g.mu.Unlock()
}

// Release stops counting the request ctx belongs to: it is about to wait
// for something other than keyfleetd's cores (a stream's next event, a
// slow reader). A context that Enter did not make is left alone.
func Release(ctx context.Context) {
	if h, ok := ctx.Value(holdKey{}).(*hold); ok {
		h.release()
	}
}

// Entered is how many requests were ever counted.
func (g *Gate) Entered() int64 {
	if g == nil {
		return 0
	}
	return g.entered.Load()
}

// InFlight is how many requests are counted now.
func (g *Gate) InFlight() int {
	if g == nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}

// Wait returns at once when no request is in flight; otherwise when the
// last one ends, after at most bound, or with ctx's error when ctx ends
// first.
func (g *Gate) Wait(ctx context.Context, bound time.Duration) error {
	if g == nil {
		return ctx.Err()
	}
	g.mu.Lock()
	idle := g.idle
	g.mu.Unlock()
	if idle == nil {
		return ctx.Err()
	}
	start := time.Now()
	t := time.NewTimer(bound)
	defer t.Stop()
	var err error
	select {
	case <-idle:
	case <-t.C:
	case <-ctx.Done():
		err = ctx.Err()
	}
	g.waits.Add(1)
	g.waited.Add(int64(time.Since(start)))
	return err
}

// Waited is how many of Wait's calls found a request in flight, and how
// long they waited in all.
func (g *Gate) Waited() (int64, time.Duration) {
	if g == nil {
		return 0, 0
	}
	return g.waits.Load(), time.Duration(g.waited.Load())
}
