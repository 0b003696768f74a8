package events

import (
	"context"
	"errors"
	"fmt"
	"github.com/keyfleet/keyfleet/api"
	"sync"
	"time"

	"github.com/keyfleet/keyfleet/daemon/audit"
)

// sink is one delivery target. deliver sends a batch in order and returns
// nil only once the receiver has it (as far as the transport can tell);
// it is never called concurrently.
type sink interface {
	deliver(ctx context.Context, batch []Event) error
	close() error
}

// SinkStatus is one line of `keyfleet events status`.
type SinkStatus = api.SinkStatus

// runner moves one sink's cursor along the audit log.
type runner struct {
	m     *Manager
	cfg   SinkConfig
	sink  sink
	match matcher
	kick  chan struct{} // a replay moved the cursor
	// stop ends the loop and done is closed when it has; both nil while
	// the sink does not run (disabled, or Run has not started).
	stop context.CancelFunc
	done chan struct{}

	mu          sync.Mutex
	replaying   bool // a replay moved the cursor; the sink has not been told
	cursor      uint64
	gen         uint64 // bumped by rewind so an in-flight batch does not move the cursor back
	delivered   uint64
	failures    uint64
	retrying    bool
	stopped     *EpochError // set when the cursor belongs to another history (epoch.go)
	lastErr     string
	lastErrAt   time.Time
	deadLetters int
}

// load reads the persisted cursor, starting a new sink where StartAt says.
func (r *runner) load(ctx context.Context) error {
	seq, err := r.m.o.Cursors.Cursor(ctx, r.cfg.Name)
	if errors.Is(err, ErrNoCursor) {
		if r.cfg.StartAt == "head" {
			seq = r.m.o.Source.AuditHead().Seq
		}
		err = r.m.o.Cursors.SetCursor(ctx, r.cfg.Name, seq)
	}
	if err != nil {
		return fmt.Errorf("loading cursor: %w", err)
	}
	dls, err := r.m.o.Cursors.DeadLetters(ctx, r.cfg.Name)
	if err != nil {
		return fmt.Errorf("loading dead letters: %w", err)
	}
	r.mu.Lock()
	r.cursor, r.deadLetters, r.stopped = seq, len(dls), nil
	r.mu.Unlock()
	if rs, ok := r.sink.(resumer); ok {
		rs.resume()
	}
	return r.stopIfRewound(ctx, seq)
}

// tellReplay tells a resumer sink that a replay asks for events again.
func (r *runner) tellReplay() {
	r.mu.Lock()
	replaying := r.replaying
	r.replaying = false
	r.mu.Unlock()
	if rs, ok := r.sink.(resumer); ok && replaying {
		rs.replayed()
	}
}

// resumer is a sink that can tell what it already delivered past the
// stored cursor (the file sink reads its file's end): it is told when
// delivery starts from the stored cursor, and when an operator replays.
type resumer interface {
	resume()
	replayed()
}

// stopIfRewound stops the sink, with the operator's message, when its
// cursor belongs to another history of the audit log (epoch.go).
func (r *runner) stopIfRewound(ctx context.Context, cursor uint64) error {
	err := r.checkEpoch(ctx, cursor)
	var ee *EpochError
	if !errors.As(err, &ee) {
		return err
	}
	r.mu.Lock()
	r.stopped = ee
	r.setErrLocked(ee)
	r.mu.Unlock()
	r.m.log.Error("event sink stopped", "sink", r.cfg.Name, "err", ee.Error())
	return nil
}

func (r *runner) isStopped() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopped != nil
}

func (r *runner) loop(ctx context.Context) {
	poll := time.NewTimer(r.m.cfg.PollInterval.Duration)
	defer poll.Stop()
	for ctx.Err() == nil {
		woken := r.m.wake.wait() // taken before looking, so no notification is missed
		if r.isStopped() {       // until a replay
			select {
			case <-ctx.Done():
			case <-r.kick:
			}
			continue
		}
		if r.step(ctx) {
			continue
		}
		poll.Reset(r.m.cfg.PollInterval.Duration)
		select {
		case <-ctx.Done():
		case <-woken:
		case <-r.kick:
		case <-poll.C:
		}
	}
}

