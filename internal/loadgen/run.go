package loadgen

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Op is one operation of a run; i is its index in the run.
type Op func(ctx context.Context, i int) error

// Result is what a run measured.
type Result struct {
	Ops       int
	Errors    int
	FirstErr  error
	Elapsed   time.Duration
	Latencies []time.Duration // sorted
	// Later are the latencies of every operation but the first wave
	// (the first as many as there are clients: all sent at the same
	// instant when the run starts), sorted.
	Later []time.Duration
}

// Rate is operations per second.
func (r Result) Rate() float64 { return float64(r.Ops) / r.Elapsed.Seconds() }

// Percentile is the latency below which p (0 to 1) of the operations
// finished.
func (r Result) Percentile(p float64) time.Duration { return percentile(r.Latencies, p) }

// LaterPercentile is Percentile over the operations after the first wave.
func (r Result) LaterPercentile(p float64) time.Duration { return percentile(r.Later, p) }

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Run runs n operations from clients goroutines, each taking the next
// operation as soon as its last one finished (a closed loop, as clients
// waiting for their answer do).
func Run(ctx context.Context, n, clients int, op Op) Result {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var errs atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				t := time.Now()
				err := op(ctx, i)
				lat[i] = time.Since(t)
				if err != nil {
					errs.Add(1)
					once.Do(func() { firstErr = fmt.Errorf("operation %d: %w", i, err) })
				}
			}
		}()
	}
	wg.Wait()
	r := Result{Ops: n, Errors: int(errs.Load()), FirstErr: firstErr, Elapsed: time.Since(start), Latencies: lat}
	// Operations are taken in index order: the first wave has the first
	// clients indexes.
	r.Later = slices.Clone(lat[min(clients, n):])
	slices.Sort(r.Later)
	slices.Sort(r.Latencies)
	return r
}
