package host

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	restarts *prometheus.CounterVec
	refused  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_plugin_restarts_total",
			Help: "Factor plugin processes restarted after a crash or a hang, by plugin binary.",
		}, []string{"plugin"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_plugin_refused_total",
			Help: "Factor plugin binaries refused (unpinned, modified, incompatible), by plugin binary.",
		}, []string{"plugin"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.restarts, err = register(reg, m.restarts); err != nil {
		return nil, err
	}
	if m.refused, err = register(reg, m.refused); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or reuses the collector already registered under
// its name (a second host on the same registry).
func register(reg prometheus.Registerer, c *prometheus.CounterVec) (*prometheus.CounterVec, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
			return existing, nil
		}
	}
	return c, err
}
