package metrics

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// maxNodes bounds the nodes whose serving version is kept (node names come
// from log lines, which anyone reaching the syslog port can send).
const maxNodes = 256

// servingVersions keeps, per node, the highest config version its access
// log lines named: the config that served its latest traffic, to set
// against the version its renderer reports live.
type servingVersions struct {
	mu    sync.RWMutex
	nodes map[string]*atomic.Uint64
	desc  *prometheus.Desc
}

func newServingVersions() *servingVersions {
	return &servingVersions{
		nodes: map[string]*atomic.Uint64{},
		desc: prometheus.NewDesc("orchestry_nginx_serving_config_version",
			"Highest config version named by the node's access log lines (the config that served its latest requests).", []string{"node"}, nil),
	}
}

// observe records that node served a request with config version v (0:
// the line did not say).
func (sv *servingVersions) observe(node string, v uint64) {
	if v == 0 {
		return
	}
	if cur := sv.cell(node); cur != nil {
		raise(cur, v)
	}
}

// raise sets cur to v unless it holds more.
func raise(cur *atomic.Uint64, v uint64) {
	for {
		old := cur.Load()
		if v <= old || cur.CompareAndSwap(old, v) {
			return
		}
	}
}

// cell is node's version, created if there is room (nil otherwise).
func (sv *servingVersions) cell(node string) *atomic.Uint64 {
	sv.mu.RLock()
	cur := sv.nodes[node]
	sv.mu.RUnlock()
	if cur == nil {
		sv.mu.Lock()
		if cur = sv.nodes[node]; cur == nil {
			if len(sv.nodes) >= maxNodes {
				sv.mu.Unlock()
				return nil
			}
			cur = &atomic.Uint64{}
			sv.nodes[node] = cur
		}
		sv.mu.Unlock()
	}
	return cur
}

// Describe implements prometheus.Collector.
func (sv *servingVersions) Describe(ch chan<- *prometheus.Desc) { ch <- sv.desc }

// Collect implements prometheus.Collector.
func (sv *servingVersions) Collect(ch chan<- prometheus.Metric) {
	sv.mu.RLock()
	defer sv.mu.RUnlock()
	for node, v := range sv.nodes {
		ch <- prometheus.MustNewConstMetric(sv.desc, prometheus.GaugeValue, float64(v.Load()), node)
	}
}
