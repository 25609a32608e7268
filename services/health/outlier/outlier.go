// Package outlier holds the pure decisions of passive outlier detection
// (the circuit breaker): whether one instance's traffic in a window of
// metrics.upstream makes it an outlier, how many of an app's instances may be
// out at once, and how long an ejection lasts. It does no I/O; the health
// service feeds it events and applies its answers.
//
// The model is Envoy's outlier_detection, with three differences. The
// ejection time doubles on each repeat (base × 2^(n-1), capped at the
// maximum) instead of growing linearly; the multiplier steps down by one for
// every base ejection time the instance spends back in service (Envoy steps
// it down once per detection interval); and an ejected instance returns
// through an active probe: once its time has passed, the next passing probe
// makes it healthy (Envoy returns it on its own when the time has passed).
package outlier

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
)

// Rules say when an instance's traffic in one window makes it an outlier.
// A zero field disables its rule.
type Rules struct {
	// ConsecutiveGateway ejects when the trailing run of gateway errors
	// (502, 503, 504, including NGINX's own connection failures) reaches it.
	ConsecutiveGateway int64
	// Consecutive5xx ejects when the trailing run of 5xx reaches it.
	Consecutive5xx int64
	// FailurePercent ejects when 5xx make up at least this share (1-100)
	// of the window's requests, provided there were at least MinRequests.
	FailurePercent int64
	// MinRequests is the volume a window needs for FailurePercent.
	MinRequests int64
}

// Enabled reports whether any rule is on.
func (r Rules) Enabled() bool {
	return r.ConsecutiveGateway > 0 || r.Consecutive5xx > 0 || r.FailurePercent > 0
}

// Verdict is why an instance is an outlier; the zero value means it is not.
type Verdict struct {
	// Why is the reason for people, e.g. "5xx 80% of 20 requests".
	Why string
	// Severity orders outliers when not all of them may be ejected: the
	// worst first.
	Severity float64
}

// Outlier reports whether the verdict ejects.
func (v Verdict) Outlier() bool { return v.Why != "" }

// Check judges one instance's traffic in one window. A window in which the
// instance got no request says nothing (the consecutive runs it carries are
// older than the window, and may predate an ejection that already ended).
// The consecutive gateway rule is checked first, then consecutive 5xx, then
// the failure percentage.
func (r Rules) Check(t events.InstanceTraffic) Verdict {
	if t.Requests <= 0 {
		return Verdict{}
	}
	rate := float64(t.Status5xx) / float64(t.Requests)
	sev := float64(max(t.ConsecutiveGatewayErrors, t.Consecutive5xx)) + rate
	switch {
	case r.ConsecutiveGateway > 0 && t.ConsecutiveGatewayErrors >= r.ConsecutiveGateway:
		return Verdict{Why: fmt.Sprintf("%d consecutive gateway errors", t.ConsecutiveGatewayErrors), Severity: sev}
	case r.Consecutive5xx > 0 && t.Consecutive5xx >= r.Consecutive5xx:
		return Verdict{Why: fmt.Sprintf("%d consecutive 5xx", t.Consecutive5xx), Severity: sev}
	case r.FailurePercent > 0 && t.Requests >= max(r.MinRequests, 1) && t.Status5xx*100 >= r.FailurePercent*t.Requests:
		return Verdict{Why: fmt.Sprintf("5xx %d%% of %d requests", int64(math.Round(rate*100)), t.Requests), Severity: sev}
	}
	return Verdict{}
}

// MaxOut is how many of total instances may be out of service at once when
// at most percent of them may: floor(total × percent / 100). That is
// Envoy's rule since 1.31 (an ejection happens only if the ejected share
// after it is at most max_ejection_percent), so 1 instance at 50% ejects
// nothing, 4 at 50% eject 2, 3 at 50% eject 1 (Envoy before 1.31 compared
// the share before the ejection, which let 1 of 1 go; always_eject_one_host
// is not offered).
func MaxOut(total, percent int) int {
	if total <= 0 || percent <= 0 {
		return 0
	}
	return total * min(percent, 100) / 100
}

// Backoff sets how long ejections last.
type Backoff struct {
	// Base is the first ejection's time, and how long an instance must
	// stay back in service for its multiplier to step down by one.
	Base time.Duration
	// Max caps an ejection's time.
	Max time.Duration
}

// Duration is the time of the n-th ejection in a row: Base × 2^(n-1),
// at most Max (and never less than Base); 0 for n < 1.
func (b Backoff) Duration(n int) time.Duration {
	if n < 1 || b.Base <= 0 {
		return 0
	}
	limit := max(b.Max, b.Base)
	d := b.Base
	for i := 1; i < n; i++ {
		if d >= limit/2 {
			return limit
		}
		d *= 2
	}
	return min(d, limit)
}

