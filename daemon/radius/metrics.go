package radius

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	answers  *prometheus.CounterVec
	dropped  *prometheus.CounterVec
	duration prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "keyfleet", Subsystem: "radius", Name: "answers_total",
			Help: "RADIUS answers sent, by client, answer (accept, reject, challenge) and reason."}, []string{"client", "answer", "reason"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "keyfleet", Subsystem: "radius", Name: "dropped_total",
			Help: "RADIUS packets dropped without an answer, by client (empty: unknown source) and reason."}, []string{"client", "reason"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "keyfleet", Subsystem: "radius", Name: "request_duration_seconds",
			Help: "Time from reading an Access-Request to sending its answer.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.answers, m.dropped, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) answered(client string, a answer, took time.Duration) {
	m.answers.WithLabelValues(client, a.kind(), a.reason).Inc()
	m.duration.Observe(took.Seconds())
}

func (m *metrics) drop(client, reason string) { m.dropped.WithLabelValues(client, reason).Inc() }
