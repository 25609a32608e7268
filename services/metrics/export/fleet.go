package export

import (
	"maps"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orchestry/orchestry/pkg/events"
)

// Fleet holds the series about NGINX nodes and certificates, from
// config.rendered and cert.issued: reloads by outcome, whether the last
// reload worked, the live config version, the convergence time of routing
// changes, and certificate expiry. It also keeps each node's status address
// for the stub_status scrape.
type Fleet struct {
	reloads     *prometheus.CounterVec
	lastOK      *prometheus.GaugeVec
	lastOKTime  *prometheus.GaugeVec
	version     *prometheus.GaugeVec
	convergence *prometheus.HistogramVec
	certExpiry  *prometheus.GaugeVec

	mu     sync.Mutex
	status map[string]string // node -> status server ip:port
}

// ConvergenceBuckets are the bounds, in seconds, of
// orchestry_config_convergence_seconds: from a coalesced render (250 ms by
// default) to minutes.
var ConvergenceBuckets = []float64{.05, .1, .25, .5, .75, 1, 1.5, 2, 3, 5, 10, 30, 60, 120, 300}

func newFleet() *Fleet {
	return &Fleet{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchestry_config_reloads_total",
			Help: "Config changes a node attempted, by outcome: applied, invalid (nginx -t refused it), failed (rolled back).",
		}, []string{"node", "outcome"}),
		lastOK: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "orchestry_config_last_reload_success",
			Help: "1 when the node's last config change went live, 0 when it was refused or rolled back.",
		}, []string{"node"}),
		lastOKTime: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "orchestry_config_last_reload_success_timestamp_seconds",
			Help: "When the node last made a new config live.",
		}, []string{"node"}),
		version: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "orchestry_config_version",
			Help: "Config version live on the node.",
		}, []string{"node"}),
		convergence: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "orchestry_config_convergence_seconds",
			Help:    "From the publish time of a routing.changed to the moment the node serves it (its renderer confirmed the config live), per change served.",
			Buckets: ConvergenceBuckets,
		}, []string{"node"}),
		certExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "orchestry_certificate_expiry_timestamp_seconds",
			Help: "When the certificate last issued for a domain expires (not_after of cert.issued).",
		}, []string{"domain"}),
		status: map[string]string{},
	}
}

// Report takes one config.rendered report. A replayed one (published
// before the service started) sets the node's state but is not counted
// again as a reload or a convergence.
func (f *Fleet) Report(r events.RenderReport, replayed bool) {
	f.mu.Lock()
	if r.StatusAddr != "" {
		f.status[r.Node] = r.StatusAddr
	}
	f.mu.Unlock()
	f.version.WithLabelValues(r.Node).Set(float64(r.Version))
	if r.Outcome != events.OutcomeUnchanged {
		ok := 0.0
		if r.Outcome == events.OutcomeApplied {
			ok = 1
			if r.LiveAt != nil {
				f.lastOKTime.WithLabelValues(r.Node).Set(float64(r.LiveAt.UnixMilli()) / 1000)
			}
		}
		f.lastOK.WithLabelValues(r.Node).Set(ok)
	}
	if replayed {
		return
	}
	if r.Outcome != events.OutcomeUnchanged {
		f.reloads.WithLabelValues(r.Node, r.Outcome).Inc()
	}
	if r.LiveAt == nil {
		return
	}
	h := f.convergence.WithLabelValues(r.Node)
	for _, c := range r.Served {
		if c.ChangedAt.IsZero() {
			continue // replayed at the renderer's start: not timed
		}
		h.Observe(max(r.LiveAt.Sub(c.ChangedAt).Seconds(), 0))
	}
}

// Certificate takes one cert.issued summary.
func (f *Fleet) Certificate(c events.Certificate) {
	f.certExpiry.WithLabelValues(c.Domain).Set(float64(c.NotAfter.Unix()))
}

// StatusTargets returns the status server address of every node that
// reported one.
func (f *Fleet) StatusTargets() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.status)
}

func (f *Fleet) collectors() []prometheus.Collector {
	return []prometheus.Collector{f.reloads, f.lastOK, f.lastOKTime, f.version, f.convergence, f.certExpiry}
}

// Describe implements prometheus.Collector.
func (f *Fleet) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range f.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (f *Fleet) Collect(ch chan<- prometheus.Metric) {
	for _, c := range f.collectors() {
		c.Collect(ch)
	}
}
