package events

import (
	"context"
	"fmt"
	"time"
)

func (r *runner) status(head uint64) SinkStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := SinkStatus{
		Name: r.cfg.Name, Type: r.cfg.Type, Disabled: r.cfg.Disabled,
		LastDelivered: r.cursor, Head: head,
		Delivered: r.delivered, Failures: r.failures, Retrying: r.retrying,
		LastError: r.lastErr, DeadLetters: r.deadLetters,
	}
	if head > r.cursor {
		st.Lag = head - r.cursor
	}
	if !r.lastErrAt.IsZero() {
		at := r.lastErrAt
		st.LastErrorAt = &at
	}
	return st
}

func (r *runner) lag() float64 {
	head := r.m.o.Source.AuditHead().Seq
	r.mu.Lock()
	defer r.mu.Unlock()
	if head <= r.cursor {
		return 0
	}
	return float64(head - r.cursor)
}

func (r *runner) succeeded(n int, took time.Duration) {
	r.mu.Lock()
	r.delivered += uint64(n)
	r.retrying = false
	r.mu.Unlock()
	r.m.metrics.delivered.WithLabelValues(r.cfg.Name, r.cfg.Type).Add(float64(n))
	r.m.metrics.batchSeconds.WithLabelValues(r.cfg.Name, r.cfg.Type).Observe(took.Seconds())
}

// failed records a failed attempt at a batch of n events (0: reading the
// log failed).
func (r *runner) failed(err error, n int) {
	r.mu.Lock()
	r.failures++
	r.retrying = n > 0
	r.setErrLocked(err)
	r.mu.Unlock()
	r.m.metrics.failures.WithLabelValues(r.cfg.Name, r.cfg.Type).Inc()
	r.m.log.Warn("event sink delivery failed", "sink", r.cfg.Name, "type", r.cfg.Type, "events", n, "err", err)
}

func (r *runner) setErrLocked(err error) {
	r.lastErr = err.Error()
	r.lastErrAt = r.m.o.Now().UTC()
}

// deadLetter stores a batch the sink gave up on and reports it. A batch
// made only of dead-letter events is stored but not reported, so a
// receiver that stays down cannot start an endless loop of reports.
func (r *runner) deadLetter(ctx context.Context, batch []Event, from, to uint64, attempts int, cause error) error {
	d := DeadLetter{
		Sink: r.cfg.Name, Type: r.cfg.Type, FromSeq: from, ToSeq: to,
		Attempts: attempts, Error: cause.Error(), At: r.m.o.Now().UTC(),
	}
	onlyDeadLetters := true
	for _, ev := range batch {
		d.Seqs = append(d.Seqs, ev.Seq)
		onlyDeadLetters = onlyDeadLetters && ev.Action == ActionDeadLetter
	}
	if err := r.m.o.Cursors.AddDeadLetter(context.WithoutCancel(ctx), d); err != nil {
		return fmt.Errorf("storing a dead letter for events %d…%d: %w", from, to, err)
	}
	r.mu.Lock()
	r.deadLetters++
	r.retrying = false
	r.mu.Unlock()
	r.m.metrics.deadLetters.WithLabelValues(r.cfg.Name, r.cfg.Type).Inc()
	r.m.log.Error("event sink gave up on a batch (dead letter)", "sink", r.cfg.Name, "from", from, "to", to, "events", len(batch), "attempts", attempts, "err", cause)
	if rep := r.m.o.DeadLetters; rep != nil && !onlyDeadLetters {
		if err := rep.ReportDeadLetter(context.WithoutCancel(ctx), d); err != nil {
			r.m.log.Error("reporting a dead letter failed", "sink", r.cfg.Name, "err", err)
		}
	}
	return nil
}
