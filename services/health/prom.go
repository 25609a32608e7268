package health

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// promMetrics are the health replica's own Prometheus series (see
// Registry).
type promMetrics struct {
	reg      *prometheus.Registry
	probes   *prometheus.CounterVec
	duration prometheus.Histogram
}

func newPromMetrics() *promMetrics {
	m := &promMetrics{
		reg: prometheus.NewRegistry(),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchestry_health_probes_total",
			Help: "Active probes this replica ran, by result (pass or fail).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "orchestry_health_probe_duration_seconds",
			Help:    "Time of each active probe, up to its timeout.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
	}
	m.probes.WithLabelValues("pass")
	m.probes.WithLabelValues("fail")
	m.reg.MustRegister(m.probes, m.duration)
	return m
}

// probed counts one probe.
func (m *promMetrics) probed(ok bool, took time.Duration) {
	result := "fail"
	if ok {
		result = "pass"
	}
	m.probes.WithLabelValues(result).Inc()
	m.duration.Observe(took.Seconds())
}

// Registry holds the replica's own metrics (probes by result, probe
// durations), for a /metrics endpoint.
func (s *Service) Registry() *prometheus.Registry { return s.prom.reg }
