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

// reasons lists, per answer, every reason the listener gives: their
// series exist from the start, at 0, for each configured client.
var reasons = map[string][]string{
	"accept": {"verified", "not_required", "grace", "status_server"},
	"reject": {"wrong_code", "unknown_user", "user_disabled", "locked", "factor_suspended", "must_enrol", "no_factor",
		"no_code_factor", "policy_refused", "first_factor_failed", "directory_unavailable", "unavailable", "user_rate_limited",
		"stale_challenge", "bad_choice", "not_pap", "no_password", "no_user_name", "push_failed", "push_denied", "push_expired"},
	"challenge": {"factor_asked", "code_asked", "push_sent", "push_pending"},
}

// dropReasons are why a packet of a client is dropped; unknown_client and
// busy are counted without a client.
var dropReasons = []string{"malformed", "unsupported_code", "no_message_authenticator", "bad_message_authenticator",
	"client_rate_limited", "retransmission_answered"}

// start makes every series of the clients, at 0.
func (m *metrics) start(clients []*client) {
	for _, c := range clients {
		for answer, rs := range reasons {
			for _, r := range rs {
				m.answers.WithLabelValues(c.name, answer, r)
			}
		}
		for _, r := range dropReasons {
			m.dropped.WithLabelValues(c.name, r)
		}
	}
	m.dropped.WithLabelValues("", "unknown_client")
	m.dropped.WithLabelValues("", "busy")
}

func (m *metrics) answered(client string, a answer, took time.Duration) {
	m.answers.WithLabelValues(client, a.kind(), a.reason).Inc()
	m.duration.Observe(took.Seconds())
}

func (m *metrics) drop(client, reason string) { m.dropped.WithLabelValues(client, reason).Inc() }
