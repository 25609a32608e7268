package renderer

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/renderer/apply"
)

// promMetrics are the renderer's own Prometheus series (see Registry).
type promMetrics struct {
	reg     *prometheus.Registry
	cycles  *prometheus.CounterVec
	phases  *prometheus.HistogramVec
	version prometheus.Gauge
}

func newPromMetrics() *promMetrics {
	m := &promMetrics{
		reg: prometheus.NewRegistry(),
		cycles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchestry_renderer_cycles_total",
			Help: "Render cycles of this node, by outcome (applied, unchanged, invalid, failed).",
		}, []string{"outcome"}),
		phases: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "orchestry_renderer_phase_duration_seconds",
			Help:    "Time of each phase of a render cycle: render, validate (nginx -t), reload (until NGINX answers the new version).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"phase"}),
		version: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orchestry_renderer_config_version",
			Help: "Config version live on this node.",
		}),
	}
	for _, o := range []string{events.OutcomeApplied, events.OutcomeUnchanged, events.OutcomeInvalid, events.OutcomeFailed} {
		m.cycles.WithLabelValues(o)
	}
	m.reg.MustRegister(m.cycles, m.phases, m.version)
	return m
}

// observe counts one cycle's result.
func (m *promMetrics) observe(res apply.Result) {
	m.cycles.WithLabelValues(res.Outcome).Inc()
	m.version.Set(float64(res.Version))
	if res.Outcome == events.OutcomeUnchanged {
		return // nothing was validated or reloaded
	}
	m.phases.WithLabelValues("render").Observe(res.Render.Seconds())
	if res.Validate > 0 {
		m.phases.WithLabelValues("validate").Observe(res.Validate.Seconds())
	}
	if res.Reload > 0 {
		m.phases.WithLabelValues("reload").Observe(res.Reload.Seconds())
	}
}

// Registry holds the renderer's own metrics (render cycles by outcome,
// phase durations, live version), for a /metrics endpoint.
func (s *Service) Registry() *prometheus.Registry { return s.metrics.reg }
