package daemon

import (
	"cmp"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"io/fs"
	"path/filepath"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
	"github.com/keyfleet/keyfleet/daemon/httpapi"
	"github.com/keyfleet/keyfleet/internal/version"
)

// registerOpsMetrics registers what operators alert on besides the
// domain counters: the build, the certificates' expiry and the audit
// chain check.
func (s *Server) registerOpsMetrics() {
	registerBuildInfo(s.reg, version.Get())
	s.reg.MustRegister(newCertCollector(s.cert.Load, s.attestRoots))
	s.chain = newChainGauge(s.reg)
}

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
	pushReported  prometheus.Counter
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
		pushReported: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "keyfleet", Subsystem: "push", Name: "reported_total",
			Help: "Pushes their user reported as not theirs (\"this wasn't me\"): each locked the user's pushes."}),
	}
	reg.MustRegister(c.events, c.verifications, c.enrolments, c.lockouts, c.pushReported)
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
		case core.ActionPushReported:
			c.pushReported.Inc()
		}
	}
}

// complianceGauges publish the compliance report by group: refreshed from a
// bulk evaluation every few minutes, not on each scrape.
type complianceGauges struct {
	adoption, users, nonCompliant, grace, stale, vulnerable *prometheus.GaugeVec
	omitted                                                 prometheus.Gauge
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
		omitted: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "keyfleet", Subsystem: "compliance", Name: "groups_omitted",
			Help: "Groups left out of the compliance gauges: only the 200 largest get series of their own."}),
	}
	reg.MustRegister(c.adoption, c.users, c.nonCompliant, c.grace, c.stale, c.vulnerable, c.omitted)
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
	groups := make([]string, 0, len(r.ByGroup))
	for g := range r.ByGroup {
		groups = append(groups, g)
	}
	slices.SortFunc(groups, func(a, b string) int {
		return cmp.Or(cmp.Compare(r.ByGroup[b].Users, r.ByGroup[a].Users), cmp.Compare(a, b))
	})
	c.omitted.Set(float64(max(0, len(groups)-maxGroupSeries)))
	for _, g := range groups[:min(len(groups), maxGroupSeries)] {
		put(g, r.ByGroup[g])
	}
}

// zero publishes every verification, enrolment and lockout series at 0
// for the kinds keyfleetd has, so that rates and alerts see them before
// the first event instead of a missing series.
func (c *auditCounters) zero(kinds []string) {
	for _, k := range kinds {
		for _, o := range []string{"ok", "failed"} {
			c.verifications.WithLabelValues(k, o)
		}
		for _, o := range []string{"ok", "refused"} {
			c.enrolments.WithLabelValues(k, o)
		}
	}
	for _, w := range []string{"user", "factor", "recovery"} {
		c.lockouts.WithLabelValues(w)
	}
	for _, a := range alertedActions {
		c.events.WithLabelValues(a)
	}
}

// alertedActions are the audit actions deploy/prometheus's rules alert on
// through keyfleet_audit_events_total; their series exist from the start.
var alertedActions = []string{"breakglass.start", "breakglass.failed", "device.lost", "config.reload_failed", "events.dead_letter", "plugin.refused"}

// maxGroupSeries bounds the compliance gauges' group label: the largest
// groups by users are published, the rest counted in
// keyfleet_compliance_groups_omitted (the overall series, group="", is
// always there).
const maxGroupSeries = 200

// dirSize is the total size of the regular files under dir: the store's
// size on disk, measured at each scrape (Badger's own figure is not kept
// with its metrics off). 0 when dir cannot be read (an in-memory store).
func dirSize(dir string) float64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			n += fi.Size()
		}
		return nil
	})
	return float64(n)
}

// certCollector publishes when the served TLS certificate and each extra
// attestation root expire, read at each scrape so that a reload shows.
type certCollector struct {
	cert  func() *tls.Certificate
	roots func() httpapi.AttestRoots
	tls   *prometheus.Desc
	root  *prometheus.Desc
}

func newCertCollector(cert func() *tls.Certificate, roots func() httpapi.AttestRoots) *certCollector {
	return &certCollector{cert: cert, roots: roots,
		tls: prometheus.NewDesc("keyfleet_tls_certificate_expiry_timestamp_seconds",
			"When the TLS certificate keyfleetd serves expires (Unix time); compare with time().", nil, nil),
		root: prometheus.NewDesc("keyfleet_attestation_root_expiry_timestamp_seconds",
			"When each configured extra attestation root expires (Unix time), by kind and the first 16 hex digits of its SHA-256.",
			[]string{"kind", "sha256"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *certCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.tls; ch <- c.root }

// Collect implements prometheus.Collector.
func (c *certCollector) Collect(ch chan<- prometheus.Metric) {
	if cert := c.cert(); cert != nil && cert.Leaf != nil {
		ch <- prometheus.MustNewConstMetric(c.tls, prometheus.GaugeValue, float64(cert.Leaf.NotAfter.Unix()))
	}
	roots := c.roots()
	for kind, certs := range map[string][]*x509.Certificate{"piv": roots.PIV, "fido2": roots.FIDO2} {
		seen := map[string]bool{}
		for _, r := range certs {
			sum := sha256.Sum256(r.Raw)
			id := hex.EncodeToString(sum[:8])
			if seen[id] {
				continue // the same root listed twice
			}
			seen[id] = true
			ch <- prometheus.MustNewConstMetric(c.root, prometheus.GaugeValue, float64(r.NotAfter.Unix()), kind, id)
		}
	}
}

// chainGauge says what the start-up walk of the audit chain found.
type chainGauge struct{ g prometheus.Gauge }

func newChainGauge(reg prometheus.Registerer) *chainGauge {
	c := &chainGauge{prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "keyfleet", Subsystem: "audit", Name: "chain_broken",
		Help: "1 when the audit chain check at start-up found a record that does not link to its predecessor, else 0."})}
	reg.MustRegister(c.g)
	return c
}

func (c *chainGauge) set(broken bool) {
	if broken {
		c.g.Set(1)
		return
	}
	c.g.Set(0)
}
