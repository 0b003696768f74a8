package daemon

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/daemon/checkpoint"
)

// faultMetrics publish the fault states operators alert on
// (docs/operations.md): free space against the reserve, a store refusing
// writes for lack of it, and the audit checkpoints.
type faultMetrics struct {
	cpSeq    prometheus.Gauge
	cpTime   prometheus.Gauge
	cpErrors *prometheus.CounterVec
}

func (s *Server) registerFaultMetrics(reg prometheus.Registerer) {
	m := s.faultMetrics
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	if b := s.badger; b != nil { // the PostgreSQL backend's disk is the database server's
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "keyfleet", Subsystem: "store", Name: "free_bytes",
				Help: "Free space on the store's file system, as last measured."}, func() float64 { return float64(b.SpaceStats().Free) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "keyfleet", Subsystem: "store", Name: "reserve_bytes",
				Help: "Free space below which the store refuses writes (kept for Badger's flushes and compactions)."}, func() float64 { return float64(b.SpaceStats().Reserve) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "keyfleet", Subsystem: "store", Name: "storage_full",
				Help: "1 while the store refuses writes for lack of space (reads go on)."}, func() float64 { return b2f(b.SpaceStats().Full) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "keyfleet", Subsystem: "store", Name: "read_only",
				Help: "1 while the store is open read-only because it started short of space."}, func() float64 { return b2f(b.SpaceStats().ReadOnly) }))
	}
	if pg := s.pg; pg != nil { // the database server's disk: known from the writes it refuses
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "keyfleet", Subsystem: "store", Name: "storage_full",
			Help: "1 while the store refuses writes for lack of space (reads go on); with PostgreSQL, for 30s after a write it refused for lack of disk space, or until one goes through."},
			func() float64 { return b2f(pg.Full() != nil) }))
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "keyfleet", Subsystem: "audit", Name: "checkpoint_mismatch",
			Help: "1 when keyfleetd serves a store behind or beside its newest audit checkpoint (audit.checkpoint.on_mismatch: warn)."},
			func() float64 { return b2f(s.anchor != nil && s.anchor.mismatch != nil) }),
		m.cpSeq, m.cpTime, m.cpErrors,
	)
}

func newFaultMetrics() *faultMetrics {
	return &faultMetrics{
		cpSeq: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "keyfleet", Subsystem: "audit", Name: "checkpoint_seq",
			Help: "Sequence number of the newest audit checkpoint written."}),
		cpTime: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "keyfleet", Subsystem: "audit", Name: "checkpoint_timestamp_seconds",
			Help: "When the newest audit checkpoint was signed (Unix time)."}),
		cpErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "keyfleet", Subsystem: "audit", Name: "checkpoint_errors_total",
			Help: "Checkpoints a place (file, witness, events) failed to take."}, []string{"place"}),
	}
}

// observeCheckpoint counts a place's write of a checkpoint.
func (m *faultMetrics) observeCheckpoint(place string, c checkpoint.Checkpoint, err error) {
	if err != nil {
		m.cpErrors.WithLabelValues(place).Inc()
		return
	}
	m.cpSeq.Set(float64(c.Seq))
	m.cpTime.Set(float64(c.Time.UnixNano()) / 1e9)
}