// History is what the multiplier depends on: the ejections in a row so far
// and when the instance last came back into service.
type History struct {
	// Ejections is the multiplier's exponent plus one, as of the last
	// ejection; 0 when never ejected.
	Ejections int
	// EjectedAt is when the last ejection began.
	EjectedAt time.Time
	// Returned is when the instance last left the ejected state (zero
	// while ejected or never ejected).
	Returned time.Time
}

// Decayed is the ejection count left at time at: one step less for every
// full Base spent back in service since Returned.
func (b Backoff) Decayed(h History, at time.Time) int {
	n := h.Ejections
	if n <= 0 || h.Returned.IsZero() || b.Base <= 0 || !at.After(h.Returned) {
		return max(n, 0)
	}
	steps := at.Sub(h.Returned) / b.Base
	if steps >= time.Duration(n) {
		return 0
	}
	return n - int(steps)
}

// Next is the ejection count and time of a new ejection at time at. As in
// Envoy, the count stops growing once the time has reached Max, so an
// instance that keeps failing at the cap decays from the cap rather than
// from far above it.
func (b Backoff) Next(h History, at time.Time) (n int, d time.Duration) {
	n = b.Decayed(h, at)
	if n == 0 || b.Duration(n) < max(b.Max, b.Base) {
		n++
	}
	return n, b.Duration(n)
}

// Reason is HealthState.LastError of an ejection: why, and for how long.
func Reason(why string, d time.Duration) string {
	return fmt.Sprintf("outlier: %s; ejected for %s", why, d)
}

// Instance is one instance of an app as the detector sees it.
type Instance struct {
	// Key identifies the instance (its health KV key).
	Key string
	// Addr is where NGINX sends it traffic: the instance's ip:port.
	Addr netip.AddrPort
	// Healthy: in service now. Every other state (ejected, unhealthy,
	// draining) counts as out of service against the maximum share.
	Healthy bool
}

// Ejection is one instance to eject and why.
type Ejection struct {
	Key string
	Why string
}

// Plan decides which of an app's instances one window of traffic ejects.
// Traffic is matched to instances by address; every instance on an
// outlier's address is ejected with it (NGINX cannot tell them apart),
// and an address whose instances would not all fit within the maximum
// share is held back as a whole. Only healthy instances are ejected. Out of
// service are the instances not healthy (ejected and unhealthy alike), and
// at most MaxOut(len(instances), maxPercent) may be: outliers are taken
// worst first (then by address) while they fit. Held lists the keys of
// outliers held back by the maximum share. The result depends only on the
// arguments, so replicas that see the same states decide the same.
func (r Rules) Plan(instances []Instance, traffic []events.InstanceTraffic, maxPercent int) (eject []Ejection, held []string) {
	if !r.Enabled() || len(instances) == 0 {
		return nil, nil
	}
	byAddr := map[netip.AddrPort][]Instance{}
	out := 0
	for _, in := range instances {
		byAddr[norm(in.Addr)] = append(byAddr[norm(in.Addr)], in)
		if !in.Healthy {
			out++
		}
	}
	type group struct {
		addr    netip.AddrPort
		verdict Verdict
		keys    []string
	}
	var groups []group
	seen := map[netip.AddrPort]int{}
	for _, t := range traffic {
		ap, err := netip.ParseAddrPort(t.Address)
		if err != nil {
			continue
		}
		ap = norm(ap)
		v := r.Check(t)
		if !v.Outlier() {
			continue
		}
		var keys []string
		for _, in := range byAddr[ap] {
			if in.Healthy {
				keys = append(keys, in.Key)
			}
		}
		if len(keys) == 0 {
			continue
		}
		if i, ok := seen[ap]; ok { // the same address twice: keep the worse
			if v.Severity > groups[i].verdict.Severity {
				groups[i].verdict = v
			}
			continue
		}
		seen[ap] = len(groups)
		groups = append(groups, group{addr: ap, verdict: v, keys: keys})
	}
	slices.SortFunc(groups, func(a, b group) int {
		if a.verdict.Severity != b.verdict.Severity {
			if a.verdict.Severity > b.verdict.Severity {
				return -1
			}
			return 1
		}
		return a.addr.Compare(b.addr)
	})
	budget := MaxOut(len(instances), maxPercent) - out
	for _, g := range groups {
		if len(g.keys) > budget {
			held = append(held, g.keys...)
			continue
		}
		budget -= len(g.keys)
		for _, k := range g.keys {
			eject = append(eject, Ejection{Key: k, Why: g.verdict.Why})
		}
	}
	return eject, held
}

// norm makes IPv4-mapped IPv6 addresses plain IPv4, so both spellings of
// one address match.
func norm(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
}
