package daemon

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/daemon/audit"
)

// auditCounters derive the daemon's domain metrics from the audit events
// each commit appends: every verification, enrolment and lockout is an
// audit event, so the figures cannot disagree with the trail.
type auditCounters struct {
	events        *prometheus.CounterVec
	verifications *prometheus.CounterVec
	enrolments    *prometheus.CounterVec
	lockouts      *prometheus.CounterVec
}

func newAuditCounters(reg prometheus.Registerer) *auditCounters {
	c := &auditCounters{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "keyfleet", Subsystem: "audit", Name: "events_total",
			Help: "Audit events committed, by action."}, []string{"action"}),
		verifications: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "keyfleet", Name: "verifications_total",
			Help: "Factor verifications, by kind and outcome (ok, failed)."}, []string{"kind", "outcome"}),
		enrolments: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "keyfleet", Name: "enrolments_total",
			Help: "Enrolments finished, by kind and outcome (ok, refused: the key's attestation or the policy)."}, []string{"kind", "outcome"}),
		lockouts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "keyfleet", Name: "lockouts_total",
			Help: "Lockouts after repeated failures, by what was locked (user, factor, recovery)."}, []string{"what"}),
	}
	reg.MustRegister(c.events, c.verifications, c.enrolments, c.lockouts)
	return c
}

func (c *auditCounters) count(evs []*audit.Event) {
	for _, ev := range evs {
		c.events.WithLabelValues(ev.Action).Inc()
		switch ev.Action {
		case "factor.verify":
			c.verifications.WithLabelValues(ev.Extra["kind"], "ok").Inc()
		case "factor.verify_failed":
			c.verifications.WithLabelValues(ev.Extra["kind"], "failed").Inc()
		case "factor.enrol":
			kind, _ := ev.After["kind"].(string)
			c.enrolments.WithLabelValues(kind, "ok").Inc()
		case "enrolment.refused":
			c.enrolments.WithLabelValues(ev.Extra["kind"], "refused").Inc()
		case "user.lockout":
			c.lockouts.WithLabelValues("user").Inc()
		case "factor.lockout":
			c.lockouts.WithLabelValues("factor").Inc()
		case "recovery.locked":
			c.lockouts.WithLabelValues("recovery").Inc()
		}
	}
}
