// Package auto chooses the load-balancing method of apps declared with
// lb_method auto (without session affinity or stateful, which decide on
// their own) from their traffic windows on metrics.upstream.<app>:
//
//   - a high request rate gets least_conn, which keeps a slow instance
//     from piling up requests; otherwise round_robin;
//   - instances whose median latencies differ widely get weight factors,
//     4 for the fastest down to 1, which the renderer multiplies their
//     weights by (NGINX open source has no latency-aware method).
//
// Every threshold has a margin (a choice is kept until the figures are
// clearly back), a new choice must come out of several windows in a row,
// and choices change at most once per minimum interval: noisy figures do
// not reload NGINX.
package auto

import (
	"fmt"
	"maps"
	"net/netip"
	"strconv"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
)

// Thresholds tune the choice.
type Thresholds struct {
	// HighRate is the request rate (attempts per second, all instances)
	// from which least_conn is chosen; it is left below 70% of it.
	HighRate float64
	// Windows is how many windows in a row must agree on a new choice.
	Windows int
	// Interval is the least time between two changes of an app's choice.
	Interval time.Duration
}

// Latency rules. An instance's latency counts only from MinRequests
// attempts in a window; weights start when the slowest median is
// SpreadOn times the fastest and stop below SpreadOff times.
const (
	MinRequests = 20
	SpreadOn    = 2.0
	SpreadOff   = 1.5
	rateOff     = 0.7
)

// latencyFloorMS keeps sub-millisecond medians from making tiny absolute
// differences look like wide ratios.
const latencyFloorMS = 1.0

// Recommend is the choice the window m suggests for an app with the given
// instances, after the current choice cur (nil: none yet). The returned
// Since is zero; the caller stamps it.
func Recommend(cur *events.AutoChoice, instances []events.Instance, m events.UpstreamMetrics, th Thresholds) events.AutoChoice {
	byAddr := make(map[string]string, len(instances))
	for _, in := range instances {
		if ip, err := netip.ParseAddr(in.IP); err == nil {
			byAddr[netip.AddrPortFrom(ip, uint16(in.Port)).String()] = in.ID
		}
	}
	var total int64
	medians := map[string]float64{}
	for _, t := range m.Instances {
		total += t.Requests
		if id, ok := byAddr[t.Address]; ok && t.Requests >= MinRequests {
			medians[id] = max(t.P50MS, latencyFloorMS)
		}
	}
	rate := 0.0
	if m.WindowSeconds > 0 {
		rate = float64(total) / m.WindowSeconds
	}

	out := events.AutoChoice{Method: events.LBRoundRobin}
	busy := cur != nil && cur.Method == events.LBLeastConn
	switch {
	case rate >= th.HighRate, busy && rate >= rateOff*th.HighRate:
		out.Method = events.LBLeastConn
		out.Reason = "request rate " + strconv.FormatFloat(rate, 'f', 0, 64) + "/s is high"
	default:
		out.Reason = "request rate " + strconv.FormatFloat(rate, 'f', 0, 64) + "/s is low"
	}

	if w, spread, ok := weights(cur, instances, medians); ok && len(w) > 0 {
		out.Weights = w
		out.Reason += fmt.Sprintf("; median latencies differ %.1f times", spread)
	}
	return out
}

// weights are the latency weight factors of the instances, or ok false
// when their medians are close enough (with the margin of a current
// choice that has weights). An instance without enough requests in the
// window keeps its current factor, and while one of those has a factor
// the weights stay: a slow instance gets few requests because of its
// factor, which must not count as good news.
func weights(cur *events.AutoChoice, instances []events.Instance, medians map[string]float64) (w map[string]int, spread float64, ok bool) {
	w = keep(cur, instances)
	unjudged := false
	for id := range w {
		if _, ok := medians[id]; !ok {
			unjudged = true
		}
	}
	if len(medians) < 2 {
		return w, 0, len(w) > 0 // nothing new to judge by
	}
	fastest, slowest := 0.0, 0.0
	for _, v := range medians {
		if fastest == 0 || v < fastest {
			fastest = v
		}
		slowest = max(slowest, v)
	}
	spread = slowest / fastest
	on := spread >= SpreadOn || (len(w) > 0 && (spread >= SpreadOff || unjudged))
	if !on {
		return nil, spread, false
	}
	for id, v := range medians {
		w[id] = factor(v / fastest)
	}
	for id, f := range w {
		if f == events.MaxAutoWeight {
			delete(w, id) // not listed counts as the fastest
		}
	}
	return w, spread, true
}

// keep is the current choice's factors of the instances that still exist.
func keep(cur *events.AutoChoice, instances []events.Instance) map[string]int {
	w := map[string]int{}
	if cur == nil {
		return w
	}
	for _, in := range instances {
		if f, ok := cur.Weights[in.ID]; ok {
			w[in.ID] = f
		}
	}
	return w
}

// factor is the weight factor of an instance whose median is ratio times
// the fastest's.
func factor(ratio float64) int {
	switch {
	case ratio < 1.5:
		return 4
	case ratio < 2.5:
		return 3
	case ratio < 4:
		return 2
	}
	return 1
}

// Same reports whether two choices pick the same method and weights.
func Same(a, b *events.AutoChoice) bool {
	switch {
	case a == nil || b == nil:
		return a == b
	case a.Method != b.Method:
		return false
	}
	return maps.Equal(a.Weights, b.Weights)
}

// initial is the choice in force for an app without one yet.
var initial = events.AutoChoice{Method: events.LBRoundRobin}

// Damper holds back new choices until Windows windows in a row agree on
// them. It keeps the streak per app; the zero value is not ready, use
// NewDamper.
type Damper struct {
	th      Thresholds
	streaks map[string]streak
}

type streak struct {
	choice events.AutoChoice
	n      int
}

// NewDamper returns a Damper for th.
func NewDamper(th Thresholds) *Damper {
	return &Damper{th: th, streaks: map[string]streak{}}
}

// Next returns the choice to write for app after window m, with ok false
// when the current one stays: the suggestion equals it, has not been made
// th.Windows times in a row, or the current one is younger than
// th.Interval at now.
func (d *Damper) Next(app string, cur *events.AutoChoice, instances []events.Instance, m events.UpstreamMetrics, now time.Time) (events.AutoChoice, bool) {
	sug := Recommend(cur, instances, m, d.th)
	inForce := cur
	if inForce == nil {
		inForce = &initial
	}
	if Same(&sug, inForce) {
		delete(d.streaks, app)
		return events.AutoChoice{}, false
	}
	s := d.streaks[app]
	if Same(&s.choice, &sug) {
		s.n++
	} else {
		s = streak{choice: sug, n: 1}
	}
	s.choice.Reason = sug.Reason
	d.streaks[app] = s
	if s.n < max(d.th.Windows, 1) || (cur != nil && now.Sub(cur.Since) < d.th.Interval) {
		return events.AutoChoice{}, false
	}
	delete(d.streaks, app)
	sug.Since = now
	return sug, true
}

// Forget drops the streak of app (deleted, or no longer auto).
func (d *Damper) Forget(app string) { delete(d.streaks, app) }
