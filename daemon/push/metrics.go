package push

import "github.com/prometheus/client_golang/prometheus"

// metrics are the hub's Prometheus series. Reported pushes are counted
// from their audit events by keyfleetd (keyfleet_push_reported_total).
type metrics struct {
	reg      prometheus.Registerer
	sent     prometheus.Counter
	limited  prometheus.Counter
	answers  *prometheus.CounterVec
	gwFailed *prometheus.CounterVec
	gwSent   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "keyfleet", Subsystem: "push", Name: name, Help: help})
	}
	m := &metrics{reg: reg,
		sent:    c("sent_total", "Pushes sent to companions."),
		limited: c("rate_limited_total", "Pushes refused because their user had too many in the period."),
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "keyfleet", Subsystem: "push", Name: "outcomes_total",
			Help: "Pushes decided, by outcome: approved, refused (wrong number, denied, bad answer), reported (this wasn't me), unanswered."}, []string{"outcome"}),
		gwSent: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "keyfleet", Subsystem: "push", Name: "gateway_notices_total",
			Help: "Notices a gateway took, by gateway."}, []string{"gateway"}),
		gwFailed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "keyfleet", Subsystem: "push", Name: "gateway_failures_total",
			Help: "Notices a gateway did not take (refused, unreachable, timed out, or queue full), by gateway."}, []string{"gateway"}),
	}
	for _, o := range []string{"approved", "refused", "reported", "unanswered"} {
		m.answers.WithLabelValues(o)
	}
	if reg != nil {
		reg.MustRegister(m.sent, m.limited, m.answers, m.gwSent, m.gwFailed)
	}
	return m
}

func (m *metrics) pendingFunc(f func() float64) {
	if m.reg != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "keyfleet", Subsystem: "push", Name: "pending",
			Help: "Pushes waiting for their answer."}, f))
	}
}

func (m *metrics) devicesFunc(f func() float64) {
	if m.reg != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "keyfleet", Subsystem: "push", Name: "connected_devices",
			Help: "Companions with a stream open to this keyfleetd."}, f))
	}
}
