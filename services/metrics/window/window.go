// Package window aggregates parsed access log records into per-app,
// per-upstream-address figures over a time window, and turns each window
// into events.UpstreamMetrics when it is flushed.
//
// Only apps made known with SetApp are counted. Memory is bounded: each app
// lists at most MaxInstances addresses per window (the app's current
// instances are always given room first; attempts to further addresses are
// folded, i.e. counted only in the Added result), and a window's figures are
// dropped once flushed. The only state carried from one window to the next
// is the trailing run of 5xx and gateway errors per address.
package window

import (
	"cmp"
	"errors"
	"math"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/metrics/accesslog"
	"github.com/orchestry/orchestry/services/metrics/latency"
)

// ErrUnknownApp: the record names an app that is not known (from
// routing.changed); it is dropped as forged or stale.
var ErrUnknownApp = errors.New("window: unknown app")

// Aggregator holds the current window. It is safe for concurrent use.
type Aggregator struct {
	max int

	mu    sync.Mutex
	start time.Time
	known map[string]*app
	cur   map[string]*appWindow
}

// app is what is known of an app between windows.
type app struct {
	instances map[netip.AddrPort]struct{}
	runs      map[netip.AddrPort]run // trailing runs carried over
}

// run is the trailing run of failed attempts to one address.
type run struct{ errors5xx, gateway int64 }

// appWindow is one app's figures in the current window.
type appWindow struct {
	inst   map[netip.AddrPort]*stats
	others int // entries of inst that are not current instances
	// folded counts the attempts beyond the cap, none those that named no
	// address (nil until there is one), requests what NGINX answered
	// clients.
	folded, none *stats
	requests     stats
}

// stats is one address's figures in the current window.
type stats struct {
	t    events.InstanceTraffic // counts; Address and percentiles set on flush
	run  run
	hist latency.Histogram
	dist Distribution
}

// Buckets are the upper bounds, in seconds, of the Prometheus histogram
// buckets each Distribution counts (+Inf implied): fine where HTTP
// latencies usually are, up to a minute.
var Buckets = [...]float64{.001, .0025, .005, .01, .025, .05, .075, .1, .25, .5, .75, 1, 2.5, 5, 10, 30, 60}

// Distribution is a fixed-bucket histogram of durations over Buckets,
// as Prometheus reads it: Counts[i] holds the values of at most Buckets[i]
// and above the bound before (not cumulative); the last holds the rest.
type Distribution struct {
	Counts [len(Buckets) + 1]uint64
	// Sum is the total of the values, in seconds.
	Sum float64
}

// bounds are Buckets as durations, for the hot path.
var bounds = func() (b [len(Buckets)]time.Duration) {
	for i, s := range Buckets {
		b[i] = time.Duration(s * float64(time.Second))
	}
	return b
}()

// Observe counts d; negative durations (unknown) are ignored.
func (h *Distribution) Observe(d time.Duration) {
	if d < 0 {
		return
	}
	i := 0 // the first bound >= d; latencies sit in the first few
	for i < len(bounds) && d > bounds[i] {
		i++
	}
	h.Counts[i]++
	h.Sum += d.Seconds()
}

// Count is the number of values observed.
func (h *Distribution) Count() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// New returns an empty Aggregator listing at most maxInstances addresses
// per app per window (at least 1), whose first window starts at start.
func New(maxInstances int, start time.Time) *Aggregator {
	return &Aggregator{
		max:   max(maxInstances, 1),
		start: start,
		known: map[string]*app{},
		cur:   map[string]*appWindow{},
	}
}

// SetApp makes app known, with the addresses of its current instances
// (which are always given room in a window before other addresses).
func (a *Aggregator) SetApp(name string, instances []netip.AddrPort) {
	set := make(map[netip.AddrPort]struct{}, len(instances))
	for _, ap := range instances {
		set[ap] = struct{}{}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if k, ok := a.known[name]; ok {
		k.instances = set
		return
	}
	a.known[name] = &app{instances: set}
}

// RemoveApp forgets app: its further records are refused and its carried
// runs dropped. Figures already counted in this window are still flushed.
func (a *Aggregator) RemoveApp(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.known, name)
}

