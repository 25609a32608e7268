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
}

// stats is one address's figures in the current window.
type stats struct {
	t    events.InstanceTraffic // counts; Address and percentiles set on flush
	run  run
	hist latency.Histogram
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
	var last *stats
	for i := range r.Attempts {
		at := &r.Attempts[i]
		last = nil
		if !at.Addr.IsValid() {
			res.Unattributed++
			continue
		}
		st := w.inst[at.Addr]
		if st == nil {
			if st = a.admit(k, w, at.Addr); st == nil {
				res.Folded++
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

// count adds one attempt.
func (st *stats) count(at *accesslog.Attempt) {
	t := &st.t
	t.Requests++
	if at.Retry {
		t.Retries++
	}
	st.hist.Record(at.ResponseTime) // Unknown (-1) is ignored
	s := at.Status
	switch {
	case s == 0:
		return // "-": no status, the runs go on unchanged
	case s >= 200 && s < 300:
		t.Status2xx++
	case s >= 300 && s < 400:
		t.Status3xx++
	case s >= 400 && s < 500:
		t.Status4xx++
	case s >= 500 && s < 600:
		t.Status5xx++
	}
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

// Flush ends the current window at now and returns its figures: one
// UpstreamMetrics per app that had requests in it, sorted by app, each with
// its addresses sorted. A new window starts at now.
func (a *Aggregator) Flush(now time.Time) []events.UpstreamMetrics {
	a.mu.Lock()
	cur, start := a.cur, a.start
	a.cur, a.start = make(map[string]*appWindow, len(cur)), now
	for name, k := range a.known {
		k.carry(cur[name])
	}
	a.mu.Unlock()

	secs := now.Sub(start).Seconds()
	secs = min(max(secs, 0.001), 3600)
	out := make([]events.UpstreamMetrics, 0, len(cur))
	for name, w := range cur {
		m := events.UpstreamMetrics{App: name, WindowStart: start.UTC(), WindowSeconds: secs}
		if len(w.inst) > 0 {
			m.Instances = make([]events.InstanceTraffic, 0, len(w.inst))
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
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(x, y events.UpstreamMetrics) int { return cmp.Compare(x.App, y.App) })
	return out
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
