// Package export serves the metrics service's figures to Prometheus: the
// traffic of every window, added to cumulative counters and histograms per
// app and upstream address (attempts beyond the cardinality cap under
// instance="other", attempts that named no address under instance="none"),
// what NGINX answered clients per app, the latest window's latency
// quantiles, what became of every log line received, and the fleet's
// reloads, convergence and certificates (Fleet).
package export

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/metrics/stubstatus"
	"github.com/orchestry/orchestry/services/metrics/window"
)

// Instance label values of the groups that are not one address.
const (
	// FoldedInstance holds the attempts to addresses beyond
	// ORCHESTRY_METRICS_MAX_INSTANCES in their window.
	FoldedInstance = "other"
	// NoneInstance holds the attempts that named no address (NGINX found
	// no server to try).
	NoneInstance = "none"
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
	appReqs   *prometheus.CounterVec
	// Fleet holds the node, reload, convergence and certificate series.
	Fleet *Fleet

	mu     sync.Mutex
	window int64               // windows seen
	seen   map[[2]string]int64 // (app, instance) -> last window with traffic; instance "" for the app
	// dists are the cumulative distributions: upstream response time per
	// (app, instance), request time per (app, "").
	dists map[[2]string]*window.Distribution
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
		appReqs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchestry_app_requests_total",
			Help: "Requests NGINX answered for an app, by the status class the client got (with or without an upstream attempt).",
		}, []string{"app", "code_class"}),
		Fleet: newFleet(),
		seen:  map[[2]string]int64{},
		dists: map[[2]string]*window.Distribution{},
	}
	e.reg.MustRegister(e.requests, e.gateway, e.retries, e.bytes, e.latency, e.lastCount, e.appReqs, e.Fleet,
		stubstatus.NewCollector(e.Fleet.StatusTargets),
		histCollector{e: e, upstream: prometheus.NewDesc("orchestry_upstream_request_duration_seconds",
			"Upstream response time of each attempt ($upstream_response_time), per app and upstream address.", []string{"app", "instance"}, nil),
			app: prometheus.NewDesc("orchestry_app_request_duration_seconds",
				"Time NGINX took to answer each request of an app ($request_time), retries included.", []string{"app"}, nil)},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		lineCollector{lines: lines, desc: prometheus.NewDesc("orchestry_metrics_log_lines_total",
			"Access log lines received, by result: counted, or the reason they were dropped.", []string{"result"}, nil)},
	)
	return e
}

// Registry is what to serve on /metrics.
func (e *Exporter) Registry() *prometheus.Registry { return e.reg }

// Observe adds the figures of one flushed window (one entry per app with
// traffic) and drops the series of addresses idle for staleWindows.
func (e *Exporter) Observe(windows []window.AppWindow) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.window++
	for _, w := range windows {
		app := w.Metrics.App
		for i, in := range w.Metrics.Instances {
			e.add(app, in.Address, in, &w.Dists[i])
			l := prometheus.Labels{"app": app, "instance": in.Address}
			e.lastCount.With(l).Set(float64(in.Requests))
			for q, v := range map[float64]float64{0.5: in.P50MS, 0.95: in.P95MS, 0.99: in.P99MS} {
				e.latency.With(prometheus.Labels{"app": app, "instance": in.Address, "quantile": strconv.FormatFloat(q, 'f', -1, 64)}).Set(v / 1000)
			}
		}
		if w.Folded != nil {
			e.add(app, FoldedInstance, w.Folded.Traffic, &w.Folded.Dist)
		}
		if w.None != nil {
			e.add(app, NoneInstance, w.None.Traffic, &w.None.Dist)
		}
		for class, n := range classes(w.Requests.Traffic) {
			e.appReqs.WithLabelValues(app, class).Add(float64(n))
		}
		e.merge([2]string{app, ""}, &w.Requests.Dist)
	}
	for k, last := range e.seen {
		if e.window-last < staleWindows {
			continue
		}
		delete(e.seen, k)
		delete(e.dists, k)
		if k[1] == "" {
			e.appReqs.DeletePartialMatch(prometheus.Labels{"app": k[0]})
			continue
		}
		l := prometheus.Labels{"app": k[0], "instance": k[1]}
		for _, v := range []*prometheus.CounterVec{e.requests, e.gateway, e.retries, e.bytes} {
			v.DeletePartialMatch(l)
		}
		e.latency.DeletePartialMatch(l)
		e.lastCount.DeletePartialMatch(l)
	}
}

// add cumulates one address's (or group's) window.
func (e *Exporter) add(app, instance string, in events.InstanceTraffic, d *window.Distribution) {
	l := prometheus.Labels{"app": app, "instance": instance}
	for class, n := range classes(in) {
		e.requests.With(prometheus.Labels{"app": app, "instance": instance, "code_class": class}).Add(float64(n))
	}
	e.gateway.With(l).Add(float64(in.GatewayErrors))
	e.retries.With(l).Add(float64(in.Retries))
	e.bytes.With(l).Add(float64(in.Bytes))
	e.merge([2]string{app, instance}, d)
}

// merge adds d to the cumulative distribution of k and marks k seen.
func (e *Exporter) merge(k [2]string, d *window.Distribution) {
	e.seen[k] = e.window
	c := e.dists[k]
	if c == nil {
		c = &window.Distribution{}
		e.dists[k] = c
	}
	for i, n := range d.Counts {
		c.Counts[i] += n
	}
	c.Sum += d.Sum
}

// classes are the counts of in by status class; "other" are those without
// a status (NGINX logged "-").
func classes(in events.InstanceTraffic) map[string]int64 {
	other := in.Requests - in.Status2xx - in.Status3xx - in.Status4xx - in.Status5xx
	return map[string]int64{"2xx": in.Status2xx, "3xx": in.Status3xx, "4xx": in.Status4xx, "5xx": in.Status5xx, "other": max(other, 0)}
}

// histCollector exposes the cumulative distributions as histograms.
type histCollector struct {
	e             *Exporter
	upstream, app *prometheus.Desc
}

func (c histCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.upstream; ch <- c.app }

func (c histCollector) Collect(ch chan<- prometheus.Metric) {
	c.e.mu.Lock()
	defer c.e.mu.Unlock()
	for k, d := range c.e.dists {
		buckets := make(map[float64]uint64, len(window.Buckets))
		var n uint64
		for i, le := range window.Buckets {
			n += d.Counts[i]
			buckets[le] = n
		}
		n += d.Counts[len(window.Buckets)]
		if k[1] == "" {
			ch <- prometheus.MustNewConstHistogram(c.app, n, d.Sum, buckets, k[0])
		} else {
			ch <- prometheus.MustNewConstHistogram(c.upstream, n, d.Sum, buckets, k[0], k[1])
		}
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
