// Package export serves the metrics service's figures to Prometheus: the
// traffic of every window, added to cumulative counters per app and
// upstream address, the latest window's latency quantiles, and what became
// of every log line received.
package export

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/orchestry/orchestry/pkg/events"
)

// staleWindows is how many windows without traffic an address keeps its
// series before they are dropped, so instances that are gone do not grow
// the output without bound.
const staleWindows = 60

// Exporter holds the Prometheus registry of the metrics service.
type Exporter struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	gateway   *prometheus.CounterVec
	retries   *prometheus.CounterVec
	bytes     *prometheus.CounterVec
	latency   *prometheus.GaugeVec
	lastCount *prometheus.GaugeVec

	mu     sync.Mutex
	window int64               // windows seen
	seen   map[[2]string]int64 // (app, instance) -> last window with traffic
}

// New registers the traffic series and, through lines, the ingest counters
// (read at scrape time) in a fresh registry with the Go and process
// collectors.
func New(lines func() map[string]int64) *Exporter {
	e := &Exporter{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchestry_upstream_requests_total",
			Help: "Attempts NGINX sent to an upstream address, by status class (retries count once each).",
		}, []string{"app", "instance", "code_class"}),
		gateway: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchestry_upstream_gateway_errors_total",
			Help: "Attempts that ended in 502, 503 or 504, NGINX's own connection failures included.",
		}, []string{"app", "instance"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchestry_upstream_retries_total",
			Help: "Attempts that were not the first of their request.",
		}, []string{"app", "instance"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchestry_upstream_response_bytes_total",
			Help: "Bytes sent to clients, counted on the last attempt of each request.",
		}, []string{"app", "instance"}),
		latency: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "orchestry_upstream_response_seconds",
			Help: "Upstream response time quantiles over the latest window with traffic.",
		}, []string{"app", "instance", "quantile"}),
		lastCount: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "orchestry_upstream_window_requests",
			Help: "Attempts in the latest window with traffic.",
		}, []string{"app", "instance"}),
		seen: map[[2]string]int64{},
	}
	e.reg.MustRegister(e.requests, e.gateway, e.retries, e.bytes, e.latency, e.lastCount,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		lineCollector{lines: lines, desc: prometheus.NewDesc("orchestry_metrics_log_lines_total",
			"Access log lines received, by result: counted, or the reason they were dropped.", []string{"result"}, nil)},
	)
	return e
}

// Registry is what to serve on /metrics.
func (e *Exporter) Registry() *prometheus.Registry { return e.reg }

// Observe adds the figures of one flushed window (one event per app with
// traffic) and drops the series of addresses idle for staleWindows.
func (e *Exporter) Observe(window []events.UpstreamMetrics) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.window++
	for _, m := range window {
		for _, in := range m.Instances {
			l := prometheus.Labels{"app": m.App, "instance": in.Address}
			other := in.Requests - in.Status2xx - in.Status3xx - in.Status4xx - in.Status5xx
			for class, n := range map[string]int64{"2xx": in.Status2xx, "3xx": in.Status3xx, "4xx": in.Status4xx, "5xx": in.Status5xx, "other": other} {
				e.requests.With(prometheus.Labels{"app": m.App, "instance": in.Address, "code_class": class}).Add(float64(max(n, 0)))
			}
			e.gateway.With(l).Add(float64(in.GatewayErrors))
			e.retries.With(l).Add(float64(in.Retries))
			e.bytes.With(l).Add(float64(in.Bytes))
			e.lastCount.With(l).Set(float64(in.Requests))
			for q, v := range map[float64]float64{0.5: in.P50MS, 0.95: in.P95MS, 0.99: in.P99MS} {
				e.latency.With(prometheus.Labels{"app": m.App, "instance": in.Address, "quantile": strconv.FormatFloat(q, 'f', -1, 64)}).Set(v / 1000)
			}
			e.seen[[2]string{m.App, in.Address}] = e.window
		}
	}
	for k, last := range e.seen {
		if e.window-last < staleWindows {
			continue
		}
		l := prometheus.Labels{"app": k[0], "instance": k[1]}
		for _, v := range []*prometheus.CounterVec{e.requests, e.gateway, e.retries, e.bytes} {
			v.DeletePartialMatch(l)
		}
		e.latency.DeletePartialMatch(l)
		e.lastCount.DeletePartialMatch(l)
		delete(e.seen, k)
	}
}

// lineCollector reads the ingest counters at scrape time.
type lineCollector struct {
	lines func() map[string]int64
	desc  *prometheus.Desc
}

func (c lineCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c lineCollector) Collect(ch chan<- prometheus.Metric) {
	for result, n := range c.lines() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(n), result)
	}
}