// Known reports whether app is known.
func (a *Aggregator) Known(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.known[name]
	return ok
}

// Added says what became of a record's attempts.
type Added struct {
	// Attempts counted for their address.
	Attempts int
	// Folded attempts went to an address beyond the app's MaxInstances in
	// this window and were not counted.
	Folded int
	// Unattributed attempts name no address: NGINX found no server to
	// try and logged the upstream group instead.
	Unattributed int
}

// Add counts one record in the current window. It refuses a record of an
// unknown app with ErrUnknownApp.
func (a *Aggregator) Add(r *accesslog.Record) (Added, error) {
	var res Added
	a.mu.Lock()
	defer a.mu.Unlock()
	k, ok := a.known[r.App]
	if !ok {
		return res, ErrUnknownApp
	}
	w := a.cur[r.App]
	if w == nil {
		w = &appWindow{inst: map[netip.AddrPort]*stats{}}
		a.cur[r.App] = w
	}
	w.requests.countRequest(r)
	var last *stats
	for i := range r.Attempts {
		at := &r.Attempts[i]
		last = nil
		if !at.Addr.IsValid() {
			res.Unattributed++
			if w.none == nil {
				w.none = &stats{}
			}
			w.none.count(at)
			continue
		}
		st := w.inst[at.Addr]
		if st == nil {
			if st = a.admit(k, w, at.Addr); st == nil {
				res.Folded++
				if w.folded == nil {
					w.folded = &stats{}
				}
				w.folded.count(at)
				continue
			}
		}
		last = st
		res.Attempts++
		st.count(at)
	}
	if last != nil {
		last.t.Bytes += r.Bytes
	}
	return res, nil
}

// admit gives addr an entry in w if the cap allows: the app's current
// instances always have room (up to the cap), other addresses share what
// the instances leave.
func (a *Aggregator) admit(k *app, w *appWindow, addr netip.AddrPort) *stats {
	if len(w.inst) >= a.max {
		return nil
	}
	_, instance := k.instances[addr]
	if !instance {
		if w.others >= a.max-min(len(k.instances), a.max) {
			return nil
		}
		w.others++
	}
	st := &stats{run: k.runs[addr]}
	w.inst[addr] = st
	return st
}

// countRequest adds one request as NGINX answered the client.
func (st *stats) countRequest(r *accesslog.Record) {
	st.t.Requests++
	st.t.Bytes += r.Bytes
	st.dist.Observe(r.RequestTime)
	st.class(r.Status)
}

// class counts status s by its class.
func (st *stats) class(s int) {
	t := &st.t
	switch {
	case s >= 200 && s < 300:
		t.Status2xx++
	case s >= 300 && s < 400:
		t.Status3xx++
	case s >= 400 && s < 500:
		t.Status4xx++
	case s >= 500 && s < 600:
		t.Status5xx++
	}
}

// count adds one attempt.
func (st *stats) count(at *accesslog.Attempt) {
	t := &st.t
	t.Requests++
	if at.Retry {
		t.Retries++
	}
	st.hist.Record(at.ResponseTime) // Unknown (-1) is ignored
	st.dist.Observe(at.ResponseTime)
	s := at.Status
	switch {
	case s == 0:
		return // "-": no status, the runs go on unchanged
	}
	st.class(s)
	if s >= 500 && s < 600 {
		st.run.errors5xx++
	} else {
		st.run.errors5xx = 0
	}
	if s == 502 || s == 503 || s == 504 {
		t.GatewayErrors++
		st.run.gateway++
	} else {
		st.run.gateway = 0
	}
}

// Figures are one address's (or group's) counts in a window, with their
// Prometheus distribution.
type Figures struct {
	// Traffic are the counts (no address and percentiles for a group).
	Traffic events.InstanceTraffic
	Dist    Distribution
}

