package daemon

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/internal/version"
)

// registerBuildInfo publishes keyfleet_build_info: one series, value 1,
// whose labels say which build is running (join on it in queries).
func registerBuildInfo(reg prometheus.Registerer, v version.Info) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "keyfleet", Name: "build_info",
		Help:        "Always 1; the labels name the running build: module version, commit, and Go toolchain.",
		ConstLabels: prometheus.Labels{"version": v.Version, "revision": v.Revision, "goversion": v.GoVersion}})
	g.Set(1)
	reg.MustRegister(g)
}

func ptr[T any](v T) *T { return &v }

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

// complianceGauges publish the compliance report by group: refreshed from a
// bulk evaluation every few minutes, not on each scrape.
type complianceGauges struct {
	adoption, users, nonCompliant, grace, stale, vulnerable *prometheus.GaugeVec
}

func newComplianceGauges(reg prometheus.Registerer) *complianceGauges {
	g := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "keyfleet", Subsystem: "compliance", Name: name,
			Help: help + " The group label is empty for everyone."}, []string{"group"})
	}
	c := &complianceGauges{
		adoption:     g("adoption_ratio", "Share of users with at least one active factor."),
		users:        g("users", "Users the policy covers."),
		nonCompliant: g("non_compliant_users", "Users past their enrolment deadline."),
		grace:        g("grace_users", "Users short of a requirement but within their deadline."),
		stale:        g("stale_factors", "Active factors unused longer than the policy allows."),
		vulnerable:   g("vulnerable_factors", "Active factors on hardware with a known advisory."),
	}
	reg.MustRegister(c.adoption, c.users, c.nonCompliant, c.grace, c.stale, c.vulnerable)
	return c
}

func (c *complianceGauges) set(r api.ComplianceReport) {
	c.adoption.Reset()
	c.users.Reset()
	c.nonCompliant.Reset()
	c.grace.Reset()
	c.stale.Reset()
	c.vulnerable.Reset()
	put := func(group string, n api.ComplianceCounts) {
		c.adoption.WithLabelValues(group).Set(n.Adoption)
		c.users.WithLabelValues(group).Set(float64(n.Users))
		c.nonCompliant.WithLabelValues(group).Set(float64(n.NonCompliant))
		c.grace.WithLabelValues(group).Set(float64(n.Grace))
		c.stale.WithLabelValues(group).Set(float64(n.StaleFactors))
		c.vulnerable.WithLabelValues(group).Set(float64(n.VulnerableFactors))
	}
	put("", r.Overall)
	for g, n := range r.ByGroup {
		put(g, n)
	}
}
