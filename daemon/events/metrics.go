package events

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	m            *Manager
	delivered    *prometheus.CounterVec
	failures     *prometheus.CounterVec
	deadLetters  *prometheus.CounterVec
	batchSeconds *prometheus.HistogramVec
	sseClients   prometheus.Gauge
	sseSent      prometheus.Counter
	lagDesc      *prometheus.Desc
}

func newMetrics(m *Manager) *metrics {
	labels := []string{"sink", "type"}
	opts := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: "keyfleet", Subsystem: "events", Name: name, Help: help}
	}
	return &metrics{
		m:           m,
		delivered:   prometheus.NewCounterVec(opts("delivered_total", "Events a sink delivered (a replay counts again)."), labels),
		failures:    prometheus.NewCounterVec(opts("failures_total", "Failed delivery attempts (each retry counts)."), labels),
		deadLetters: prometheus.NewCounterVec(opts("dead_letters_total", "Batches a sink gave up on after its retry budget."), labels),
		batchSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "keyfleet", Subsystem: "events", Name: "batch_seconds",
			Help: "Time to deliver one batch.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9),
		}, labels),
		sseClients: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "keyfleet", Subsystem: "events", Name: "sse_clients",
			Help: "Clients connected to GET /v1/events."}),
		sseSent: prometheus.NewCounter(prometheus.CounterOpts(opts("sse_sent_total", "Events written to SSE clients."))),
		lagDesc: prometheus.NewDesc("keyfleet_events_lag", "Audit events a sink has yet to handle (head minus cursor).",
			[]string{"sink", "type"}, nil),
	}
}

func (x *metrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{x.delivered, x.failures, x.deadLetters, x.batchSeconds, x.sseClients, x.sseSent, x} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("registering event metrics: %w", err)
	}
	return nil
}

// Describe and Collect make the lag gauge, computed at scrape time.
func (x *metrics) Describe(ch chan<- *prometheus.Desc) { ch <- x.lagDesc }

// Collect implements prometheus.Collector.
func (x *metrics) Collect(ch chan<- prometheus.Metric) {
	x.m.mu.RLock()
	defer x.m.mu.RUnlock()
	for _, r := range x.m.runners {
		ch <- prometheus.MustNewConstMetric(x.lagDesc, prometheus.GaugeValue, r.lag(), r.cfg.Name, r.cfg.Type)
	}
}

// forget drops the counters of a sink that a reload removed, so the series
// of sinks no longer configured do not linger.
func (x *metrics) forget(name, typ string) {
	for _, v := range []*prometheus.CounterVec{x.delivered, x.failures, x.deadLetters} {
		v.DeleteLabelValues(name, typ)
	}
	x.batchSeconds.DeleteLabelValues(name, typ)
}

// zero publishes a sink's counters at 0 from the start, so that rates and
// alerts (a first dead letter) see them before the first event.
func (x *metrics) zero(name, typ string) {
	for _, v := range []*prometheus.CounterVec{x.delivered, x.failures, x.deadLetters} {
		v.WithLabelValues(name, typ)
	}
}
