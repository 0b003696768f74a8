package directory

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/api"
)

// syncMetrics are the LDAP sync's series (docs/directory.md,
// "Monitoring"): what operators alert on when the directory stops
// reaching keyfleet, since leavers then keep their access.
type syncMetrics struct {
	syncs       *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	changes     *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
	lastFailed  *prometheus.GaugeVec
}

// newSyncMetrics registers the series on reg (nil: kept, not published)
// and publishes the source's interval.
func newSyncMetrics(reg prometheus.Registerer, source string, interval time.Duration) *syncMetrics {
	m := &syncMetrics{
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "keyfleet", Subsystem: "directory", Name: "syncs_total",
			Help: "Directory syncs run (dry runs not counted), by source, mode (full, incremental) and outcome (ok, failed)."},
			[]string{"source", "mode", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "keyfleet", Subsystem: "directory", Name: "sync_duration_seconds",
			Help:    "How long a directory sync took, reading and applying, by source and mode.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}}, []string{"source", "mode"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "keyfleet", Subsystem: "directory", Name: "changes_total",
			Help: "Users changed by directory syncs, by source and change (created, updated, renamed, disabled, enabled, skipped, conflict, requested: access filed for a second person's approval)."},
			[]string{"source", "change"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "keyfleet", Subsystem: "directory", Name: "last_success_timestamp_seconds",
			Help: "When this keyfleetd's newest successful sync of the source finished (Unix time; absent until one has)."}, []string{"source"}),
		lastFailed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "keyfleet", Subsystem: "directory", Name: "last_sync_failed",
			Help: "1 when this keyfleetd's newest sync of the source failed (keyfleet directory status says why), else 0."}, []string{"source"}),
	}
	every := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "keyfleet", Subsystem: "directory", Name: "sync_interval_seconds",
		Help: "directory.ldap.interval: how often the source is synced."}, []string{"source"})
	every.WithLabelValues(source).Set(interval.Seconds())
	if reg != nil {
		reg.MustRegister(m.syncs, m.duration, m.changes, m.lastSuccess, m.lastFailed, every)
	}
	return m
}

// record counts a finished sync; a dry run changes nothing and is not
// counted.
func (m *syncMetrics) record(rep api.DirectorySyncReport) {
	if rep.DryRun {
		return
	}
	outcome := "ok"
	if rep.Error != "" {
		outcome = "failed"
	}
	m.syncs.WithLabelValues(rep.Source, rep.Mode, outcome).Inc()
	m.duration.WithLabelValues(rep.Source, rep.Mode).Observe(rep.FinishedAt.Sub(rep.StartedAt).Seconds())
	for change, n := range map[string]int{"created": rep.Created, "updated": rep.Updated, "renamed": rep.Renamed, "disabled": rep.Disabled,
		"enabled": rep.Enabled, "skipped": rep.Skipped, "conflict": rep.Conflicts, "requested": rep.Requested} {
		m.changes.WithLabelValues(rep.Source, change).Add(float64(n))
	}
	if rep.Error != "" {
		m.lastFailed.WithLabelValues(rep.Source).Set(1)
		return
	}
	m.lastFailed.WithLabelValues(rep.Source).Set(0)
	m.lastSuccess.WithLabelValues(rep.Source).Set(float64(rep.FinishedAt.UnixNano()) / 1e9)
}