// AppWindow is everything one app's window holds.
type AppWindow struct {
	// Metrics is the window's event: the addresses listed, each with its
	// percentiles and trailing runs.
	Metrics events.UpstreamMetrics
	// Dists are the listed addresses' distributions of upstream response
	// time, in the order of Metrics.Instances.
	Dists []Distribution
	// Folded are the attempts to addresses beyond the cap, None those that
	// named no address; nil when there were none.
	Folded, None *Figures
	// Requests are what NGINX answered clients (one per request, with
	// $request_time and $status), attempts or not.
	Requests Figures
}

// Flush ends the current window at now and returns its figures: one
// UpstreamMetrics per app that had requests in it, sorted by app, each with
// its addresses sorted. A new window starts at now.
func (a *Aggregator) Flush(now time.Time) []events.UpstreamMetrics {
	all := a.FlushAll(now)
	out := make([]events.UpstreamMetrics, len(all))
	for i, w := range all {
		out[i] = w.Metrics
	}
	return out
}

// FlushAll is Flush with every figure of the window, for Prometheus.
func (a *Aggregator) FlushAll(now time.Time) []AppWindow {
	a.mu.Lock()
	cur, start := a.cur, a.start
	a.cur, a.start = make(map[string]*appWindow, len(cur)), now
	for name, k := range a.known {
		k.carry(cur[name])
	}
	a.mu.Unlock()

	secs := now.Sub(start).Seconds()
	secs = min(max(secs, 0.001), 3600)
	out := make([]AppWindow, 0, len(cur))
	for name, w := range cur {
		aw := AppWindow{
			Metrics:  events.UpstreamMetrics{App: name, WindowStart: start.UTC(), WindowSeconds: secs},
			Folded:   w.folded.figures(),
			None:     w.none.figures(),
			Requests: *w.requests.figures(),
		}
		m := &aw.Metrics
		if len(w.inst) > 0 {
			m.Instances = make([]events.InstanceTraffic, 0, len(w.inst))
			aw.Dists = make([]Distribution, 0, len(w.inst))
		}
		addrs := make([]netip.AddrPort, 0, len(w.inst))
		for addr := range w.inst {
			addrs = append(addrs, addr)
		}
		slices.SortFunc(addrs, netip.AddrPort.Compare)
		for _, addr := range addrs {
			st := w.inst[addr]
			t := st.t
			t.Address = addr.String()
			t.P50MS = ms(st.hist.Quantile(0.50))
			t.P95MS = ms(st.hist.Quantile(0.95))
			t.P99MS = ms(st.hist.Quantile(0.99))
			t.Consecutive5xx = st.run.errors5xx
			t.ConsecutiveGatewayErrors = st.run.gateway
			m.Instances = append(m.Instances, t)
			aw.Dists = append(aw.Dists, st.dist)
		}
		out = append(out, aw)
	}
	slices.SortFunc(out, func(x, y AppWindow) int { return cmp.Compare(x.Metrics.App, y.Metrics.App) })
	return out
}

// figures are st's counts and distribution; nil for nil.
func (st *stats) figures() *Figures {
	if st == nil {
		return nil
	}
	return &Figures{Traffic: st.t, Dist: st.dist}
}

// carry keeps the trailing runs that outlive window w (nil when the app
// had no traffic): those of the addresses w counted, and the older ones of
// current instances w did not see. Runs of other addresses are forgotten,
// which bounds the carried state by MaxInstances plus the app's instances.
func (k *app) carry(w *appWindow) {
	if w == nil && len(k.runs) == 0 {
		return
	}
	var inst map[netip.AddrPort]*stats
	if w != nil {
		inst = w.inst
	}
	runs := make(map[netip.AddrPort]run)
	for addr, st := range inst {
		if st.run != (run{}) {
			runs[addr] = st.run
		}
	}
	for addr, r := range k.runs {
		if _, seen := inst[addr]; seen {
			continue
		}
		if _, instance := k.instances[addr]; instance {
			runs[addr] = r
		}
	}
	if len(runs) == 0 {
		runs = nil
	}
	k.runs = runs
}

// ms is d in milliseconds, rounded to the microsecond.
func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}
