package certs

import "github.com/prometheus/client_golang/prometheus"

// promMetrics are the certs replica's own Prometheus series (see
// Registry): certificates issued, and failed attempts.
type promMetrics struct {
	reg    *prometheus.Registry
	issued prometheus.Counter
	failed prometheus.Counter
}

func newPromMetrics() *promMetrics {
	m := &promMetrics{
		reg: prometheus.NewRegistry(),
		issued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orchestry_certs_issued_total",
			Help: "Certificates this replica obtained and stored (first ones and renewals).",
		}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orchestry_certs_failures_total",
			Help: "Issuance attempts of this replica that failed (each published as cert.failed).",
		}),
	}
	m.reg.MustRegister(m.issued, m.failed)
	return m
}

// Registry holds the replica's own metrics (certificates issued, failed
// attempts), for a /metrics endpoint.
func (s *Service) Registry() *prometheus.Registry { return s.prom.reg }