// step handles the next batch, if any, and reports whether it moved on.
func (r *runner) step(ctx context.Context) bool {
	from, gen := r.position()
	if head := r.m.o.Source.AuditHead().Seq; head <= from {
		if head < from {
			r.stopIfRewound(ctx, from)
		}
		return false
	}
	batch, last, err := r.read(ctx, from)
	if err == nil && last > from {
		err = r.deliver(ctx, batch, from+1, last)
	}
	if err != nil {
		if ctx.Err() == nil {
			r.failed(err, 0)
			r.pause(ctx, 1) // reading the log failed: back off before the next look
		}
		return false
	}
	if err := r.advance(ctx, gen, last); err != nil {
		r.pause(ctx, 1)
		return false
	}
	return last > from
}

func (r *runner) position() (uint64, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cursor, r.gen
}

// read collects up to BatchSize records after from and returns those that
// pass the filter, and the last seq read. A record that cannot be decoded
// stops the sink (it is an audit chain problem, never skipped silently).
func (r *runner) read(ctx context.Context, from uint64) ([]Event, uint64, error) {
	var batch []Event
	last, n := from, 0
	err := r.m.o.Source.AuditScan(ctx, from, func(key uint64, rec audit.Record) (bool, error) {
		ev, ok := r.m.decoded.get(key)
		if !ok {
			var err error
			if ev, err = FromRecord(rec); err != nil {
				return false, err
			}
			ev.SetEpoch(r.m.epochOf(key))
			r.m.decoded.put(key, ev)
		}
		ok, err := r.match.match(ctx, ev)
		if err != nil {
			return false, err
		}
		if ok {
			batch = append(batch, ev)
		}
		last, n = key, n+1
		return n < r.cfg.BatchSize, nil
	})
	if err != nil {
		return nil, from, fmt.Errorf("reading the audit log after %d: %w", from, err)
	}
	return batch, last, nil
}

// deliver sends batch (the events of from…to that passed the filter),
// retrying with backoff. With a retry budget it ends in a dead letter; it
// returns an error only when ctx ends or the dead letter cannot be stored.
func (r *runner) deliver(ctx context.Context, batch []Event, from, to uint64) error {
	if len(batch) == 0 {
		return nil
	}
	r.tellReplay()
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := r.sink.deliver(ctx, batch)
		if err == nil {
			r.succeeded(len(batch), time.Since(start))
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.failed(err, len(batch))
		if max := r.cfg.Retry.MaxAttempts; max > 0 && attempt >= max {
			return r.deadLetter(ctx, batch, from, to, attempt, err)
		}
		if err := r.pause(ctx, attempt); err != nil {
			return err
		}
	}
}

// pause waits the backoff for attempt, or until ctx ends.
func (r *runner) pause(ctx context.Context, attempt int) error {
	t := time.NewTimer(backoff(r.cfg.Retry, attempt, r.m.o.Rand))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// backoff is min(Max, Initial·2^(attempt-1)), of which the upper half is
// random jitter, so receivers coming back are not hit by every sender at
// once.
func backoff(rc RetryConfig, attempt int, rnd func() float64) time.Duration {
	d := rc.Initial.Duration << min(attempt-1, 30)
	if d <= 0 || d > rc.Max.Duration {
		d = rc.Max.Duration
	}
	half := d / 2
	return half + time.Duration(rnd()*float64(d-half))
}

// advance moves the cursor to last unless a replay moved it meanwhile. It
// stores the cursor even while shutting down: the batch was delivered.
func (r *runner) advance(ctx context.Context, gen, last uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gen != gen || last <= r.cursor {
		return nil
	}
	if err := r.m.o.Cursors.SetCursor(context.WithoutCancel(ctx), r.cfg.Name, last); err != nil {
		err = fmt.Errorf("saving the cursor (the batch will be sent again): %w", err)
		r.setErrLocked(err)
		return err
	}
	r.cursor = last
	r.retrying = false
	return nil
}

// rewind moves the cursor back (or forward) for a replay.
func (r *runner) rewind(ctx context.Context, cursor uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.m.o.Cursors.SetCursor(ctx, r.cfg.Name, cursor); err != nil {
		return fmt.Errorf("replaying sink %s: %w", r.cfg.Name, err)
	}
	r.cursor = cursor
	r.gen++
	r.stopped = nil
	r.replaying = true // told to the sink by the loop, which alone calls it
	select {
	case r.kick <- struct{}{}:
	default:
	}
	r.m.log.Info("event sink replay", "sink", r.cfg.Name, "from", cursor+1)
	return nil
}
