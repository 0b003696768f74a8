package core

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"time"

	"github.com/keyfleet/keyfleet/daemon/foreground"
	"github.com/keyfleet/keyfleet/policy"
)

// Bulk evaluation (re-evaluation after an apply, dry runs, compliance
// reports) streams every user's policy facts from one snapshot on one
// goroutine, evaluates them on every CPU (policy.Evaluate is pure and the
// service's kinds are read-only) and hands them back in id order, a batch
// at a time. At most bulkInFlight batches exist at once: memory stays flat
// however many users there are.

// bulkBatchSize is how many users travel together between the stages.
const bulkBatchSize = 256

// bulkSubject is one user on their way through a bulk pass.
type bulkSubject struct {
	rec     PolicyFactsRecord
	err     error // decoding rec
	facts   PolicyFacts
	user    policy.User
	factors []policy.Factor
	// skip is set by eval for a user the pass leaves out (a report for
	// one group); d and d2 are eval's decisions.
	skip  bool
	d, d2 policy.Decision
}

// bulkBatch is a run of users, done once every one is evaluated.
type bulkBatch struct {
	subs []bulkSubject
	done chan struct{}
}

// bulkPass says what one pass does. read runs on the reader goroutine and
// calls send with every user in id order; eval runs on a worker (numbered
// from 0 to workers-1) with the user's facts decoded and their policy
// types filled in; collect runs on the caller's goroutine with each
// batch, in order.
type bulkPass struct {
	read    func(ctx context.Context, send func(PolicyFactsRecord) error) error
	eval    func(worker int, sub *bulkSubject)
	collect func(subs []bulkSubject) error
}

// backgroundYield is the longest a background pass waits for the
// requests in flight before it goes on with one batch: on a server that
// is never idle, a sweep of a million users then takes a minute or so
// instead of seconds, and still ends.
const backgroundYield = 20 * time.Millisecond

// bulkWorkers is how many goroutines evaluate.
func bulkWorkers() int { return runtime.GOMAXPROCS(0) }

// readStore reads every user; setup runs first, in the first read
// transaction (to read the current policy in the same snapshot as the
// first users). With fg nil it reads in one snapshot. With a gate (a
// background pass, Config.Foreground) it gives way to the requests being
// served: after each batch of users, if there are any, it ends its read
// transaction, waits until they end (backgroundYield at most) and goes
// on after the last user read, in a new one. It never waits inside a
// transaction, where it would hold the store's snapshot (and, on Badger,
// the lock a reopen waits for) while it waits.
func (s *Service) readStore(fg *foreground.Gate, setup func(tx ReadTx) error) func(context.Context, func(PolicyFactsRecord) error) error {
	return func(ctx context.Context, send func(PolicyFactsRecord) error) error {
		after, first := "", true
		for {
			err := s.store.View(ctx, func(tx ReadTx) error {
				if first {
					if err := setup(tx); err != nil {
						return err
					}
					first = false
				}
				n := 0
				return tx.ScanPolicyFacts(after, func(r PolicyFactsRecord) error {
					if n == bulkBatchSize {
						if fg.InFlight() > 0 {
							return errGiveWay
						}
						n = 0
					}
					n++
					after = r.UserID()
					return send(r)
				})
			})
			if !errors.Is(err, errGiveWay) {
				return err
			}
			if err := fg.Wait(ctx, backgroundYield); err != nil {
				return err
			}
		}
	}
}

// errGiveWay ends a background pass's read transaction for the requests
// in flight.
var errGiveWay = errors.New("giving way to requests in flight")

// runBulk runs a pass. It returns the first error of read or collect.
func (s *Service) runBulk(ctx context.Context, p bulkPass) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := bulkWorkers()
	work := make(chan *bulkBatch, workers)
	order := make(chan *bulkBatch, 2*workers+2)
	var wg sync.WaitGroup
	var readErr error
	wg.Add(1 + workers)
	go func() {
		defer wg.Done()
		defer close(work)
		defer close(order)
		readErr = s.produce(ctx, p.read, work, order)
	}()
	for w := range workers {
		go func() {
			defer wg.Done()
			for b := range work {
				s.evalBatch(w, b, p.eval)
			}
		}()
	}
	err := collectInOrder(ctx, order, p.collect)
	cancel()
	wg.Wait()
	if err == nil {
		err = readErr
	}
	return err
}

// produce reads users into batches and sends each to the workers and, in
// the same order, to the collector.
func (s *Service) produce(ctx context.Context, read func(context.Context, func(PolicyFactsRecord) error) error, work, order chan<- *bulkBatch) error {
	b := newBulkBatch()
	flush := func() error {
		for _, ch := range []chan<- *bulkBatch{order, work} {
			select {
			case ch <- b:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		b = newBulkBatch()
		return nil
	}
	err := read(ctx, func(r PolicyFactsRecord) error {
		b.subs = append(b.subs, bulkSubject{rec: r})
		if len(b.subs) < bulkBatchSize {
			return nil
		}
		return flush()
	})
	if err == nil && len(b.subs) > 0 {
		err = flush()
	}
	return err
}

func newBulkBatch() *bulkBatch {
	return &bulkBatch{subs: make([]bulkSubject, 0, bulkBatchSize), done: make(chan struct{})}
}

// evalBatch decodes each user's facts, maps them to the policy's types
// and evaluates.
func (s *Service) evalBatch(w int, b *bulkBatch, eval func(int, *bulkSubject)) {
	defer close(b.done)
	for i := range b.subs {
		sub := &b.subs[i]
		if sub.facts, sub.err = sub.rec.Facts(); sub.err != nil {
			continue
		}
		sub.rec = nil
		sub.user = policyUserOf(sub.facts.User)
		sub.factors = make([]policy.Factor, len(sub.facts.Factors))
		for j, f := range sub.facts.Factors {
			sub.factors[j] = s.policyFactorOf(f)
		}
		eval(w, sub)
	}
}

// collectInOrder hands every batch to collect once evaluated, in the
// order read. After an error it stops; the caller cancels the rest.
func collectInOrder(ctx context.Context, order <-chan *bulkBatch, collect func([]bulkSubject) error) error {
	for b := range order {
		select {
		case <-b.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		for i := range b.subs {
			if err := b.subs[i].err; err != nil {
				return err
			}
		}
		if err := collect(b.subs); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// tallies is one policy.Tally per worker, merged at the end.
type tallies []policy.Tally

func newTallies() tallies { return make(tallies, bulkWorkers()) }

func (ts tallies) merged() policy.Compliance {
	var all policy.Tally
	for i := range ts {
		all.Merge(&ts[i])
	}
	return all.Compliance()
}
