package routing

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// promMetrics are the routing replica's own Prometheus series (see
// Registry): its REST API's requests by method and status code, and their
// durations.
type promMetrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newPromMetrics() *promMetrics {
	m := &promMetrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchestry_api_requests_total",
			Help: "REST API requests, by method and status code.",
		}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "orchestry_api_request_duration_seconds",
			Help:    "Time the REST API took to answer, by method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"method"}),
	}
	m.reg.MustRegister(m.requests, m.duration)
	return m
}

// instrument counts and times every request h answers.
func (m *promMetrics) instrument(h http.Handler) http.Handler {
	return promhttp.InstrumentHandlerDuration(m.duration, promhttp.InstrumentHandlerCounter(m.requests, h))
}

// Registry holds the replica's own metrics (API requests by method and
// code, and their durations), for a /metrics endpoint.
func (s *Service) Registry() *prometheus.Registry { return s.prom.reg }
